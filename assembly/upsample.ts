// Upsampling kernels (see docs/kernels.md). Forward and backward side by side.
//
// Bilinear is separable: each output row is a blend of two input rows (SIMD along the width
// into a row buffer), then each output column a blend of two buffer columns. The op builds a
// table of source indices and weights in float64 (PyTorch's reference arithmetic):
//   rows: i32 h0[OH], i32 h1[OH], f32 lh0[OH], f32 lh1[OH]; then the same for columns (OW).
// Plain mul and add (no madd): the same bits on every build.
import { rangeStart, rangeEnd } from "./common";

export function f32_upsample_bilinear2d_fwd(
  x: usize, y: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32, tab: usize,
  scratch: usize, rowLen: i32, ith: i32, nth: i32,
): void {
  const rb = scratch + <usize>ith * (<usize>rowLen << 2);
  const ct = tab + (<usize>(4 * OH) << 2);
  const s = rangeStart(NC * OH, ith, nth), e = rangeEnd(NC * OH, ith, nth);
  for (let r = s; r < e; r++) {
    const nc = r / OH, oh = r - nc * OH;
    const xp = x + ((<usize>nc * H * W) << 2);
    const h0 = load<i32>(tab + (<usize>oh << 2)), h1 = load<i32>(tab + (<usize>(OH + oh) << 2));
    const l0 = load<f32>(tab + (<usize>(2 * OH + oh) << 2)), l1 = load<f32>(tab + (<usize>(3 * OH + oh) << 2));
    const x0 = xp + ((<usize>h0 * W) << 2), x1 = xp + ((<usize>h1 * W) << 2);
    const v0 = f32x4.splat(l0), v1 = f32x4.splat(l1);
    let w = 0;
    for (; w + 4 <= W; w += 4) {
      const o = <usize>w << 2;
      v128.store(rb + o, f32x4.add(f32x4.mul(v128.load(x0 + o), v0), f32x4.mul(v128.load(x1 + o), v1)));
    }
    for (; w < W; w++) {
      const o = <usize>w << 2;
      store<f32>(rb + o, load<f32>(x0 + o) * l0 + load<f32>(x1 + o) * l1);
    }
    const yr = y + ((<usize>r * OW) << 2);
    for (let ow = 0; ow < OW; ow++) {
      const w0 = load<i32>(ct + (<usize>ow << 2)), w1 = load<i32>(ct + (<usize>(OW + ow) << 2));
      const m0 = load<f32>(ct + (<usize>(2 * OW + ow) << 2)), m1 = load<f32>(ct + (<usize>(3 * OW + ow) << 2));
      store<f32>(yr + (<usize>ow << 2), load<f32>(rb + (<usize>w0 << 2)) * m0 + load<f32>(rb + (<usize>w1 << 2)) * m1);
    }
  }
}

/** Backward: per plane (the work item), each output row's gradient is spread along the columns
 *  into the row buffer, then added to its two input rows with their weights (SIMD). */
export function f32_upsample_bilinear2d_bwd(
  dy: usize, dx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32, tab: usize,
  scratch: usize, rowLen: i32, ith: i32, nth: i32,
): void {
  const rb = scratch + <usize>ith * (<usize>rowLen << 2);
  const ct = tab + (<usize>(4 * OH) << 2);
  const s = rangeStart(NC, ith, nth), e = rangeEnd(NC, ith, nth);
  for (let nc = s; nc < e; nc++) {
    const dxp = dx + ((<usize>nc * H * W) << 2);
    memory.fill(dxp, 0, (<usize>H * W) << 2);
    for (let oh = 0; oh < OH; oh++) {
      memory.fill(rb, 0, <usize>W << 2);
      const gr = dy + ((<usize>(nc * OH + oh) * OW) << 2);
      for (let ow = 0; ow < OW; ow++) {
        const w0 = load<i32>(ct + (<usize>ow << 2)), w1 = load<i32>(ct + (<usize>(OW + ow) << 2));
        const m0 = load<f32>(ct + (<usize>(2 * OW + ow) << 2)), m1 = load<f32>(ct + (<usize>(3 * OW + ow) << 2));
        const g = load<f32>(gr + (<usize>ow << 2));
        const q0 = rb + (<usize>w0 << 2), q1 = rb + (<usize>w1 << 2);
        store<f32>(q0, load<f32>(q0) + g * m0);
        store<f32>(q1, load<f32>(q1) + g * m1);
      }
      const h0 = load<i32>(tab + (<usize>oh << 2)), h1 = load<i32>(tab + (<usize>(OH + oh) << 2));
      const l0 = load<f32>(tab + (<usize>(2 * OH + oh) << 2)), l1 = load<f32>(tab + (<usize>(3 * OH + oh) << 2));
      addScaledRow(dxp + ((<usize>h0 * W) << 2), rb, W, l0);
      addScaledRow(dxp + ((<usize>h1 * W) << 2), rb, W, l1);
    }
  }
}

/** d[w] += r[w] * l */
// @ts-ignore: decorator
@inline function addScaledRow(d: usize, r: usize, W: i32, l: f32): void {
  const lv = f32x4.splat(l);
  let w = 0;
  for (; w + 4 <= W; w += 4) {
    const o = <usize>w << 2;
    v128.store(d + o, f32x4.add(v128.load(d + o), f32x4.mul(v128.load(r + o), lv)));
  }
  for (; w < W; w++) {
    const o = <usize>w << 2;
    store<f32>(d + o, load<f32>(d + o) + load<f32>(r + o) * l);
  }
}

// Nearest: a table of source indices i32 src_h[OH], then src_w[OW] (PyTorch's legacy "nearest").

export function f32_upsample_nearest2d_fwd(x: usize, y: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32, tab: usize, ith: i32, nth: i32): void {
  const ct = tab + (<usize>OH << 2);
  const s = rangeStart(NC * OH, ith, nth), e = rangeEnd(NC * OH, ith, nth);
  for (let r = s; r < e; r++) {
    const nc = r / OH, oh = r - nc * OH;
    const xr = x + ((<usize>(nc * H + load<i32>(tab + (<usize>oh << 2))) * W) << 2);
    const yr = y + ((<usize>r * OW) << 2);
    for (let ow = 0; ow < OW; ow++) store<f32>(yr + (<usize>ow << 2), load<f32>(xr + (<usize>load<i32>(ct + (<usize>ow << 2)) << 2)));
  }
}

/** Backward: dx[src] += dy, per plane (the work item), in output order. */
export function f32_upsample_nearest2d_bwd(dy: usize, dx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32, tab: usize, ith: i32, nth: i32): void {
  const ct = tab + (<usize>OH << 2);
  const s = rangeStart(NC, ith, nth), e = rangeEnd(NC, ith, nth);
  for (let nc = s; nc < e; nc++) {
    const dxp = dx + ((<usize>nc * H * W) << 2);
    memory.fill(dxp, 0, (<usize>H * W) << 2);
    for (let oh = 0; oh < OH; oh++) {
      const dr = dxp + ((<usize>load<i32>(tab + (<usize>oh << 2)) * W) << 2);
      const gr = dy + ((<usize>(nc * OH + oh) * OW) << 2);
      for (let ow = 0; ow < OW; ow++) {
        const q = dr + (<usize>load<i32>(ct + (<usize>ow << 2)) << 2);
        store<f32>(q, load<f32>(q) + load<f32>(gr + (<usize>ow << 2)));
      }
    }
  }
}
