// Max pooling with 2x2 windows, stride 2, no padding or dilation, every window inside the
// input: the shape of LeNet's pools and most CNNs'. Four outputs at a time from two input rows
// of eight: the even and odd columns deinterleaved, then PyTorch's scan over the window in order
// (0,0), (0,1), (1,0), (1,1) from its first value, a value taking over when `val > max ||
// isnan(val)`: the same argmax (ties to the first, NaN to the last NaN) as the general kernels
// of pool.ts. The backward writes every dx element of a plane once (0 + dy at the argmax, 0
// elsewhere, as the general path's zero fill and add give), with no zero fill and no scatter.
// A row's outputs go four at a time, the last four ending at the row's end (redoing some
// outputs of the group before, with the same result) so that no row ends in scalar code.
// Items: blocks of PLANE_ITEM planes (PLANE_ITEM by shape only), taken one by one.
import { take } from "./common";

/** Planes per work item: about 8192 input floats. */
// @ts-ignore: decorator
@inline export function planesPerItem(H: i32, W: i32): i32 {
  return max(1, 8192 / max(1, H * W));
}

// @ts-ignore: decorator
@inline function takes(v: v128, m: v128): v128 {
  return v128.or(f32x4.gt(v, m), f32x4.ne(v, v));
}

/** y = max over each 2x2 window (see the top of the file). */
export function maxpool2x2Fwd(x: usize, y: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32, nth: i32): void {
  const PI = planesPerItem(H, W), T = (NC + PI - 1) / PI;
  const rs = <usize>W << 2;
  for (let it = take(-1, nth); it < T; it = take(it, nth)) {
    const pe = min(NC, (it + 1) * PI);
    for (let nc = it * PI; nc < pe; nc++) {
      const xp = x + (<usize>nc * H * W << 2);
      let yr = y + (<usize>nc * OH * OW << 2);
      for (let oh = 0; oh < OH; oh++) {
        const r0 = xp + (<usize>(2 * oh) * rs), r1 = r0 + rs;
        if (OW >= 4) {
          // groups of four; the last one ends at OW (it may redo outputs of the one before:
          // the same values again)
          for (let ow = 0; ow < OW; ow += 4) fwd4(r0, r1, yr, min(ow, OW - 4));
        } else for (let ow = 0; ow < OW; ow++) fwd1(r0, r1, yr, ow);
        yr += <usize>OW << 2;
      }
    }
  }
}

/** dx = dy at each window's argmax, 0 elsewhere (rows and columns no window covers too). */
export function maxpool2x2Bwd(x: usize, dy: usize, dx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32, nth: i32): void {
  const PI = planesPerItem(H, W), T = (NC + PI - 1) / PI;
  const rs = <usize>W << 2;
  for (let it = take(-1, nth); it < T; it = take(it, nth)) {
    const pe = min(NC, (it + 1) * PI);
    for (let nc = it * PI; nc < pe; nc++) {
      const xp = x + (<usize>nc * H * W << 2), dxp = dx + (<usize>nc * H * W << 2);
      let g = dy + (<usize>nc * OH * OW << 2);
      for (let oh = 0; oh < OH; oh++) {
        const r0 = xp + (<usize>(2 * oh) * rs), r1 = r0 + rs;
        const d0 = dxp + (<usize>(2 * oh) * rs), d1 = d0 + rs;
        if (OW >= 4) for (let ow = 0; ow < OW; ow += 4) bwd4(r0, r1, d0, d1, g, min(ow, OW - 4));
        else for (let ow = 0; ow < OW; ow++) bwd1(r0, r1, d0, d1, g, ow);
        // a column no window covers (W odd)
        for (let w = 2 * OW; w < W; w++) {
          store<f32>(d0 + (<usize>w << 2), 0);
          store<f32>(d1 + (<usize>w << 2), 0);
        }
        g += <usize>OW << 2;
      }
      // rows no window covers (H odd)
      if (2 * OH < H) memory.fill(dxp + (<usize>(2 * OH) * rs), 0, <usize>(H - 2 * OH) * rs);
    }
  }
}

