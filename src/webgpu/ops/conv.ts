// WebGPU kernels of the ops in src/ops/conv.ts (wgsl/conv.wgsl), attached to their op-table
// entries. As on the CPU, three kernels serve both ops: a transposed convolution's forward is a
// convolution's input gradient, its input gradient a convolution's forward, and its weight
// gradient a convolution's weight gradient with the input and the output gradient swapped.
//   forward         conv_fwd: implicit GEMM (im2col gathered in the tile loads), bias fused
//   input gradient  conv_dx: implicit GEMM of W^T, col2im as a gather, one GEMM per stride phase
//   weight gradient conv_dw: GEMM over (image, position), split in chunks, partials summed in order
//   bias gradient   conv_db: chunked workgroup tree sums, partials summed in order
// plus direct kernels for depthwise convolutions (one input channel per group). Offsets are
// passed in elements (byte pointer / 4), the convolution's geometry in words 0..15.
import code from "../../../wgsl/conv.wgsl";
import { empty, type Tensor, type Shape } from "../../tensor.js";
import { conv2dOp, convTranspose2dOp, conv2dGeometry, convTranspose2dGeometry, _setGpuConv, type ConvGeometry } from "../../ops/conv.js";
import { wgslFile, f32bits, type GpuEngine } from "../engine.js";
import { conv2dFusedOp } from "../../ops/fused.js";
import { _setGpuBatchNormEvalParams } from "../../nn/fusion.js";

export const K = wgslFile("conv.wgsl", code, [
  "conv_fwd", "conv_dx", "conv_dw", "conv_sum_chunks", "conv_db", "conv_dw_fwd", "conv_dw_dx", "conv_dw_dw", "conv_bn_params",
] as const);

const e = (t: Tensor) => t.ptr >>> 2;
const gpuOf = (t: Tensor) => t.engine as any as GpuEngine;
const TILE = 64;
const tiles = (n: number) => Math.ceil(n / TILE);
const geoArgs = (g: ConvGeometry) => [g.N, g.C, g.H, g.W, g.O, g.G, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.DH, g.DW, g.HO, g.WO];

/** Depthwise (one input channel per group) with few outputs per group: the direct kernels.
 *  The GEMMs would use one row of their 64 there. */
const isDepthwise = (g: ConvGeometry) => g.C === g.G && g.O / g.G <= 4;

/** Chunks of a reduction of length R: at most `maxS`, each at least `minChunk` long, rounded
 *  to `align`. A function of the shapes only, so the sums are the same on every run. */
function chunking(R: number, want: number, minChunk: number, maxS: number, align: number) {
  let S = Math.max(1, Math.min(want, maxS, Math.floor(R / minChunk)));
  const chunk = Math.max(align, Math.ceil(Math.ceil(R / S) / align) * align);
  S = Math.max(1, Math.ceil(R / chunk));
  return { S, chunk };
}

/** Writes into `out` (n floats) via S partials of n floats: kernel writes partial s at s*n,
 *  then conv_sum_chunks adds them in order. S = 1 writes `out` directly. */
function viaPartials(gpu: GpuEngine, out: Tensor, S: number, run: (dst: number) => void) {
  if (S === 1) return run(e(out));
  const part = empty([S * out.size], out.engine);
  run(e(part));
  gpu.dispatch(K.conv_sum_chunks, [e(part), S, out.size, e(out)], Math.ceil(out.size / 256));
  part.dispose();
}

function zero(gpu: GpuEngine, t: Tensor) {
  gpu.dispatch(K.conv_sum_chunks, [0, 0, t.size, e(t)], Math.ceil(t.size / 256)); // a sum of no chunks
}

/** conv2d_fused's epilogue after the bias (wgsl/conv.wgsl epilogue()). */
export interface GpuEpilogue {
  scale: Tensor | null;
  shift: Tensor | null;
  residual: Tensor | null;
  relu: boolean;
}

/** y = conv(x, w) (+ bias per output channel) (then ep); y [N, O, HO, WO]. */
export function gpuConvForward(g: ConvGeometry, x: Tensor, w: Tensor, bias: Tensor | null, y: Tensor, ep: GpuEpilogue | null = null): void {
  const gpu = gpuOf(x);
  // every word up to the epilogue's flags is written: argument words are reused between dispatches
  const flags = ep ? (ep.scale ? 1 : 0) | (ep.shift ? 2 : 0) | (ep.residual ? 4 : 0) | (ep.relu ? 8 : 0) : 0;
  const epArgs = [ep?.scale ? e(ep.scale) : 0, ep?.shift ? e(ep.shift) : 0, ep?.residual ? e(ep.residual) : 0, flags];
  const args = [...geoArgs(g), e(x), e(w), bias ? e(bias) : 0, e(y), bias ? 1 : 0, ...epArgs];
  if (isDepthwise(g)) return gpu.dispatch(K.conv_dw_fwd, args, Math.ceil(y.size / 256));
  gpu.dispatch(K.conv_fwd, args, g.G * tiles(g.O / g.G) * tiles(g.N * g.HO * g.WO));
}

/** dx = the input gradient of conv for dy (+ bias per input channel: conv_transpose2d's);
 *  dx [N, C, H, W]. */
export function gpuConvInput(g: ConvGeometry, dy: Tensor, w: Tensor, dx: Tensor, bias: Tensor | null = null): void {
  const gpu = gpuOf(dy);
  const args = [...geoArgs(g), e(dy), e(w), bias ? e(bias) : 0, e(dx), bias ? 1 : 0];
  if (isDepthwise(g)) return gpu.dispatch(K.conv_dw_dx, args, Math.ceil(dx.size / 256));
  const phasePixels = g.N * Math.ceil(g.H / g.SH) * Math.ceil(g.W / g.SW);
  gpu.dispatch(K.conv_dx, args, g.G * g.SH * g.SW * tiles(g.C / g.G) * tiles(phasePixels));
}

