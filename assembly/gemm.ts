// GEMM kernels: C = alpha * op(A) * op(B) + beta * C (+ a row or column bias), row-major.
// The micro-kernel, the packing and the blocking are in gemm_micro.ts (shared with conv2d.ts).
import { rangeStart, rangeEnd, chunkStart, chunkEnd, take, madd } from "./common";
import { MR, NR, KC_MAX, NC_SLIVERS, EP_FIRST, EP_ROWBIAS, EP_COLBIAS, kcOf, packAStrip, packB, macroBlock, epilogue1 } from "./gemm_micro";

/** Packs op(A) for f32_gemm: G matrices (strideG floats apart), each M x K, as MR-row strips over
 *  the whole K: strip s of matrix g at dst + (g*S + s)*K*MR floats, S = ceil(M/MR). */
export function f32_gemm_pack_a(a: usize, lda: i32, transA: i32, M: i32, K: i32, G: i32, strideG: i32, dst: usize, ith: i32, nth: i32): void {
  const S = (M + MR - 1) / MR;
  for (let it = take(-1, nth); it < G * S; it = take(it, nth)) {
    const g = it / S, s = it - g * S;
    packAStrip(a + (<usize>g * strideG << 2), lda, transA, s * MR, min(MR, M - s * MR), 0, K, dst + (<usize>it * K * MR << 2));
  }
}

// Per-thread scratch of f32_gemm: (KC_MAX * NC_SLIVERS * NR + MR * NR) floats (src/ops/linalg.ts).

/** C (M x N, row stride ldc) = alpha * op(A) op(B) + beta * C (+ bias), op(A) packed by
 *  f32_gemm_pack_a. flags: EP_BETA / EP_ROWBIAS / EP_COLBIAS; bias: M or N floats. */
export function f32_gemm(pa: usize, b: usize, ldb: i32, transB: i32, c: usize, ldc: i32, M: i32, N: i32, K: i32,
  alpha: f32, beta: f32, flags: i32, bias: usize, scratch: usize, scratchBytes: i32, ith: i32, nth: i32): void {
  const S = (M + MR - 1) / MR, J = (N + NR - 1) / NR;
  // Items: CB blocks of JB column slivers times RB blocks of SB row strips, about 16 or more in
  // all where the shape has them, taken one by one. A function of the shape only (any split
  // gives the same bits anyway, see the top of gemm_micro.ts): it only balances the load.
  const JB = min(NC_SLIVERS, max(1, (J + 15) / 16)), CB = (J + JB - 1) / JB;
  if (S == 0 || J == 0) return;
  const RB0 = min(S, max(1, (16 + CB - 1) / CB)), SB = (S + RB0 - 1) / RB0, RB = (S + SB - 1) / SB;
  const T = RB * CB;
  const pb = scratch + <usize>ith * scratchBytes;
  const tile = pb + (<usize>(KC_MAX * NC_SLIVERS * NR) << 2);
  const rbias = flags & EP_ROWBIAS ? bias : 0;
  const cbias = flags & EP_COLBIAS ? bias : 0;
  const kcb = K > 0 ? kcOf(K) : 1;
  for (let it = take(-1, nth); it < T; it = take(it, nth)) {
    const cb = it / RB, rb = it - cb * RB;
    const j0 = cb * JB, j1 = min(J, j0 + JB), s0 = rb * SB, s1 = min(S, s0 + SB);
    if (K == 0) {
      // no products: C = beta * C (+ bias), as one all-zero block
      for (let i = s0 * MR; i < min(M, s1 * MR); i++)
        for (let j = j0 * NR; j < min(N, j1 * NR); j++)
          epilogue1(c + ((<usize>i * ldc + j) << 2), 0, alpha, beta, flags | EP_FIRST,
            rbias ? load<f32>(rbias + (<usize>i << 2)) : 0, cbias ? load<f32>(cbias + (<usize>j << 2)) : 0);
      continue;
    }
    const nsl = j1 - j0;
    const n0 = j0 * NR, nc = min(nsl * NR, N - n0);
    for (let pc = 0; pc < K; pc += kcb) {
      const kc = min(kcb, K - pc);
      packB(b, ldb, transB, pc, kc, n0, nc, pb);
      const f = pc == 0 ? flags | EP_FIRST : flags & ~EP_FIRST;
      macroBlock(pa, K, pc, s0, s1, pb, kc, nsl, c + (<usize>n0 << 2), ldc, M, nc, alpha, beta, f, rbias,
        cbias + (<usize>n0 << 2), tile);
    }
  }
}

