// Pooling kernels (see docs/kernels.md). Forward and backward side by side.
//
// Max pooling is separable: the max over a kh x kw window is the max over kw of the max over
// kh. The forward first takes the max of the window's valid input rows into a row buffer padded
// with -Infinity (SIMD over the width), then the max across each window's columns (SIMD over
// four outputs, with stride-2 columns deinterleaved by a shuffle). Max is exact, so the order
// of the comparisons does not change a bit.
//
// The forward's vector max is one instruction where the input has no NaN, and redoes a row with
// wasm's NaN-propagating (and slower) f32x4.max when it may have had one.
//
// The backward finds the argmax again instead of saving it in the forward, with PyTorch's own
// rule (scan the window from -Infinity, take over on `val > max || isnan(val)`): ties go to the
// first max in scan order, a NaN window to its last NaN, and no index buffer outlives the call.
//
// Average pooling (avg_pool2d, adaptive and global average pooling) goes through one pair of
// kernels driven by a table of window bounds per output row and column, built by the op.
import { rangeStart, rangeEnd, take } from "./common";
import { storePart } from "./vmath";
import { maxpool2x2Fwd, maxpool2x2Bwd } from "./pool2x2";

/** 2x2 windows, stride 2, no padding or dilation, every window inside: pool2x2.ts. */
// @ts-ignore: decorator
@inline function is2x2(H: i32, W: i32, OH: i32, OW: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32): bool {
  return kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0 && dh == 1 && dw == 1 && 2 * OH <= H && 2 * OW <= W;
}

/** Four values row[i], row[i + s], row[i + 2s], row[i + 3s] (byte pointer p = &row[i]). */
// @ts-ignore: decorator
@inline function gather4(p: usize, s: i32): v128 {
  if (s == 1) return v128.load(p);
  if (s == 2) return i32x4.shuffle(v128.load(p), v128.load(p, 16), 0, 2, 4, 6);
  const b = <usize>s << 2;
  let v = f32x4.splat(load<f32>(p));
  v = f32x4.replace_lane(v, 1, load<f32>(p + b));
  v = f32x4.replace_lane(v, 2, load<f32>(p + 2 * b));
  return f32x4.replace_lane(v, 3, load<f32>(p + 3 * b));
}

/** First valid window row >= hs stepping by d (hs may be negative: padding). */
// @ts-ignore: decorator
@inline function firstValid(hs: i32, d: i32): i32 {
  return hs >= 0 ? hs : hs + ((-hs + d - 1) / d) * d;
}

/** max(a, b) on four lanes. exact: wasm's f32x4.max (NaN propagates), which x86 lowers to about
 *  seven instructions. Otherwise one instruction (relaxed_max, or pmax on the baseline build):
 *  the same value for any input without NaN (a max of -0 and +0 may keep either: equal values). */
// @ts-ignore: decorator
@inline function vmax(a: v128, b: v128, exact: bool): v128 {
  if (exact) return f32x4.max(a, b);
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_max(a, b);
  return f32x4.pmax(a, b);
}

/** One output row of max pooling (see f32_maxpool2d_fwd). Returns whether the fast path may have
 *  dropped a NaN: a sum of every input value read is NaN if any was (or, rarely, if infinities
 *  of both signs were read: the row is then redone exactly, which is right either way). */
