// Convolutions on small maps, images side by side (kernels in assembly/conv_small.ts).
//
// The im2col path of conv.ts works image by image: each image's GEMM multiplies all the weights
// (O x C*KH*KW) by that image's columns. With a handful of output positions per image the
// weights stream from memory once per image for a few columns each: ResNet-18 on 32x32 inputs
// runs its 512-channel 1x1 maps at 5 GFLOP/s and its 256-channel 2x2 maps at 20 (2 threads,
// a 34 GFLOP/s peak at the time), a third of the training step. Here the columns of a chunk
// of images sit side by side and one GEMM covers them: the weights are read once per chunk.
//
//   forward      y = W * cols(x)            (then [O][n*P] -> [n][O][P])
//   input grad   dx = col2im(W^T * dy')     (dy' = dy as [O][n*P])
//   weight grad  dW = sum over chunks of dy' * cols(x)^T
//
// Which convolutions: one group, at most engine.smallMapPositions output positions per image. That
// is a property of one image's shape, so an image takes the same path alone or in a batch, and
// its outputs are the same bits either way (an output's sum over K is the same whichever
// columns sit beside it). The chunks hold as many images as CHUNK_BYTES of columns allow: a
// function of the shapes only, so the weight gradient's order of summation (chunk by chunk, in
// the GEMM's K blocks within one) is the same on any thread count.
import type { Tensor } from "../tensor.js";
import type { Engine } from "../engine/engine.js";
import type { ConvGeometry } from "./conv.js";
import { packA, packedABytes, MR, NR, KC_MAX, NC_SLIVERS, EP_BETA, EP_ROWBIAS } from "./linalg.js";
import { withPack } from "./packs.js";
import { withGeometry } from "./conv_geometry.js";
import { notePath } from "../profile.js";

/** Column floats per chunk of images at most (4 MB): the columns of a chunk stay in cache
 *  while the GEMM sweeps them. */
const CHUNK_FLOATS = 1 << 20;

/** Whether g takes this path: one group, at most engine.smallMapPositions output positions per
 *  image (9: 3x3 maps and smaller. bench/conv_small.mjs, 2 threads, batch 32: at 9 positions
 *  forward, input and weight gradients 1.3-2.4x faster; at 16 the forward 0.7x, the gradients
 *  1.0-1.1x; docs/performance.md). */
export function smallMap(eng: Engine, g: ConvGeometry): boolean {
  const P = g.HO * g.WO;
  return g.G === 1 && P <= eng.smallMapPositions && P > 0 && g.C > 0 && g.O > 0;
}

/** The taps (ky*KW + kx) that meet the input at some output position of the map; the others
 *  only ever meet padding (a 3x3 kernel with padding 1 on a 1x1 map has one live tap). Which
 *  taps: a property of one image's shape. */
export function liveTaps(g: ConvGeometry): number[] {
  const live = (K: number, S: number, Pd: number, D: number, In: number, Out: number, k: number) => {
    for (let o = 0; o < Out; o++) {
      const i = o * S - Pd + k * D;
      if (i >= 0 && i < In) return true;
    }
    return false;
  };
  const taps: number[] = [];
  for (let ky = 0; ky < g.KH; ky++)
    for (let kx = 0; kx < g.KW; kx++)
      if (live(g.KH, g.SH, g.PH, g.DH, g.H, g.HO, ky) && live(g.KW, g.SW, g.PW, g.DW, g.W, g.WO, kx)) taps.push(ky * g.KW + kx);
  return taps;
}

/** The geometry's tap table in the engine's memory while fn runs: ptr 0 and L = KH*KW where
 *  every tap is live (the kernels then take them all, in order). */
function withTaps<T>(eng: Engine, g: ConvGeometry, fn: (taps: number, L: number, key: string) => T): T {
  const taps = liveTaps(g), KK = g.KH * g.KW;
  if (taps.length === KK) return fn(0, KK, "");
  const ptr = eng.alloc(Math.max(4, taps.length * 4), "conv live taps");
  try {
    new Int32Array(eng.memory.buffer, ptr, taps.length).set(taps);
    return fn(ptr, taps.length, ` taps ${taps.join(",")}`);
  } finally {
    eng.release(ptr);
  }
}

/** Images per chunk: at least one, as many as CHUNK_FLOATS of columns (K = C * live taps) hold. */
const chunkOf = (g: ConvGeometry, K: number) => Math.max(1, Math.min(g.N, Math.floor(CHUNK_FLOATS / (K * g.HO * g.WO))));

const GEMM_SCRATCH = (KC_MAX * NC_SLIVERS * NR + MR * NR) * 4;

/** C (M x N) = op(A) B (+ beta C, + row bias), A packed by f32_gemm_pack_a. */
function gemmPacked(eng: Engine, pa: number, b: number, ldb: number, transB: boolean, c: number, M: number, N: number, K: number, beta: 0 | 1, rowBias: number): void {
  const flags = (beta ? EP_BETA : 0) | (rowBias ? EP_ROWBIAS : 0);
  const scratch = eng.scratch(GEMM_SCRATCH);
  eng.run("f32_gemm", [pa, b, ldb, transB ? 1 : 0, c, N, M, N, K, 1, beta, flags, rowBias, scratch, GEMM_SCRATCH], M * N * Math.max(K, 1));
}

/** Runs body(geo, n0, nimg, cols, tmp) for each chunk of images, with a column buffer
 *  (K x nimg*P) and an output-layout buffer (O x nimg*P) sized for the largest chunk. */