// ---- the gradients of a broadcast C (and linear's bias) ----

/** out[j] = scale * sum over rows i of g[i, j] (g: M x N), rows added in order. */
export function f32_gemm_sum_rows(g: usize, M: i32, N: i32, scale: f32, out: usize, ith: i32, nth: i32): void {
  const Q = (N + 3) >> 2; // items: groups of 4 columns
  const e = rangeEnd(Q, ith, nth);
  const sc = f32x4.splat(scale);
  const rs = <usize>N << 2;
  for (let q = rangeStart(Q, ith, nth); q < e; q++) {
    const j = q << 2;
    if (j + 4 <= N) {
      let acc = f32x4.splat(0);
      let p = g + (<usize>j << 2);
      for (let i = 0; i < M; i++) {
        acc = f32x4.add(acc, v128.load(p));
        p += rs;
      }
      v128.store(out + (<usize>j << 2), f32x4.mul(acc, sc));
    } else {
      for (let jj = j; jj < N; jj++) {
        let acc: f32 = 0;
        for (let i = 0; i < M; i++) acc += load<f32>(g + ((<usize>i * N + jj) << 2));
        store<f32>(out + (<usize>jj << 2), acc * scale);
      }
    }
  }
}

/** out[i] = scale * sum over columns j of g[i, j]: four lane sums, then the lanes in order. */
export function f32_gemm_sum_cols(g: usize, M: i32, N: i32, scale: f32, out: usize, ith: i32, nth: i32): void {
  const e = rangeEnd(M, ith, nth);
  for (let i = rangeStart(M, ith, nth); i < e; i++) {
    const row = g + (<usize>i * N << 2);
    let acc = f32x4.splat(0);
    let j = 0;
    for (; j + 4 <= N; j += 4) acc = f32x4.add(acc, v128.load(row + (<usize>j << 2)));
    let s = (f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1)) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
    for (; j < N; j++) s += load<f32>(row + (<usize>j << 2));
    store<f32>(out + (<usize>i << 2), s * scale);
  }
}

/** y = s * x (n floats). */
export function f32_gemm_scale(x: usize, n: i32, s: f32, y: usize, ith: i32, nth: i32): void {
  const b = chunkStart(n, ith, nth), e = chunkEnd(n, ith, nth);
  const sv = f32x4.splat(s);
  let i = b;
  for (; i + 4 <= e; i += 4) v128.store(y + (<usize>i << 2), f32x4.mul(v128.load(x + (<usize>i << 2)), sv));
  for (; i < e; i++) store<f32>(y + (<usize>i << 2), load<f32>(x + (<usize>i << 2)) * s);
}

/** Columns per item of f32_gemv (eight at a time). */
// @ts-ignore: decorator
@inline const GV_COLS: i32 = 64;

/** C (1 x N) = a (1 x K) B^T (+ bias[n]), B N x K (row stride ldb): a GEMM with one row of A,
 *  reading B's rows where they lie (no packing: a batch-1 Linear layer streams its weights once).
 *  Each C element is summed as f32_gemm sums it: over K in blocks of kcOf(K), one madd per k in
 *  order from zero in its own lane, the first block stored (+ bias) and each later one added, so
 *  the bits are those of the same row in f32_gemm (whose rows do not depend on each other): a
 *  batch of one gives the bits of that row in a batch. Items: GV_COLS columns, eight at a time,
 *  four k at a time through 4x4 transposes of B's rows. Scratch: 32 bytes per thread. */
