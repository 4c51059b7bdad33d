// linalg ops (see docs/ops.md): matmul, gemm, linear; forward and backward side by side.
// Kernels in assembly/gemm.ts (packed SGEMM, shared with the convolutions).
import { Tensor, shapeStr, empty } from "../tensor.js";
import type { Engine } from "../engine/engine.js";
import { defineOp, fail, checkRank } from "./table.js";
import { describe } from "../options.js";

// ---- the GEMM driver (also used by conv.ts) ----

/** Must match assembly/gemm_micro.ts. */
export const MR = 6, NR = 8, KC_MAX = 256, NC_SLIVERS = 32;
export const EP_BETA = 2, EP_ROWBIAS = 4, EP_COLBIAS = 8;
const GEMM_SCRATCH = (KC_MAX * NC_SLIVERS * NR + MR * NR) * 4;

/** Bytes of the packed copy of G matrices op(A), each M x K (f32_gemm_pack_a). */
export function packedABytes(M: number, K: number, G = 1): number {
  return G * Math.ceil(M / MR) * MR * K * 4;
}

/** Packs op(A) (G matrices strideG floats apart) into a new buffer; the caller releases it. */
export function packA(eng: Engine, a: number, lda: number, transA: boolean, M: number, K: number, G = 1, strideG = 0): number {
  const pa = eng.alloc(Math.max(4, packedABytes(M, K, G)), "packed GEMM operand");
  if (M > 0 && K > 0) eng.run("f32_gemm_pack_a", [a, lda, transA ? 1 : 0, M, K, G, strideG, pa], G * M * K);
  return pa;
}

export interface GemmCall {
  a: number; lda: number; transA: boolean;
  b: number; ldb: number; transB: boolean;
  c: number; ldc: number;
  M: number; N: number; K: number;
  alpha?: number; beta?: number;
  /** pointer to M floats added to each row (conv bias), or N floats added to each column (linear) */
  rowBias?: number; colBias?: number;
}

/** C = alpha op(A) op(B) + beta C (+ bias) with pointers into the engine's memory. */
export function runGemm(eng: Engine, g: GemmCall): void {
  const { M, N, K } = g;
  if (M === 0 || N === 0) return;
  const alpha = g.alpha ?? 1, beta = g.beta ?? 0;
  if (M === 1 && g.transB && !g.transA && K > 0 && alpha === 1 && beta === 0 && !g.rowBias) {
    // one row times B^T (a batch-1 Linear): B's rows read where they lie, the same sums as below
    eng.run("f32_gemv", [g.a, g.b, g.ldb, g.c, N, K, g.colBias || 0, eng.scratch(32)], N * K);
    return;
  }
  const flags = (beta !== 0 ? EP_BETA : 0) | (g.rowBias ? EP_ROWBIAS : 0) | (g.colBias ? EP_COLBIAS : 0);
  const pa = packA(eng, g.a, g.lda, g.transA, M, K);
  try {
    const scratch = eng.scratch(GEMM_SCRATCH);
    eng.run("f32_gemm", [pa, g.b, g.ldb, g.transB ? 1 : 0, g.c, g.ldc, M, N, K, alpha, beta, flags, g.rowBias || g.colBias || 0, scratch, GEMM_SCRATCH], M * N * Math.max(K, 1));
  } finally {
    eng.release(pa);
  }
}

/** out = alpha * op(a) op(b) (+ colBias) for rank-2 tensors, into a new [M, N] tensor. */
function mm(a: Tensor, b: Tensor, transA: boolean, transB: boolean, alpha = 1, colBias?: Tensor): Tensor {
  const [M, K] = transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const N = transB ? b.shape[0] : b.shape[1];
  const y = empty([M, N], a.engine);
  runGemm(a.engine, {
    a: a.ptr, lda: a.shape[1], transA, b: b.ptr, ldb: b.shape[1], transB, c: y.ptr, ldc: N, M, N, K, alpha,
    colBias: colBias?.ptr,
  });
  return y;
}

