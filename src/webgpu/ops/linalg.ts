// WebGPU kernels of the ops in src/ops/linalg.ts (wgsl/gemm.wgsl), attached to their op-table
// entries: matmul, gemm, linear. gpuGemm is the one GEMM of the WebGPU engine (convolutions use
// it too); its tiling is described in wgsl/gemm.wgsl.
import code from "../../../wgsl/gemm.wgsl";
import { empty, type Tensor } from "../../tensor.js";
import { matmulOp, gemmOp, linearOp } from "../../ops/linalg.js";
import { wgslFile, f32bits, type GpuEngine } from "../engine.js";
import { K as EK, gpuScale } from "./eltwise.js";
import { gpuReduce } from "./shape.js";

export const K = wgslFile("gemm.wgsl", code, ["gemm", "gemm_splitk"] as const);

const e = (t: Tensor) => t.ptr >>> 2;

/** The arguments of gpuGemm. Offsets (a, b, c, bias) and strides are in ELEMENTS (f32 words of
 *  the arena: a tensor's `t.ptr >>> 2`), matrices row-major with leading dimensions lda/ldb/ldc. */
export interface GpuGemmCall {
  /** op(A) is M x K, op(B) is K x N, C is M x N */
  M: number; N: number; K: number;
  /** A: M x K (lda >= K), or K x M (lda >= M) when transA */
  a: number; lda: number; transA?: boolean;
  /** B: K x N (ldb >= N), or N x K (ldb >= K) when transB */
  b: number; ldb: number; transB?: boolean;
  c: number; ldc: number;
  /** C = alpha op(A) op(B) + beta C; C is not read when beta is 0 (default alpha 1, beta 0) */
  alpha?: number; beta?: number;
  /** added after alpha/beta, times biasScale (default 1): bias[m] ("row": one value per output
   *  row, a conv's channels), bias[n] ("col", the default: linear's out features), or bias[0]
   *  ("scalar") */
  bias?: number; biasAlong?: "row" | "col" | "scalar"; biasScale?: number;
  /** max(0, .) last (NaN passes, as relu) */
  relu?: boolean;
  /** `batch` independent GEMMs, the i-th at a + i*strideA, b + i*strideB, c + i*strideC,
   *  bias + i*strideBias (strides 0: shared operand, e.g. one weight for every image) */
  batch?: number; strideA?: number; strideB?: number; strideC?: number; strideBias?: number;
}

const TS = 64, TK = 16;
/** Workgroups below which a long K is split (so that a small output still fills the GPU). */
const SPLIT_BELOW = 64, SPLIT_MIN_K = 1024, SPLIT_MIN_CHUNK = 256;

/**
 * C = alpha * op(A) op(B) + beta * C (+ biasScale * bias) (relu), batched:
 *   gpuGemm(g, { M, N, K, a, lda, transA, b, ldb, transB, c, ldc, alpha, beta,
 *                bias?, biasAlong?: "row" | "col" | "scalar", biasScale?, relu?,
 *                batch?, strideA?, strideB?, strideC?, strideBias? })
 * Tiled kernel (64 x 64 tiles, 16 x 16 threads, 4 x 4 per thread, K steps of 16 in workgroup
 * memory). Deterministic: each output is summed over k in order by one thread; when there are
 * few tiles and K is long, K is split into chunks (a multiple of 16, chosen from the sizes only)
 * whose partial sums are then added in order by a second kernel. Records dispatches only.
 */
export function gpuGemm(g: GpuEngine, p: GpuGemmCall): void {
  const { M, N, K: Kd } = p;
  const batch = p.batch ?? 1;
  if (M === 0 || N === 0 || batch === 0) return;
  const alpha = p.alpha ?? 1, beta = p.beta ?? 0;
  const tilesM = Math.ceil(M / TS), tilesN = Math.ceil(N / TS), tiles = tilesM * tilesN * batch;
  let S = 1, Kc = Math.max(TK, Math.ceil(Kd / TK) * TK);
  if (tiles < SPLIT_BELOW && Kd >= SPLIT_MIN_K) {
    S = Math.min(Math.ceil(SPLIT_BELOW / tiles), Math.floor(Kd / SPLIT_MIN_CHUNK));
    Kc = Math.ceil(Math.ceil(Kd / S) / TK) * TK;
    S = Math.ceil(Kd / Kc);
  }
  const along = p.biasAlong ?? "col";
  const flags = (p.transA ? 1 : 0) | (p.transB ? 2 : 0) | (beta !== 0 ? 4 : 0) | (p.bias !== undefined ? 8 : 0) | (p.relu ? 16 : 0);
  const part = S > 1 ? g.alloc(batch * S * M * N * 4, "split-K partials") : 0;
  const args = [
    M, N, Kd, p.a, p.lda, p.b, p.ldb, p.c, p.ldc, f32bits(alpha), f32bits(beta), flags,
    p.bias ?? 0, along === "row" ? 1 : 0, along === "col" ? 1 : 0, f32bits(p.biasScale ?? 1),
    p.strideA ?? 0, p.strideB ?? 0, p.strideC ?? 0, p.strideBias ?? 0,
    tilesM, tilesN, batch, S, Kc, part >>> 2,
  ];
  if (S === 1) g.dispatch(K.gemm, args, tiles);
  else {
    args[11] = flags | 32;
    g.dispatch(K.gemm, args, tiles * S);
    args[11] = flags;
    g.dispatch(K.gemm_splitk, args, Math.ceil((batch * M * N) / 256));
    g.release(part);
  }
}