// @ts-ignore: decorator
@inline function maxpoolRow(
  xp: usize, yr: usize, rb: usize, rw: usize, oh: i32, H: i32, W: i32, OW: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, dh: i32, dw: i32, exact: bool,
): bool {
  // vertical: max over the window's valid rows into rw (at least one row: the op checks that
  // every window meets the input); the first two rows in one pass
  const hs = oh * sh - ph;
  const h0 = firstValid(hs, dh), hEnd = min(hs + (kh - 1) * dh + 1, H);
  let nanv = f32x4.splat(0);
  let nans: f32 = 0;
  const r0 = xp + ((<usize>h0 * W) << 2);
  let h = h0 + dh;
  if (h < hEnd) {
    const r1 = xp + ((<usize>h * W) << 2);
    let w = 0;
    for (; w + 4 <= W; w += 4) {
      const o = <usize>w << 2;
      const a = v128.load(r0 + o), b = v128.load(r1 + o);
      v128.store(rw + o, vmax(a, b, exact));
      if (!exact) nanv = f32x4.add(nanv, f32x4.add(a, b));
    }
    for (; w < W; w++) {
      const o = <usize>w << 2;
      const a = load<f32>(r0 + o), b = load<f32>(r1 + o);
      store<f32>(rw + o, max(a, b));
      nans += a + b;
    }
    h += dh;
  } else {
    let w = 0;
    for (; w + 4 <= W; w += 4) {
      const o = <usize>w << 2;
      const a = v128.load(r0 + o);
      v128.store(rw + o, a);
      if (!exact) nanv = f32x4.add(nanv, a);
    }
    for (; w < W; w++) {
      const o = <usize>w << 2;
      const a = load<f32>(r0 + o);
      store<f32>(rw + o, a);
      nans += a;
    }
  }
  for (; h < hEnd; h += dh) {
    const xr = xp + ((<usize>h * W) << 2);
    let w = 0;
    for (; w + 4 <= W; w += 4) {
      const o = <usize>w << 2;
      const b = v128.load(xr + o);
      v128.store(rw + o, vmax(v128.load(rw + o), b, exact));
      if (!exact) nanv = f32x4.add(nanv, b);
    }
    for (; w < W; w++) {
      const o = <usize>w << 2;
      const b = load<f32>(xr + o);
      store<f32>(rw + o, max(load<f32>(rw + o), b));
      nans += b;
    }
  }
  // horizontal: output ow covers rb[ow*sw + j*dw], j < kw; four outputs at a time, the last
  // group partial (the row buffer has room: its lanes past OW read -Infinity and are dropped)
  for (let ow = 0; ow < OW; ow += 4) {
    let acc: v128;
    if (sw == 2 && dw == 1) {
      // stride 2: deinterleave even and odd columns once, shared by the first three taps
      const p = rb + (<usize>ow << 3);
      const l0 = v128.load(p), l1 = v128.load(p, 16);
      const ev = i32x4.shuffle(l0, l1, 0, 2, 4, 6);
      acc = ev;
      if (kw > 1) acc = vmax(acc, i32x4.shuffle(l0, l1, 1, 3, 5, 7), exact);
      if (kw > 2) acc = vmax(acc, i32x4.shuffle(ev, v128.load(p, 32), 1, 2, 3, 4), exact);
      for (let j = 3; j < kw; j++) acc = vmax(acc, gather4(p + (<usize>j << 2), 2), exact);
    } else {
      const p = rb + ((<usize>ow * sw) << 2);
      acc = gather4(p, sw);
      for (let j = 1; j < kw; j++) acc = vmax(acc, gather4(p + ((<usize>j * dw) << 2), sw), exact);
    }
    if (ow + 4 <= OW) v128.store(yr + (<usize>ow << 2), acc);
    else storePart(yr + (<usize>ow << 2), OW - ow, acc);
  }
  if (exact) return false;
  return v128.any_true(f32x4.ne(nanv, nanv)) || nans != nans;
}

/**
 * Max pool forward over NC planes of H x W into OH x OW. Work items: blocks of output rows,
 * taken one by one (take, docs/kernels.md).
 * Scratch per thread: rowLen floats, where rowLen >= max(pw + W, (OW-1)*sw + (kw-1)*dw + 1)
 * + 3*sw + 8 (the padded row buffer, with room for the vector reads of a last partial group).
 */
export function f32_maxpool2d_fwd(
  x: usize, y: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32,
  scratch: usize, rowLen: i32, ith: i32, nth: i32,
): void {
  if (is2x2(H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw)) {
    maxpool2x2Fwd(x, y, NC, H, W, OH, OW, nth);
    return;
  }
  const rb = scratch + <usize>ith * (<usize>rowLen << 2);
  // left and right padding of the row buffer: -Infinity, never a finite sentinel
  for (let j = 0; j < pw; j++) store<f32>(rb + (<usize>j << 2), -Infinity);
  for (let j = pw + W; j < rowLen; j++) store<f32>(rb + (<usize>j << 2), -Infinity);
  const rw = rb + (<usize>pw << 2); // rb[pw + w] holds input column w
  // items: blocks of RI output rows (about 1024 outputs), taken one by one
  const R = NC * OH, RI = max(1, 1024 / max(1, OW)), T = (R + RI - 1) / RI;
  for (let it = take(-1, nth); it < T; it = take(it, nth)) {
    const e = min(R, (it + 1) * RI);
    for (let r = it * RI; r < e; r++) {
      const nc = r / OH, oh = r - nc * OH;
      const xp = x + ((<usize>nc * H * W) << 2);
      const yr = y + ((<usize>r * OW) << 2);
      if (maxpoolRow(xp, yr, rb, rw, oh, H, W, OW, kh, kw, sh, sw, ph, dh, dw, false))
        maxpoolRow(xp, yr, rb, rw, oh, H, W, OW, kh, kw, sh, sw, ph, dh, dw, true);
    }
  }
}

/**
 * Max pool backward: dx[argmax] += dy for every output. The argmax is found again the way
 * PyTorch's forward finds it: scanning the window in order (rows, then columns) from -Infinity,
 * a value takes over when `val > max || isnan(val)` (so ties keep the first max and a NaN the
 * last NaN), starting from the window's first valid position. Four outputs at a time: each
 * valid window row is copied into its own row buffer padded with -Infinity (padding never takes
 * over), then every tap is one gather, compare and select.
 * Work items: planes (NC), taken one by one; each plane's gradient is zeroed and accumulated by
 * one thread, in output order. Scratch per thread: stride floats = kh * rowLen (row buffers, rowLen as in the
 * forward) + OW rounded up to 4 (each output column's first valid input column).
 */