export function f32_gemv(a: usize, b: usize, ldb: i32, c: usize, N: i32, K: i32, bias: usize, scratch: usize, ith: i32, nth: i32): void {
  const kcb = kcOf(K), T = (N + GV_COLS - 1) / GV_COLS, rs = <usize>ldb << 2;
  const tmp = scratch + (<usize>ith << 5), z = f32x4.splat(0);
  for (let it = take(-1, nth); it < T; it = take(it, nth)) {
    const n1 = min(N, (it + 1) * GV_COLS);
    for (let n0 = it * GV_COLS; n0 < n1; n0 += 8) {
      const nn = min(8, n1 - n0), row = b + <usize>n0 * rs;
      for (let pc = 0; pc < K; pc += kcb) {
        const kc = min(kcb, K - pc);
        let acc0 = z, acc1 = z, k = 0;
        if (nn == 8)
          for (; k + 4 <= kc; k += 4) {
            const q = row + (<usize>(pc + k) << 2), ap = a + (<usize>(pc + k) << 2);
            // rows n0 .. n0 + 7 at k .. k + 3, transposed: u_j, w_j = column k + j of rows 0-3, 4-7
            const x0 = v128.load(q), x1 = v128.load(q + rs), x2 = v128.load(q + 2 * rs), x3 = v128.load(q + 3 * rs);
            const y0 = v128.load(q + 4 * rs), y1 = v128.load(q + 5 * rs), y2 = v128.load(q + 6 * rs), y3 = v128.load(q + 7 * rs);
            const s0 = i32x4.shuffle(x0, x1, 0, 4, 1, 5), s1 = i32x4.shuffle(x2, x3, 0, 4, 1, 5);
            const s2 = i32x4.shuffle(x0, x1, 2, 6, 3, 7), s3 = i32x4.shuffle(x2, x3, 2, 6, 3, 7);
            const t0 = i32x4.shuffle(y0, y1, 0, 4, 1, 5), t1 = i32x4.shuffle(y2, y3, 0, 4, 1, 5);
            const t2 = i32x4.shuffle(y0, y1, 2, 6, 3, 7), t3 = i32x4.shuffle(y2, y3, 2, 6, 3, 7);
            let av = v128.load32_splat(ap);
            acc0 = madd(av, i32x4.shuffle(s0, s1, 0, 1, 4, 5), acc0);
            acc1 = madd(av, i32x4.shuffle(t0, t1, 0, 1, 4, 5), acc1);
            av = v128.load32_splat(ap, 4);
            acc0 = madd(av, i32x4.shuffle(s0, s1, 2, 3, 6, 7), acc0);
            acc1 = madd(av, i32x4.shuffle(t0, t1, 2, 3, 6, 7), acc1);
            av = v128.load32_splat(ap, 8);
            acc0 = madd(av, i32x4.shuffle(s2, s3, 0, 1, 4, 5), acc0);
            acc1 = madd(av, i32x4.shuffle(t2, t3, 0, 1, 4, 5), acc1);
            av = v128.load32_splat(ap, 12);
            acc0 = madd(av, i32x4.shuffle(s2, s3, 2, 3, 6, 7), acc0);
            acc1 = madd(av, i32x4.shuffle(t2, t3, 2, 3, 6, 7), acc1);
          }
        for (; k < kc; k++) {
          // one k: column k of the nn rows (zeros past them) through tmp
          const q = row + (<usize>(pc + k) << 2);
          for (let i = 0; i < 8; i++) store<f32>(tmp + (<usize>i << 2), i < nn ? load<f32>(q + <usize>i * rs) : 0);
          const av = v128.load32_splat(a + (<usize>(pc + k) << 2));
          acc0 = madd(av, v128.load(tmp), acc0);
          acc1 = madd(av, v128.load(tmp, 16), acc1);
        }
        // the epilogue of f32_gemm's tiles (epilogue4, epilogue1): the first block acc (+ bias),
        // later ones C + acc
        const p = c + (<usize>n0 << 2), bp = bias + (<usize>n0 << 2);
        if (nn == 8) {
          if (pc > 0) {
            acc0 = f32x4.add(v128.load(p), acc0);
            acc1 = f32x4.add(v128.load(p, 16), acc1);
          } else if (bias) {
            acc0 = f32x4.add(acc0, v128.load(bp));
            acc1 = f32x4.add(acc1, v128.load(bp, 16));
          }
          v128.store(p, acc0);
          v128.store(p, acc1, 16);
        } else {
          v128.store(tmp, acc0);
          v128.store(tmp, acc1, 16);
          for (let i = 0; i < nn; i++) {
            const o = <usize>i << 2, t = load<f32>(tmp + o);
            store<f32>(p + o, pc > 0 ? load<f32>(p + o) + t : bias ? t + load<f32>(bp + o) : t);
          }
        }
      }
    }
  }
}