/** alpha * op(a) op(b) (+ colBias) for rank-2 tensors, into a new [M, N] tensor. */
function mm(a: Tensor, b: Tensor, transA: boolean, transB: boolean, alpha = 1, colBias?: Tensor | null): Tensor {
  const [M, K] = transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const N = transB ? b.shape[0] : b.shape[1];
  const y = empty([M, N], a.engine);
  gpuGemm(a.engine as any, {
    M, N, K, a: e(a), lda: a.shape[1], transA, b: e(b), ldb: b.shape[1], transB, c: e(y), ldc: N, alpha,
    bias: colBias ? e(colBias) : undefined, biasAlong: "col",
  });
  return y;
}

/** Gradients of alpha op(A) op(B) given g = dL/dC (as mmBackward in src/ops/linalg.ts). */
function mmBackward(g: Tensor, a: Tensor, b: Tensor, transA: boolean, transB: boolean, alpha: number, needs: boolean[]) {
  let da: Tensor | null = null, db: Tensor | null = null;
  if (needs[0]) da = transA ? mm(b, g, transB, true, alpha) : mm(g, b, false, !transB, alpha);
  if (needs[1]) db = transB ? mm(g, a, true, transA, alpha) : mm(a, g, !transA, false, alpha);
  return [da, db];
}

/** scale * column sums of g [M, N] (over its rows) into a new tensor of `shape` (N values). */
function sumRows(g: Tensor, scale: number, shape: readonly number[]): Tensor {
  const [M, N] = g.shape;
  const out = empty(shape, g.engine);
  gpuReduce(g.engine as any, e(g), e(out), { C: N, sC: 1, N0: M, sN: N, I: 1, scale });
  return out;
}

matmulOp.webgpu = {
  forward: (_ctx, [a, b], { transA, transB }) => mm(a!, b!, transA, transB),
  backward: (_ctx, g, [a, b], { transA, transB }, needs) => mmBackward(g, a!, b!, transA, transB, 1, needs),
};

/** How c broadcasts onto [M, N] (as cKind in src/ops/linalg.ts; check() has accepted it). */
function cKind(c: Tensor, M: number, N: number): "full" | "col" | "row" | "scalar" {
  const s = c.shape;
  if (s.length === 2 && s[0] === M && s[1] === N) return "full";
  if (c.size === 1 && s.length <= 2) return "scalar";
  if (s.length === 2 && s[0] === M && s[1] === 1) return "row";
  return "col";
}

const mnOf = (a: Tensor, b: Tensor, transA: boolean, transB: boolean) => ({
  M: transA ? a.shape[1] : a.shape[0],
  N: transB ? b.shape[0] : b.shape[1],
  K: transA ? a.shape[0] : a.shape[1],
});

gemmOp.webgpu = {
  forward(ctx, [a, b, c], { transA, transB, alpha, beta }) {
    const { M, N, K } = mnOf(a!, b!, transA, transB);
    const y = empty([M, N], ctx.engine);
    const call: GpuGemmCall = { M, N, K, a: e(a!), lda: a!.shape[1], transA, b: e(b!), ldb: b!.shape[1], transB, c: e(y), ldc: N, alpha };
    if (c && beta !== 0) {
      const kind = cKind(c, M, N);
      if (kind === "full") {
        // C = c first, then the GEMM reads it with beta
        ctx.gpu!.dispatch(EK.copy, [e(c), e(y), y.size], Math.ceil(y.size / 256));
        call.beta = beta;
      } else {
        // a broadcast c is a bias times beta (the CPU rounds beta * c to f32 first: the same)
        Object.assign(call, { bias: e(c), biasAlong: kind, biasScale: beta });
      }
    }
    gpuGemm(ctx.gpu!, call);
    return y;
  },
  backward(ctx, g, [a, b, c], { transA, transB, alpha, beta }, needs) {
    const [da, db] = mmBackward(g, a!, b!, transA, transB, alpha, needs);
    let dc: Tensor | null = null;
    if (needs[2] && c) {
      const { M, N } = mnOf(a!, b!, transA, transB);
      const kind = cKind(c, M, N);
      if (kind === "full") dc = gpuScale(g, beta);
      else if (kind === "col") dc = sumRows(g, beta, c.shape);
      else {
        // row: sums along each row of g; scalar: the sum of all of g (both contiguous runs)
        dc = empty(c.shape, ctx.engine);
        const r = kind === "row" ? { C: M, sC: N, N0: 1, sN: 0, I: N } : { C: 1, sC: 0, N0: 1, sN: 0, I: M * N };
        gpuReduce(ctx.gpu!, e(g), e(dc), { ...r, scale: beta });
      }
    }
    return [da, db, dc];
  },
};

linearOp.webgpu = {
  // y = x w^T + b: x [B, in], w [out, in]
  forward: (_ctx, [x, w, b]) => mm(x!, w!, false, true, 1, b),
  backward: (_ctx, g, [x, w, b], _a, needs) => [
    needs[0] ? mm(g, w!, false, false) : null,
    needs[1] ? mm(g, x!, true, false) : null,
    needs[2] && b ? sumRows(g, 1, b.shape) : null,
  ],
};