export function f32_maxpool2d_bwd(
  x: usize, dy: usize, dx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32,
  kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32,
  scratch: usize, rowLen: i32, stride: i32, ith: i32, nth: i32,
): void {
  if (is2x2(H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw)) {
    maxpool2x2Bwd(x, dy, dx, NC, H, W, OH, OW, nth);
    return;
  }
  const base = scratch + <usize>ith * (<usize>stride << 2);
  const firstCol = base + (<usize>(kh * rowLen) << 2);
  for (let k = 0; k < kh; k++) {
    const rb = base + (<usize>(k * rowLen) << 2);
    for (let j = 0; j < pw; j++) store<f32>(rb + (<usize>j << 2), -Infinity);
    for (let j = pw + W; j < rowLen; j++) store<f32>(rb + (<usize>j << 2), -Infinity);
  }
  const OW4 = (OW + 3) & ~3;
  for (let ow = 0; ow < OW4; ow++) store<i32>(firstCol + (<usize>ow << 2), firstValid(ow * sw - pw, dw));
  const laneCols = i32x4(0, 1, 2, 3);
  for (let nc = take(-1, nth); nc < NC; nc = take(nc, nth)) {
    const xp = x + ((<usize>nc * H * W) << 2), dxp = dx + ((<usize>nc * H * W) << 2);
    memory.fill(dxp, 0, (<usize>H * W) << 2);
    const dyp = dy + ((<usize>nc * OH * OW) << 2);
    for (let oh = 0; oh < OH; oh++) {
      const hs = oh * sh - ph, h0 = firstValid(hs, dh), hEnd = min(hs + (kh - 1) * dh + 1, H);
      let rows = 0;
      for (let h = h0; h < hEnd; h += dh, rows++) {
        const d = base + (<usize>(rows * rowLen + pw) << 2), src = xp + ((<usize>h * W) << 2);
        let w = 0;
        for (; w + 4 <= W; w += 4) v128.store(d + (<usize>w << 2), v128.load(src + (<usize>w << 2)));
        for (; w < W; w++) store<f32>(d + (<usize>w << 2), load<f32>(src + (<usize>w << 2)));
      }
      for (let ow = 0; ow < OW; ow += 4) {
        let av = f32x4.splat(-Infinity);
        let ai = i32x4.add(v128.load(firstCol + (<usize>ow << 2)), i32x4.splat(h0 * W));
        // input column of tap 0 for each lane, relative to the row buffer's padding
        const col0 = i32x4.mul(i32x4.add(laneCols, i32x4.splat(ow)), i32x4.splat(sw));
        for (let r = 0; r < rows; r++) {
          const rb = base + (<usize>(r * rowLen) << 2);
          const rowIdx = i32x4.add(col0, i32x4.splat((h0 + r * dh) * W - pw));
          for (let j = 0; j < kw; j++) {
            const v = gather4(rb + ((<usize>(ow * sw + j * dw)) << 2), sw);
            const m = v128.or(f32x4.gt(v, av), f32x4.ne(v, v));
            av = v128.bitselect(v, av, m);
            ai = v128.bitselect(i32x4.add(rowIdx, i32x4.splat(j * dw)), ai, m);
          }
        }
        // scatter in output order (lanes in order; overlapping windows may share an input)
        const n = min(4, OW - ow);
        const g = dyp + (<usize>(oh * OW + ow) << 2);
        addAt(dxp, i32x4.extract_lane(ai, 0), load<f32>(g));
        if (n > 1) addAt(dxp, i32x4.extract_lane(ai, 1), load<f32>(g, 4));
        if (n > 2) addAt(dxp, i32x4.extract_lane(ai, 2), load<f32>(g, 8));
        if (n > 3) addAt(dxp, i32x4.extract_lane(ai, 3), load<f32>(g, 12));
      }
    }
  }
}

// @ts-ignore: decorator
@inline function addAt(p: usize, i: i32, v: f32): void {
  const q = p + (<usize>i << 2);
  store<f32>(q, load<f32>(q) + v);
}

// Window table for the average pools (i32, built by the op):
//   [0, OH) row start, [OH, 2OH) row end (exclusive, clipped to the input), [2OH, 3OH) row count
//   for the divisor; then the same three arrays of OW entries for columns.
// The divisor of output (oh, ow) is rowCount[oh] * colCount[ow]: true for avg_pool2d with or
// without count_include_pad (PyTorch's pool_size is a product of per-axis sizes) and for
// adaptive pooling.