function chunks(eng: Engine, g: ConvGeometry, K: number, body: (geo: number, n0: number, nimg: number, cols: number, tmp: number) => void): void {
  const P = g.HO * g.WO, per = chunkOf(g, K);
  const cols = eng.alloc(Math.max(4, K * per * P * 4), "conv columns (small maps)");
  try {
    const tmp = eng.alloc(Math.max(4, g.O * per * P * 4), "conv outputs (small maps)");
    try {
      withGeometry(eng, g, 0, (geo) => {
        for (let n0 = 0; n0 < g.N; n0 += per) body(geo, n0, Math.min(per, g.N - n0), cols, tmp);
      });
    } finally {
      eng.release(tmp);
    }
  } finally {
    eng.release(cols);
  }
}

/** The weights w [O][C*KH*KW] with the live taps only ([O][C*L]), packed by f32_gemm_pack_a
 *  (transposed: [C*L][O]), in a new buffer the caller releases. */
function packLive(eng: Engine, g: ConvGeometry, w: number, taps: number, L: number, transposed: boolean): number {
  const K = g.C * L, KK = g.KH * g.KW;
  const [M, KA] = transposed ? [K, g.O] : [g.O, K];
  const pa = eng.alloc(Math.max(4, packedABytes(M, KA)), "packed conv weights (small maps)");
  const run = (src: number) => eng.run("f32_gemm_pack_a", [src, K, transposed ? 1 : 0, M, KA, 1, 0, pa], M * KA);
  if (!taps) run(w);
  else {
    const live = eng.alloc(Math.max(4, g.O * K * 4), "conv weights of the live taps");
    try {
      eng.run("f32_conv2d_taps", [w, live, g.O * g.C, KK, taps, L, 1], g.O * K);
      run(live);
    } finally {
      eng.release(live);
    }
  }
  return pa;
}

/** y = conv(x, w) (+ bias): W packed once (kept with w while it is unchanged), one GEMM per
 *  chunk of images. */
export function smallMapForward(eng: Engine, g: ConvGeometry, x: number, w: Tensor, bias: number, y: number): void {
  notePath("im2col, images side by side");
  const P = g.HO * g.WO;
  withTaps(eng, g, (taps, L, key) => {
    const K = g.C * L;
    withPack(eng, w, `conv small ${g.O}x${g.C}x${g.KH}x${g.KW}${key}`, () => packLive(eng, g, w.ptr, taps, L, false), (pw) =>
      chunks(eng, g, K, (geo, n0, nimg, cols, tmp) => {
        const J = nimg * P;
        eng.run("f32_conv2d_cols_batch", [geo, x, n0, nimg, taps, L, cols], K * J);
        gemmPacked(eng, pw, cols, J, false, tmp, g.O, J, K, 0, bias);
        eng.run("f32_conv2d_nop_onp", [tmp, y + n0 * g.O * P * 4, nimg, g.O, P, 0], g.O * J);
      }));
  });
}

/** dx = the input gradient of conv for dy, starting from init[channel] (conv_transpose2d's
 *  bias) where init is not 0: W^T packed once, one GEMM and one col2im per chunk. */
export function smallMapInput(eng: Engine, g: ConvGeometry, dy: number, w: Tensor, dx: number, init: number): void {
  notePath("im2col, images side by side");
  const P = g.HO * g.WO;
  withTaps(eng, g, (taps, L, key) => {
    const K = g.C * L;
    withPack(eng, w, `conv small transposed ${g.O}x${g.C}x${g.KH}x${g.KW}${key}`, () => packLive(eng, g, w.ptr, taps, L, true), (pt) =>
      chunks(eng, g, K, (geo, n0, nimg, cols, tmp) => {
        const J = nimg * P;
        eng.run("f32_conv2d_nop_onp", [dy + n0 * g.O * P * 4, tmp, nimg, g.O, P, 1], g.O * J);
        gemmPacked(eng, pt, tmp, J, false, cols, K, J, g.O, 0, 0);
        eng.run("f32_conv2d_col2im_batch", [geo, cols, n0, nimg, taps, L, dx, init], K * J);
      }));
  });
}

/** dw = the weight gradient of conv for x and dy: dy' (O x nimg*P, packed) times the chunk's
 *  columns transposed, chunks added in order; the taps that only meet padding get 0. */
export function smallMapWeight(eng: Engine, g: ConvGeometry, x: number, dy: number, dw: number): void {
  notePath("im2col, images side by side");
  const P = g.HO * g.WO, KK = g.KH * g.KW;
  withTaps(eng, g, (taps, L) => {
    const K = g.C * L;
    const out = taps ? eng.alloc(Math.max(4, g.O * K * 4), "conv weight gradient of the live taps") : dw;
    try {
      chunks(eng, g, K, (geo, n0, nimg, cols, tmp) => {
        const J = nimg * P;
        eng.run("f32_conv2d_cols_batch", [geo, x, n0, nimg, taps, L, cols], K * J);
        eng.run("f32_conv2d_nop_onp", [dy + n0 * g.O * P * 4, tmp, nimg, g.O, P, 1], g.O * J);
        const pa = packA(eng, tmp, J, false, g.O, J);
        try {
          gemmPacked(eng, pa, cols, J, true, out, g.O, K, J, n0 === 0 ? 0 : 1, 0);
        } finally {
          eng.release(pa);
        }
      });
      if (taps) eng.run("f32_conv2d_taps", [out, dw, g.O * g.C, KK, taps, L, 0], g.O * g.C * KK);
    } finally {
      if (taps) eng.release(out);
    }
  });
}