/** Outputs ow .. ow+3 of one row (input rows r0, r1; output row yr). */
// @ts-ignore: decorator
@inline function fwd4(r0: usize, r1: usize, yr: usize, ow: i32): void {
  const o = <usize>ow << 3;
  const a0 = v128.load(r0 + o), a1 = v128.load(r0 + o, 16), b0 = v128.load(r1 + o), b1 = v128.load(r1 + o, 16);
  let m = i32x4.shuffle(a0, a1, 0, 2, 4, 6);
  let v = i32x4.shuffle(a0, a1, 1, 3, 5, 7);
  m = v128.bitselect(v, m, takes(v, m));
  v = i32x4.shuffle(b0, b1, 0, 2, 4, 6);
  m = v128.bitselect(v, m, takes(v, m));
  v = i32x4.shuffle(b0, b1, 1, 3, 5, 7);
  m = v128.bitselect(v, m, takes(v, m));
  v128.store(yr + (<usize>ow << 2), m);
}

// @ts-ignore: decorator
@inline function fwd1(r0: usize, r1: usize, yr: usize, ow: i32): void {
  const o = <usize>ow << 3;
  let m = load<f32>(r0 + o);
  let v = load<f32>(r0 + o, 4);
  if (v > m || v != v) m = v;
  v = load<f32>(r1 + o);
  if (v > m || v != v) m = v;
  v = load<f32>(r1 + o, 4);
  if (v > m || v != v) m = v;
  store<f32>(yr + (<usize>ow << 2), m);
}

/** The gradient of outputs ow .. ow+3 of one row (output gradient row g) into dx rows d0, d1. */
// @ts-ignore: decorator
@inline function bwd4(r0: usize, r1: usize, d0: usize, d1: usize, g: usize, ow: i32): void {
  const z = f32x4.splat(0), i1 = i32x4.splat(1), i2 = i32x4.splat(2), i3 = i32x4.splat(3);
  const o = <usize>ow << 3;
  const a0 = v128.load(r0 + o), a1 = v128.load(r0 + o, 16), b0 = v128.load(r1 + o), b1 = v128.load(r1 + o, 16);
  let m = i32x4.shuffle(a0, a1, 0, 2, 4, 6), k = z; // k: the argmax, 0..3
  let v = i32x4.shuffle(a0, a1, 1, 3, 5, 7), t = takes(v, m);
  m = v128.bitselect(v, m, t);
  k = v128.bitselect(i1, k, t);
  v = i32x4.shuffle(b0, b1, 0, 2, 4, 6);
  t = takes(v, m);
  m = v128.bitselect(v, m, t);
  k = v128.bitselect(i2, k, t);
  v = i32x4.shuffle(b0, b1, 1, 3, 5, 7);
  k = v128.bitselect(i3, k, takes(v, m));
  const gv = f32x4.add(z, v128.load(g + (<usize>ow << 2)));
  const e0 = v128.and(gv, i32x4.eq(k, z)), o0 = v128.and(gv, i32x4.eq(k, i1));
  const e1 = v128.and(gv, i32x4.eq(k, i2)), o1 = v128.and(gv, i32x4.eq(k, i3));
  v128.store(d0 + o, i32x4.shuffle(e0, o0, 0, 4, 1, 5));
  v128.store(d0 + o, i32x4.shuffle(e0, o0, 2, 6, 3, 7), 16);
  v128.store(d1 + o, i32x4.shuffle(e1, o1, 0, 4, 1, 5));
  v128.store(d1 + o, i32x4.shuffle(e1, o1, 2, 6, 3, 7), 16);
}

// @ts-ignore: decorator
@inline function bwd1(r0: usize, r1: usize, d0: usize, d1: usize, g: usize, ow: i32): void {
  const o = <usize>ow << 3;
  let m = load<f32>(r0 + o), k = 0;
  let v = load<f32>(r0 + o, 4);
  if (v > m || v != v) { m = v; k = 1; }
  v = load<f32>(r1 + o);
  if (v > m || v != v) { m = v; k = 2; }
  v = load<f32>(r1 + o, 4);
  if (v > m || v != v) k = 3;
  const gv: f32 = 0 + load<f32>(g + (<usize>ow << 2));
  store<f32>(d0 + o, k == 0 ? gv : 0);
  store<f32>(d0 + o, k == 1 ? gv : 0, 4);
  store<f32>(d1 + o, k == 2 ? gv : 0);
  store<f32>(d1 + o, k == 3 ? gv : 0, 4);
}