/** Average pool forward. Work items: output rows (NC * OH). Scratch per thread: W floats. */
export function f32_avgpool2d_fwd(
  x: usize, y: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32, tab: usize,
  scratch: usize, rowLen: i32, ith: i32, nth: i32,
): void {
  const rb = scratch + <usize>ith * (<usize>rowLen << 2);
  const colTab = tab + (<usize>(3 * OH) << 2);
  const s = rangeStart(NC * OH, ith, nth), e = rangeEnd(NC * OH, ith, nth);
  for (let r = s; r < e; r++) {
    const nc = r / OH, oh = r - nc * OH;
    const xp = x + ((<usize>nc * H * W) << 2);
    const hs = load<i32>(tab + (<usize>oh << 2)), he = load<i32>(tab + (<usize>(OH + oh) << 2));
    const rowCount = load<i32>(tab + (<usize>(2 * OH + oh) << 2));
    const yr = y + ((<usize>r * OW) << 2);
    if (hs >= he) {
      memory.fill(yr, 0, <usize>OW << 2); // a window wholly in the padding averages to 0 (PyTorch)
      continue;
    }
    // vertical sum of the window's rows, in row order
    memory.copy(rb, xp + ((<usize>hs * W) << 2), <usize>W << 2);
    for (let h = hs + 1; h < he; h++) {
      const xr = xp + ((<usize>h * W) << 2);
      let w = 0;
      for (; w + 4 <= W; w += 4) {
        const o = <usize>w << 2;
        v128.store(rb + o, f32x4.add(v128.load(rb + o), v128.load(xr + o)));
      }
      for (; w < W; w++) {
        const o = <usize>w << 2;
        store<f32>(rb + o, load<f32>(rb + o) + load<f32>(xr + o));
      }
    }
    // horizontal sum over each window's columns, then one division (as PyTorch)
    for (let ow = 0; ow < OW; ow++) {
      const ws = load<i32>(colTab + (<usize>ow << 2)), we = load<i32>(colTab + (<usize>(OW + ow) << 2));
      const colCount = load<i32>(colTab + (<usize>(2 * OW + ow) << 2));
      let acc: f32 = 0;
      for (let w = ws; w < we; w++) acc += load<f32>(rb + (<usize>w << 2));
      store<f32>(yr + (<usize>ow << 2), ws < we ? acc / <f32>(rowCount * colCount) : 0);
    }
  }
}

/** Average pool backward: each output's dy / divisor spread over its window. Work items: planes
 *  (NC). Per output row, the spread along the columns goes into a row buffer, then the buffer is
 *  added to every row of the window (SIMD). Scratch per thread: W floats. */
export function f32_avgpool2d_bwd(
  dy: usize, dx: usize, NC: i32, H: i32, W: i32, OH: i32, OW: i32, tab: usize,
  scratch: usize, rowLen: i32, ith: i32, nth: i32,
): void {
  const rb = scratch + <usize>ith * (<usize>rowLen << 2);
  const colTab = tab + (<usize>(3 * OH) << 2);
  const s = rangeStart(NC, ith, nth), e = rangeEnd(NC, ith, nth);
  for (let nc = s; nc < e; nc++) {
    const dxp = dx + ((<usize>nc * H * W) << 2);
    memory.fill(dxp, 0, (<usize>H * W) << 2);
    const dyp = dy + ((<usize>nc * OH * OW) << 2);
    for (let oh = 0; oh < OH; oh++) {
      const hs = load<i32>(tab + (<usize>oh << 2)), he = load<i32>(tab + (<usize>(OH + oh) << 2));
      const rowCount = load<i32>(tab + (<usize>(2 * OH + oh) << 2));
      if (hs >= he) continue;
      memory.fill(rb, 0, <usize>W << 2);
      for (let ow = 0; ow < OW; ow++) {
        const ws = load<i32>(colTab + (<usize>ow << 2)), we = load<i32>(colTab + (<usize>(OW + ow) << 2));
        const colCount = load<i32>(colTab + (<usize>(2 * OW + ow) << 2));
        const g = load<f32>(dyp + (<usize>(oh * OW + ow) << 2)) / <f32>(rowCount * colCount);
        for (let w = ws; w < we; w++) {
          const q = rb + (<usize>w << 2);
          store<f32>(q, load<f32>(q) + g);
        }
      }
      for (let h = hs; h < he; h++) {
        const dr = dxp + ((<usize>h * W) << 2);
        let w = 0;
        for (; w + 4 <= W; w += 4) {
          const o = <usize>w << 2;
          v128.store(dr + o, f32x4.add(v128.load(dr + o), v128.load(rb + o)));
        }
        for (; w < W; w++) {
          const o = <usize>w << 2;
          store<f32>(dr + o, load<f32>(dr + o) + load<f32>(rb + o));
        }
      }
    }
  }
}