/** sums of g [M, N] over rows (into N floats) or over columns (into M floats), times scale */
function reduce(g: Tensor, over: "rows" | "cols", scale: number, shape: number[]): Tensor {
  const [M, N] = g.shape;
  const out = empty(shape, g.engine);
  g.engine.run(over === "rows" ? "f32_gemm_sum_rows" : "f32_gemm_sum_cols", [g.ptr, M, N, scale, out.ptr], M * N);
  return out;
}

// ---- matmul ----

interface MatmulAttrs { transA: boolean; transB: boolean }

function opShapes(op: string, a: Tensor, b: Tensor, transA: unknown, transB: unknown) {
  checkRank(op, "a", a, 2);
  checkRank(op, "b", b, 2);
  if (typeof transA !== "boolean" || typeof transB !== "boolean") fail(op, `transA and transB must be booleans, got ${describe(transA)}, ${describe(transB)}`);
  const [M, K] = transA ? [a.shape[1], a.shape[0]] : a.shape;
  const [K2, N] = transB ? [b.shape[1], b.shape[0]] : b.shape;
  if (K !== K2)
    fail(op, `inner dimensions differ: op(a) is [${M},${K}] (a ${shapeStr(a.shape)}${transA ? " transposed" : ""}) but op(b) is [${K2},${N}] (b ${shapeStr(b.shape)}${transB ? " transposed" : ""})`);
  return { M, N, K };
}

/** Gradients of alpha * op(A) op(B) with respect to A and B, given g = dL/dC. */
function mmBackward(g: Tensor, a: Tensor, b: Tensor, transA: boolean, transB: boolean, alpha: number, needs: boolean[]) {
  let da: Tensor | null = null, db: Tensor | null = null;
  if (needs[0]) da = transA ? mm(b, g, transB, true, alpha) : mm(g, b, false, !transB, alpha);
  if (needs[1]) db = transB ? mm(g, a, true, transA, alpha) : mm(a, g, !transA, false, alpha);
  return [da, db];
}

export const matmulOp = defineOp<MatmulAttrs>({
  name: "matmul",
  inputs: ["a", "b"],
  check([a, b], { transA, transB }) {
    opShapes("matmul", a!, b!, transA, transB);
  },
  forward(_ctx, [a, b], { transA, transB }) {
    return mm(a!, b!, transA, transB);
  },
  backward(_ctx, g, [a, b], { transA, transB }, needs) {
    return mmBackward(g, a!, b!, transA, transB, 1, needs);
  },
}, { transA: false, transB: false });

/** op(a) @ op(b) for rank-2 tensors; op transposes when transA / transB. */
export function matmul(a: Tensor, b: Tensor, opts: Partial<MatmulAttrs> = {}): Tensor {
  return matmulOp.apply([a, b], opts);
}

// ---- gemm (ONNX Gemm) ----

interface GemmAttrs { transA: boolean; transB: boolean; alpha: number; beta: number }

/** How c broadcasts onto [M, N]: the full matrix, one value per column, per row, or a scalar. */
function cKind(c: Tensor, M: number, N: number): "full" | "col" | "row" | "scalar" | null {
  const s = c.shape;
  if (s.length === 2 && s[0] === M && s[1] === N) return "full";
  if (c.size === 1 && s.length <= 2) return "scalar";
  if ((s.length === 1 && s[0] === N) || (s.length === 2 && s[0] === 1 && s[1] === N)) return "col";
  if (s.length === 2 && s[0] === M && s[1] === 1) return "row";
  return null;
}