/** dw = the weight gradient of conv for input x and output gradient dy; dw [O, C/G, KH, KW]. */
export function gpuConvWeight(g: ConvGeometry, x: Tensor, dy: Tensor, dw: Tensor): void {
  const gpu = gpuOf(x);
  const R = g.N * g.HO * g.WO;
  if (R === 0) return zero(gpu, dw);
  if (isDepthwise(g)) {
    const KK = g.KH * g.KW;
    const { S, chunk } = chunking(R, 64, 2048, 64, 256);
    return viaPartials(gpu, dw, S, (dst) => gpu.dispatch(K.conv_dw_dw, [...geoArgs(g), e(x), e(dy), dst, chunk], S * g.O * KK));
  }
  // enough workgroups to fill a GPU (about 256) where the tiles alone are few: the reduction
  // over the batch's positions is split, at least 256 long a chunk
  const Kd = (g.C / g.G) * g.KH * g.KW;
  const T = g.G * tiles(g.O / g.G) * tiles(Kd);
  const { S, chunk } = chunking(R, Math.ceil(256 / T), 256, Math.max(1, Math.min(64, Math.floor((16 << 20) / dw.size))), 16);
  viaPartials(gpu, dw, S, (dst) => gpu.dispatch(K.conv_dw, [...geoArgs(g), e(x), e(dy), dst, chunk], S * T));
}

/** db[o] = the sum of dy [N, O, ...] over images and positions. */
export function gpuBiasGrad(dy: Tensor, shape: Shape): Tensor {
  const gpu = gpuOf(dy);
  const [N, O] = dy.shape;
  const P = dy.size / Math.max(1, N * O);
  const db = empty(shape, dy.engine);
  const { S, chunk } = chunking(N * P, 64, 4096, 64, 256);
  viaPartials(gpu, db, S, (dst) => gpu.dispatch(K.conv_db, [e(dy), N, O, P, dst, chunk], S * O));
  return db;
}

// ---- conv2d ----

conv2dOp.webgpu = {
  forward(ctx, [x, w, b], attrs) {
    const g = conv2dGeometry("conv2d", x!.shape, w!.shape, attrs);
    const y = empty([g.N, g.O, g.HO, g.WO], ctx.engine);
    gpuConvForward(g, x!, w!, b, y);
    return y;
  },
  backward(ctx, gy, [x, w, b], attrs, needs) {
    const g = conv2dGeometry("conv2d", x!.shape, w!.shape, attrs);
    let dx: Tensor | null = null, dw: Tensor | null = null;
    if (needs[0]) {
      dx = empty(x!.shape, ctx.engine);
      gpuConvInput(g, gy, w!, dx);
    }
    if (needs[1]) {
      dw = empty(w!.shape, ctx.engine);
      gpuConvWeight(g, x!, gy, dw);
    }
    return [dx, dw, needs[2] && b ? gpuBiasGrad(gy, b.shape) : null];
  },
};

// ---- conv_transpose2d: g is the geometry of the convolution it transposes ----

convTranspose2dOp.webgpu = {
  forward(ctx, [x, w, b], attrs) {
    const g = convTranspose2dGeometry("conv_transpose2d", x!.shape, w!.shape, attrs);
    const y = empty([g.N, g.C, g.H, g.W], ctx.engine);
    gpuConvInput(g, x!, w!, y, b);
    return y;
  },
  backward(ctx, gy, [x, w, b], attrs, needs) {
    const g = convTranspose2dGeometry("conv_transpose2d", x!.shape, w!.shape, attrs);
    let dx: Tensor | null = null, dw: Tensor | null = null;
    if (needs[0]) {
      dx = empty(x!.shape, ctx.engine);
      gpuConvForward(g, gy, w!, null, dx);
    }
    if (needs[1]) {
      dw = empty(w!.shape, ctx.engine);
      gpuConvWeight(g, gy, x!, dw);
    }
    return [dx, dw, needs[2] && b ? gpuBiasGrad(gy, b.shape) : null];
  },
};

_setGpuConv({ input: (g, dy, w, dx) => gpuConvInput(g, dy, w, dx), weight: gpuConvWeight });

// ---- conv2d_fused: the forward with the epilogue in conv_fwd / conv_dw_fwd (one dispatch);
// the backward is the CPU op's composition, which runs the WebGPU kernels of relu, batch_norm
// and conv2d on GPU tensors ----

conv2dFusedOp.webgpu = {
  forward(ctx, [x, w, b, s, t, r], a) {
    const g = conv2dGeometry("conv2d_fused", x!.shape, w!.shape, a);
    const y = empty([g.N, g.O, g.HO, g.WO], ctx.engine);
    gpuConvForward(g, x!, w!, b, y, { scale: s, shift: t, residual: r, relu: a.relu });
    return y;
  },
  backward: conv2dFusedOp.backward,
};

/** batch norm's eval-mode scale and shift on the GPU (in f32: WGSL has no f64; the GPU's fused
 *  results are held to the CPU's by tolerance, not bits). */
function gpuBatchNormEvalParams(rm: Tensor, rv: Tensor, w: Tensor | null, b: Tensor | null, eps: number) {
  const C = rm.shape[0];
  const scale = empty([C], rm.engine), shift = empty([C], rm.engine);
  gpuOf(rm).dispatch(K.conv_bn_params, [e(rm), e(rv), w ? e(w) : 0, b ? e(b) : 0, C, f32bits(eps), w ? 1 : 0, b ? 1 : 0, e(scale), e(shift)], Math.ceil(C / 256));
  return { scale, shift };
}
_setGpuBatchNormEvalParams(gpuBatchNormEvalParams);