export const gemmOp = defineOp<GemmAttrs>({
  name: "gemm",
  inputs: ["a", "b", "c?"],
  check([a, b, c], { transA, transB, alpha, beta }) {
    const { M, N } = opShapes("gemm", a!, b!, transA, transB);
    if (typeof alpha !== "number" || typeof beta !== "number") fail("gemm", `alpha and beta must be numbers, got ${describe(alpha)}, ${describe(beta)}`);
    if (c && !cKind(c, M, N)) fail("gemm", `c ${shapeStr(c.shape)} does not broadcast to the output [${M},${N}] (a ${shapeStr(a!.shape)}, b ${shapeStr(b!.shape)})`);
  },
  forward(ctx, [a, b, c], { transA, transB, alpha, beta }) {
    const eng = ctx.engine;
    const { M, N, K } = opShapes("gemm", a!, b!, transA, transB);
    const y = empty([M, N], eng);
    const call: GemmCall = { a: a!.ptr, lda: a!.shape[1], transA, b: b!.ptr, ldb: b!.shape[1], transB, c: y.ptr, ldc: N, M, N, K, alpha };
    const kind = c && beta !== 0 ? cKind(c, M, N) : null;
    let tmp: Tensor | null = null;
    if (kind === "full") {
      eng.run("f32_copy", [c!.ptr, y.ptr, y.size], y.size);
      call.beta = beta;
    } else if (kind) {
      // a broadcast c is added as a bias: beta * c first (as ONNX: alpha*AB + beta*C)
      const n = kind === "row" || kind === "scalar" ? M : N;
      tmp = empty([n], eng);
      const t = tmp.data, cv = c!.data;
      for (let i = 0; i < n; i++) t[i] = Math.fround(beta * (kind === "scalar" ? cv[0] : cv[i]));
      if (kind === "col") call.colBias = tmp.ptr;
      else call.rowBias = tmp.ptr;
    }
    runGemm(eng, call);
    tmp?.dispose();
    return y;
  },
  backward(_ctx, g, [a, b, c], { transA, transB, alpha, beta }, needs) {
    const [da, db] = mmBackward(g, a!, b!, transA, transB, alpha, needs);
    let dc: Tensor | null = null;
    if (needs[2] && c) {
      const { M, N } = opShapes("gemm", a!, b!, transA, transB);
      const kind = cKind(c, M, N);
      if (kind === "full") dc = reduceScalarFull(g, beta);
      else if (kind === "col") dc = reduce(g, "rows", beta, [...c.shape]);
      else if (kind === "row") dc = reduce(g, "cols", beta, [...c.shape]);
      else {
        const r = reduce(g, "rows", 1, [N]);
        dc = reduce(r.reshape([1, N]), "cols", beta, [...c.shape]);
        r.dispose();
      }
    }
    return [da, db, dc];
  },
}, { transA: false, transB: false, alpha: 1, beta: 1 });

/** beta * g, elementwise (the gradient of a full c). */
function reduceScalarFull(g: Tensor, beta: number): Tensor {
  const [M, N] = g.shape;
  const out = empty([M, N], g.engine);
  g.engine.run("f32_gemm_scale", [g.ptr, M * N, beta, out.ptr], M * N);
  return out;
}

/** alpha * op(a) op(b) + beta * c, as ONNX Gemm (c: [M,N], [N], [1,N], [M,1] or a scalar). */
export function gemm(a: Tensor, b: Tensor, c?: Tensor | null, opts: Partial<GemmAttrs> = {}): Tensor {
  return gemmOp.apply([a, b, c ?? null], opts);
}

// ---- linear ----

export const linearOp = defineOp<{}>({
  name: "linear",
  inputs: ["input", "weight", "bias?"],
  check([x, w, b]) {
    checkRank("linear", "input", x!, 2);
    checkRank("linear", "weight", w!, 2);
    if (x!.shape[1] !== w!.shape[1])
      fail("linear", `input has ${x!.shape[1]} features but weight expects ${w!.shape[1]} (input ${shapeStr(x!.shape)}, weight ${shapeStr(w!.shape)} as [out, in])`);
    if (b && (b.rank !== 1 || b.shape[0] !== w!.shape[0]))
      fail("linear", `bias ${shapeStr(b.shape)} must be [${w!.shape[0]}] (weight ${shapeStr(w!.shape)})`);
  },
  forward(_ctx, [x, w, b]) {
    return mm(x!, w!, false, true, 1, b ?? undefined);
  },
  backward(_ctx, g, [x, w, b], _a, needs) {
    return [
      needs[0] ? mm(g, w!, false, false) : null,
      needs[1] ? mm(g, x!, true, false) : null,
      needs[2] && b ? reduce(g, "rows", 1, [...b.shape]) : null,
    ];
  },
});

/** y = x w^T + b, with w [out, in] as PyTorch's nn.Linear. */
export function linear(x: Tensor, w: Tensor, b?: Tensor | null): Tensor {
  return linearOp.apply([x, w, b ?? null]);
}
