// conv ops (see docs/ops.md): conv2d and conv_transpose2d, forward and backward side by side,
// and torch.nn.grad's conv2d_input / conv2d_weight. Kernels in assembly/conv2d.ts: three of them
// (forward, input gradient, weight gradient) serve both ops, because a transposed convolution's
// forward is a convolution's input gradient and its input gradient is a convolution's forward.
import { Tensor, shapeStr, empty, type Shape } from "../tensor.js";
import type { Engine } from "../engine/engine.js";
import { defineOp, fail, pair, checkInt, OpError, checkOutputSize, MAX_INT_ATTR } from "./table.js";
import { checkOptions, badArgument } from "../options.js";
import { packA, packedABytes, MR, NR, KC_MAX, NC_SLIVERS } from "./linalg.js";
import { winogradTile, winogradWeights, winogradForward, winogradWeightTile, winogradWeightGrad } from "./winograd.js";
import { notePath, notePathAlso } from "../profile.js";
import { withPack } from "./packs.js";
import { smallMap, smallMapForward, smallMapInput, smallMapWeight } from "./conv_small.js";
import { withGeometry } from "./conv_geometry.js";

/** A convolution's shape, from the convolution's point of view: input [N,C,H,W], weight
 *  [O, C/G, KH, KW], output [N,O,HO,WO]. */
export interface ConvGeometry {
  N: number; C: number; H: number; W: number; O: number; G: number; KH: number; KW: number;
  SH: number; SW: number; PH: number; PW: number; DH: number; DW: number; HO: number; WO: number;
}

export interface Conv2dAttrs {
  stride: number | number[];
  padding: number | number[];
  dilation: number | number[];
  groups: number;
}

export interface ConvTranspose2dAttrs extends Conv2dAttrs {
  output_padding: number | number[];
}

const convDefaults: Conv2dAttrs = { stride: 1, padding: 0, dilation: 1, groups: 1 };

function rank4(op: string, what: string, s: Shape, layout: string) {
  if (!Array.isArray(s) || s.length !== 4) fail(op, `${what} must be rank 4 ${layout}, got rank ${s?.length} ${shapeStr(s ?? [])}`);
  for (const d of s) if (!Number.isInteger(d) || d < 0) fail(op, `${what} ${shapeStr(s)} has a size that is not an integer >= 0`);
}

function attrsOf(op: string, a: Conv2dAttrs) {
  const [SH, SW] = pair(op, "stride", a.stride, 1);
  const [PH, PW] = pair(op, "padding", a.padding, 0);
  const [DH, DW] = pair(op, "dilation", a.dilation, 1);
  const G = checkInt(op, "groups", a.groups, 1);
  return { SH, SW, PH, PW, DH, DW, G };
}

function checkWeight(op: string, ws: Shape, G: number, inChannels: number, layout: string, xs: Shape) {
  if (ws.some((d) => d < 1)) fail(op, `weight ${shapeStr(ws)} ${layout} has a zero size (kernel at least 1x1, channels at least 1)`);
  if (inChannels % G !== 0) fail(op, `groups ${G} does not divide the ${inChannels} input channels (input ${shapeStr(xs)})`);
}

/** Validates conv2d's shapes and attributes; returns the geometry. */
export function conv2dGeometry(op: string, xs: Shape, ws: Shape, attrs: Conv2dAttrs): ConvGeometry {
  rank4(op, "input", xs, "[N, C, H, W]");
  rank4(op, "weight", ws, "[out, in/groups, kH, kW]");
  const { SH, SW, PH, PW, DH, DW, G } = attrsOf(op, attrs);
  const [N, C, H, W] = xs;
  const [O, Cg, KH, KW] = ws;
  checkWeight(op, ws, G, C, "[out, in/groups, kH, kW]", xs);
  if (O % G !== 0) fail(op, `groups ${G} does not divide the ${O} output channels (weight ${shapeStr(ws)})`);
  if (Cg * G !== C)
    fail(op, `input has ${C} channels but weight expects ${Cg * G} (weight ${shapeStr(ws)}${G > 1 ? `, groups ${G}` : ""}, input ${shapeStr(xs)})`);
  const HO = Math.floor((H + 2 * PH - DH * (KH - 1) - 1) / SH) + 1;
  const WO = Math.floor((W + 2 * PW - DW * (KW - 1) - 1) / SW) + 1;
  if (HO <= 0 || WO <= 0)
    fail(op, `output would be ${HO}x${WO}: the input ${H}x${W} padded by ${PH},${PW} is smaller than the ${DH * (KH - 1) + 1}x${DW * (KW - 1) + 1} (dilated) kernel (input ${shapeStr(xs)}, weight ${shapeStr(ws)})`);
  return inRange(op, { N, C, H, W, O, G, KH, KW, SH, SW, PH, PW, DH, DW, HO, WO }, [N, O, HO, WO], xs, ws);
}

/** The kernels index with 32-bit integers: the padded input and the dilated kernel must fit
 *  them, and the output must fit the engine's memory (checked before anything is built). */
function inRange(op: string, g: ConvGeometry, outShape: number[], xs: Shape, ws: Shape): ConvGeometry {
  const shapes = `input ${shapeStr(xs)}, weight ${shapeStr(ws)}, stride ${g.SH},${g.SW}, padding ${g.PH},${g.PW}, dilation ${g.DH},${g.DW}`;
  checkOutputSize(op, outShape, undefined, shapes);
  if (g.H + 2 * g.PH > MAX_INT_ATTR || g.W + 2 * g.PW > MAX_INT_ATTR || g.DH * (g.KH - 1) + 1 > MAX_INT_ATTR || g.DW * (g.KW - 1) + 1 > MAX_INT_ATTR)
    fail(op, `the padded input or the dilated kernel is too large for 32-bit indexing (${shapes})`);
  return g;
}

/** Validates conv_transpose2d's shapes; returns the geometry of the convolution it transposes
 *  (whose input is this op's output and whose output is this op's input). */
export function convTranspose2dGeometry(op: string, xs: Shape, ws: Shape, attrs: ConvTranspose2dAttrs): ConvGeometry {
  rank4(op, "input", xs, "[N, C, H, W]");
  rank4(op, "weight", ws, "[in, out/groups, kH, kW]");
  const { SH, SW, PH, PW, DH, DW, G } = attrsOf(op, attrs);
  const [OPH, OPW] = pair(op, "output_padding", attrs.output_padding, 0);
  const [N, Cin, H, W] = xs;
  const [Cw, Cog, KH, KW] = ws;
  checkWeight(op, ws, G, Cin, "[in, out/groups, kH, kW]", xs);
  if (Cw !== Cin) fail(op, `input has ${Cin} channels but weight expects ${Cw} (weight ${shapeStr(ws)} as [in, out/groups, kH, kW], input ${shapeStr(xs)})`);
  if (OPH >= Math.max(SH, DH) || OPW >= Math.max(SW, DW))
    fail(op, `output_padding ${OPH},${OPW} must be smaller than stride ${SH},${SW} or dilation ${DH},${DW}`);
  const HO = (H - 1) * SH - 2 * PH + DH * (KH - 1) + OPH + 1;
  const WO = (W - 1) * SW - 2 * PW + DW * (KW - 1) + OPW + 1;
  if (HO <= 0 || WO <= 0)
    fail(op, `output would be ${HO}x${WO}: padding ${PH},${PW} removes more than the ${H}x${W} input spreads to (input ${shapeStr(xs)}, weight ${shapeStr(ws)})`);
  return inRange(op, { N, C: Cog * G, H: HO, W: WO, O: Cin, G, KH, KW, SH, SW, PH, PW, DH, DW, HO: H, WO: W }, [N, Cog * G, HO, WO], xs, ws);
}

// ---- kernel drivers (pointers in the engine's memory) ----

const PB = NC_SLIVERS * NR; // positions per block (assembly/conv2d.ts)
const KB = 128; // weight-gradient columns per item (assembly/conv2d.ts)
const round64 = (b: number) => Math.ceil(b / 64) * 64;

/** Per-thread floats the padded block path needs at most (assembly/conv_pad.ts): `channels`
 *  channels of the padded input rows under `positions` consecutive outputs (or all of them),
 *  plus 8 floats the vector loads of a sliver's last run may read past the end. 0 where the
 *  path does not apply (it needs SW = 1 and outputs at least 7 wide) or would not pay (a block
 *  over PAD_MAX floats: the bounds-checked path does without the copy). */
const PAD_MAX = 1 << 18;
function padFloats(g: ConvGeometry, channels: number, positions: number, stride2 = false): number {
  // stride 2 along rows (DW 1, 3 taps or more across): the forward and the weight gradient read
  // each padded row as its even columns, then its odd ones (assembly/conv_pad.ts evenOddRow);
  // col2im does not. CIFAR ResNet-20's 3x3 16 -> 32 at batch 128, two threads: forward 1.16x,
  // weight gradient 1.09x (32 -> 64: 1.09x, 1.05x); a 1x1 stride-2 layer reads one tap of
  // four columns and was slower with the copy (0.78-0.97x)
  if (!(g.SW === 1 || (stride2 && g.SW === 2 && g.DW === 1 && g.KW >= 3)) || g.WO < 7) return 0;
  const outRows = Math.min(g.HO, Math.floor((positions + 2 * g.WO - 2) / g.WO));
  const rows = (outRows - 1) * g.SH + (g.KH - 1) * g.DH + 1;
  const n = channels * rows * (g.W + 2 * g.PW) + 8;
  return n <= PAD_MAX ? n : 0;
}

const macs = (g: ConvGeometry) => g.N * g.O * g.HO * g.WO * (g.C / g.G) * g.KH * g.KW;

/** conv2d_fused's epilogue (ep, assembly/conv_epilogue.ts) as one pass over y [N, O, P]: for a
 *  forward path that does not apply it to its blocks itself. The same bits either way. */
export function convEpiloguePass(eng: Engine, g: ConvGeometry, ep: number, y: number): void {
  if (ep) eng.run("f32_conv_epilogue", [ep, y, g.N, g.O, g.HO * g.WO], g.N * g.O * g.HO * g.WO);
}

/** The depthwise forward that computes a stride-1 depthwise convolution's input gradient: dy
 *  convolved with the reversed taps, padding D*(K-1) - P (where that is not negative), or null
 *  where it does not apply. */
function depthwiseInputAsForward(g: ConvGeometry): ConvGeometry | null {
  if (g.G !== g.C || g.O !== g.C || g.SH !== 1 || g.SW !== 1) return null;
  const PH = g.DH * (g.KH - 1) - g.PH, PW = g.DW * (g.KW - 1) - g.PW;
  if (PH < 0 || PW < 0) return null;
  const fg = { N: g.N, C: g.O, H: g.HO, W: g.WO, O: g.C, G: g.G, KH: g.KH, KW: g.KW, SH: 1, SW: 1, PH, PW, DH: g.DH, DW: g.DW, HO: g.H, WO: g.W };
  return depthwisePlane(fg) ? fg : null;
}

/** The padded plane of the depthwise kernel (floats, 16 spare), or 0 where it does not apply:
 *  one input and one output channel per group, stride 1 or 2 along rows, a plane of at most
 *  4 MB. */
function depthwisePlane(g: ConvGeometry): number {
  if (g.G !== g.C || g.O !== g.C || g.SW > 2 || g.HO * g.WO === 0) return 0;
  const n = ((g.HO - 1) * g.SH + (g.KH - 1) * g.DH + 1) * (g.W + 2 * g.PW) + 16;
  return n <= 1 << 20 ? n : 0;
}

/** y = conv(x, w) (+ bias per output channel). The packed (or transformed) weights are kept
 *  with w while it is unchanged (src/ops/packs.ts). ep: conv2d_fused's epilogue (4 words in
 *  the engine's memory, assembly/conv_epilogue.ts; 0 = none), which every path applies to its
 *  output blocks as they are finished. Returns the path taken (the profiler's name for it). */
export function convForward(eng: Engine, g: ConvGeometry, x: number, w: Tensor, bias: number, y: number, ep = 0): string {
  const dw = depthwisePlane(g);
  if (dw) {
    // depthwise: each plane on its own, no GEMM (assembly/conv_dw.ts; the same bits)
    const bytes = round64(dw * 4);
    const scratch = eng.scratch(bytes);
    withGeometry(eng, g, 0, (geo) => eng.run("f32_conv2d_dw_fwd", [geo, x, w.ptr, bias, y, ep, scratch, bytes], macs(g)));
    return "depthwise";
  }
  const m = winogradTile(eng, g);
  if (m) {
    const path = `winograd F(${m},${g.KH})`;
    notePath(path);
    withPack(eng, w, `winograd${m} ${g.O}x${g.C}x${g.KH}`, () => winogradWeights(eng, w.ptr, g.O, g.C, false, m, g.KH),
      (pu) => winogradForward(eng, g, m, x, pu, bias, y, ep));
    return path;
  }
  if (smallMap(eng, g)) {
    // a few positions per image, images side by side: the epilogue as one pass after it
    smallMapForward(eng, g, x, w, bias, y);
    convEpiloguePass(eng, g, ep, y);
    return "im2col, images side by side";
  }
  const Og = g.O / g.G, K = (g.C / g.G) * g.KH * g.KW;
  withPack(eng, w, `conv ${g.G}x${Og}x${K}`, () => packA(eng, w.ptr, K, false, Og, K, g.G, Og * K),
    (pw) => convForwardPacked(eng, g, x, pw, bias, y, ep));
  return "im2col";
}

/** How the forward splits its work into items: NBK blocks of positions per (image, group)
 *  times MB row blocks of the output channels' strips. Neither changes a sum (an output's sum
 *  over K is the same whichever block holds it: the K blocks depend on K alone), so the split
 *  may follow the thread count and still give the same bits on any. It balances the items:
 *  - position blocks of at most NC_SLIVERS slivers, raised (at most doubled, blocks of at least
 *    MIN_BLOCK_SLIVERS) until the items divide evenly among the threads when they are few:
 *    ResNet-18's 56x56 layers at batch 1 have 13 blocks, 7 + 6 on 2 threads; 14 blocks of 28
 *    slivers give 7 + 7;
 *  - where the positions give fewer items than threads (one image's 14x14 and 7x7 maps are one
 *    block), MB row blocks so that every thread gets one. Each row block expands its positions'
 *    columns again, so no more of them than threads. (Before, 8 row blocks on any thread count:
 *    ResNet-18's 7x7 3x3 conv took 7.4 ms on 1 thread and 4.1 on 2, now 6.9 and 3.6; its
 *    14x14 one 5.7 and 3.2, now 5.2 and 2.8. Position blocks of 3 or 4 slivers instead of row
 *    blocks on the 7x7 maps: 4.6-5.0 ms on 2 threads.) */
const MIN_BLOCK_SLIVERS = 16;
export function forwardSplit(g: ConvGeometry, threads: number): { NBK: number; MB: number } {
  const J = Math.ceil((g.HO * g.WO) / NR), NG = g.N * g.G;
  let NBK = Math.ceil(J / NC_SLIVERS);
  if (threads > 1 && NG * NBK < 8 * threads)
    for (let nb = NBK; nb <= 2 * NBK && Math.floor(J / nb) >= MIN_BLOCK_SLIVERS; nb++)
      if ((NG * nb) % threads === 0) {
        NBK = nb;
        break;
      }
  const strips = Math.ceil(g.O / g.G / MR);
  const MB = Math.max(1, Math.min(Math.ceil(threads / (NG * NBK)), strips));
  return { NBK, MB };
}

/** y = conv(x, W) (+ bias) with W already packed (f32_gemm_pack_a's layout, G matrices). */
function convForwardPacked(eng: Engine, g: ConvGeometry, x: number, pw: number, bias: number, y: number, ep = 0): void {
  const padf = padFloats(g, g.C / g.G, PB, true);
  const bytes = round64((KC_MAX * PB + 2 * PB + MR * NR + padf) * 4);
  const scratch = eng.scratch(bytes);
  const { NBK, MB } = forwardSplit(g, eng.threads);
  withGeometry(eng, g, padf, (geo) => eng.run("f32_conv2d_fwd", [geo, x, pw, bias, y, NBK, MB, ep, scratch, bytes], macs(g)));
}

/** The convolution whose forward is g's input gradient, where g has stride 1 and the padding
 *  is at most the (dilated) kernel's reach: dx = conv(dy, W'), W' the weights with input and
 *  output channels swapped and the taps reversed, padding D*(K-1) - P, same dilation and groups.
 *  Used where the forward kernel's padded-block path applies and dx has channels enough to fill
 *  its row strips (at least 12 per group): then a long K (Og*KH*KW) and an im2col of dy beat
 *  short-K products and a col2im (about 15% to 35% less time on LeNet's, VGG's and ResNet's
 *  3x3 and 5x5 layers; with 1 to 6 channels it is slower). */
function inputGradAsForward(g: ConvGeometry): ConvGeometry | null {
  const PH = g.DH * (g.KH - 1) - g.PH, PW = g.DW * (g.KW - 1) - g.PW;
  if (g.SH !== 1 || g.SW !== 1 || PH < 0 || PW < 0 || g.W < 7 || g.C / g.G < 12) return null;
  return { N: g.N, C: g.O, H: g.HO, W: g.WO, O: g.C, G: g.G, KH: g.KH, KW: g.KW, SH: 1, SW: 1, PH, PW, DH: g.DH, DW: g.DW, HO: g.H, WO: g.W };
}

/** The one-pass input gradient has (image, group, input channel) items at most: an RGB first
 *  layer on one image (AlexNet's conv1) has 3, so on 2 threads one thread does two thirds of the
 *  work. With fewer than 8 such items the GEMM goes first over all positions in blocks
 *  (f32_conv2d_bwd_input_cols), then the col2im per channel: same sums, same bits, more items
 *  (AlexNet's conv1 input gradient on 2 threads: 10.6 -> 9.2 ms, 1 thread unchanged). A
 *  function of the shapes only; capped at 64 MB of columns. */
function inputGradInTwoPasses(g: ConvGeometry): boolean {
  return g.N * g.C < 8 && g.O / g.G > 0 && columnFloats(g) * 4 <= 64 << 20;
}

/** Floats of f32_conv2d_bwd_input_cols's output: per (image, group), blocks of PB positions,
 *  each Cg*KH*KW rows of PB. */
const columnFloats = (g: ConvGeometry) => g.N * g.C * g.KH * g.KW * Math.ceil((g.HO * g.WO) / PB) * PB;

/** dx = the input gradient of conv for dy (dx starts from init[channel] when init is not 0).
 *  Flipped or transformed weights are kept with w while it is unchanged (src/ops/packs.ts). */
export function convInput(eng: Engine, g: ConvGeometry, dy: number, wt: Tensor, dx: number, init = 0): void {
  const w = wt.ptr;
  const dwg = depthwiseInputAsForward(g);
  if (dwg) {
    // depthwise, stride 1: dx = the depthwise forward of dy with the taps reversed (init,
    // conv_transpose2d's bias, as its bias); the reversed weights are kept while w is unchanged
    notePath("depthwise");
    const KK = g.KH * g.KW;
    const build = () => {
      const pw = eng.alloc(g.C * KK * 4, "reversed depthwise weights");
      const f = eng.heapF32;
      for (let i = 0; i < g.C * KK; i++) f[pw / 4 + i] = f[w / 4 + i - (i % KK) + (KK - 1 - (i % KK))];
      return pw;
    };
    const bytes = round64(depthwisePlane(dwg) * 4);
    withPack(eng, wt, `depthwise reversed ${g.C}x${KK}`, build, (pw) =>
      withGeometry(eng, dwg, 0, (geo) => eng.run("f32_conv2d_dw_fwd", [geo, dy, pw, init, dx, 0, eng.scratch(bytes), bytes], macs(g))));
    return;
  }
  const fg = inputGradAsForward(g);
  const m = fg ? winogradTile(eng, fg, true) : 0;
  if (fg && m) {
    // dx = conv(dy, flipped W) by Winograd (init, conv_transpose2d's bias, as its bias)
    notePath(`winograd F(${m},${g.KH}) dx`);
    withPack(eng, wt, `winograd${m} flipped ${fg.O}x${fg.C}x${g.KH}`, () => winogradWeights(eng, w, fg.O, fg.C, true, m, g.KH),
      (pu) => winogradForward(eng, fg, m, dy, pu, init, dx));
    return;
  }
  if (fg && padFloats(fg, fg.C / fg.G, PB)) {
    const Cg = g.C / g.G, K = (g.O / g.G) * g.KH * g.KW;
    const build = () => {
      const pw = eng.alloc(Math.max(4, packedABytes(Cg, K, g.G)), "flipped conv weights");
      eng.run("f32_conv2d_pack_flipped", [w, g.O, Cg, g.KH, g.KW, g.G, pw], g.G * Cg * K);
      return pw;
    };
    // init (conv_transpose2d's bias) is added per output channel, as a forward's bias
    withPack(eng, wt, `conv flipped ${g.G}x${g.O}x${Cg}x${g.KH}x${g.KW}`, build, (pw) => convForwardPacked(eng, fg, dy, pw, init, dx));
    return;
  }
  if (smallMap(eng, g)) return smallMapInput(eng, g, dy, wt, dx, init); // a few positions per image
  const Cg = g.C / g.G, KK = g.KH * g.KW;
  if (inputGradInTwoPasses(g)) {
    const K = Cg * KK, P = g.HO * g.WO;
    const cols = eng.alloc(columnFloats(g) * 4, "conv input-gradient columns");
    try {
      withGeometry(eng, g, 0, (geo) => {
        const bytes = round64((Math.ceil(K / MR) * MR * KC_MAX + KC_MAX * PB + MR * NR) * 4);
        eng.run("f32_conv2d_bwd_input_cols", [geo, dy, w, cols, eng.scratch(bytes), bytes], macs(g));
      });
      const padf = padFloats(g, 1, g.HO * g.WO);
      withGeometry(eng, g, padf, (geo) => {
        const bytes = round64((2 * PB + padf) * 4);
        eng.run("f32_conv2d_col2im", [geo, cols, dx, init, eng.scratch(bytes), bytes], g.N * g.C * K * P / Math.max(1, Cg));
      });
    } finally {
      eng.release(cols);
    }
    return;
  }
  // channel blocks per group: about 128 rows of the column matrix each, and enough items for
  // the threads (the split changes no sum: each dx element is added to in the same order in
  // whichever item holds its channel)
  let NB = Math.ceil(Cg / Math.max(1, Math.floor(128 / KK)));
  while (NB < Cg && g.N * g.G * NB < 4 * eng.threads) NB = Math.min(Cg, NB * 2);
  const rows = Math.ceil(Cg / NB) * KK, Og = g.O / g.G;
  const padf = padFloats(g, Math.ceil(Cg / NB), g.HO * g.WO);
  const bytes = round64((Math.ceil(rows / MR) * MR * Og + KC_MAX * PB + rows * PB + 2 * PB + MR * NR + padf) * 4);
  const scratch = eng.scratch(bytes);
  withGeometry(eng, g, padf, (geo) => eng.run("f32_conv2d_bwd_input", [geo, dy, w, dx, init, NB, scratch, bytes], macs(g)));
}

/** dw = the weight gradient of conv for input x and output gradient dy. */
export function convWeight(eng: Engine, g: ConvGeometry, x: number, dy: number, dw: number): void {
  const plane = depthwisePlane(g);
  if (plane) {
    // depthwise: one item per channel, a dot product per tap (assembly/conv_dw_bwd.ts)
    notePath("depthwise");
    const KK = g.KH * g.KW;
    const bytes = round64((KK * 20 + 63) & ~63) + round64(plane * 4);
    withGeometry(eng, g, 0, (geo) => eng.run("f32_conv2d_dw_bwd_weight", [geo, x, dy, dw, eng.scratch(bytes), bytes], macs(g)));
    return;
  }
  if (smallMap(eng, g)) return smallMapWeight(eng, g, x, dy, dw); // a few positions per image
  const mw = winogradWeightTile(eng, g);
  if (mw) {
    notePathAlso(`winograd F(${mw},${g.KH}) dW`);
    return winogradWeightGrad(eng, g, x, dy, dw, mw);
  }
  const K = (g.C / g.G) * g.KH * g.KW;
  const items = g.G * Math.ceil(K / KB);
  // Ranges of the (image, position chunk) sequence summed apart, then added in order: a
  // function of the shapes only, so the sums are the same on any thread count.
  const chunks = g.N * Math.ceil((g.HO * g.WO) / KC_MAX);
  const NCH = items >= 16 ? 1 : Math.max(1, Math.min(chunks, Math.ceil(16 / items)));
  // the padded block holds the channels of one column block of KB taps (at most this many)
  const KK = g.KH * g.KW;
  const padf = padFloats(g, Math.min(g.C / g.G, Math.floor((KB + 2 * KK - 2) / KK)), KC_MAX, true);
  const bytes = round64((MR * KC_MAX + 2 * KB * KC_MAX + 2 * KC_MAX + MR * NR + padf) * 4);
  const scratch = eng.scratch(bytes);
  const n = g.O * K;
  withGeometry(eng, g, padf, (geo) => {
    if (NCH === 1) {
      eng.run("f32_conv2d_bwd_weight", [geo, x, dy, dw, 1, scratch, bytes], macs(g));
      return;
    }
    const partial = eng.alloc(NCH * n * 4, "conv weight-gradient partial sums");
    try {
      eng.run("f32_conv2d_bwd_weight", [geo, x, dy, partial, NCH, scratch, bytes], macs(g));
      eng.run("f32_conv2d_bwd_weight_reduce", [partial, NCH, n, dw], NCH * n);
    } finally {
      eng.release(partial);
    }
  });
}

/** db[o] = sum of dy over images and positions (dy: [N, O, P]). */
export function biasGrad(dy: Tensor, shape: Shape): Tensor {
  if (!(dy instanceof Tensor)) badArgument("biasGrad", "dy", "a tensor", dy);
  const [N, O] = dy.shape;
  const P = dy.size / Math.max(1, N * O);
  const db = empty(shape, dy.engine);
  dy.engine.run("f32_conv2d_bwd_bias", [dy.ptr, N, O, P, db.ptr], dy.size);
  return db;
}

function checkBias(op: string, b: Tensor | null, channels: number, ws: Shape) {
  if (b && (b.rank !== 1 || b.shape[0] !== channels))
    fail(op, `bias ${shapeStr(b.shape)} must be [${channels}] (one per output channel; weight ${shapeStr(ws)})`);
}

// ---- conv2d ----

export const conv2dOp = defineOp<Conv2dAttrs>({
  name: "conv2d",
  inputs: ["input", "weight", "bias?"],
  check([x, w, b], attrs) {
    const g = conv2dGeometry("conv2d", x!.shape, w!.shape, attrs);
    checkBias("conv2d", b, g.O, w!.shape);
  },
  forward(ctx, [x, w, b], attrs) {
    const g = conv2dGeometry("conv2d", x!.shape, w!.shape, attrs);
    const y = empty([g.N, g.O, g.HO, g.WO], ctx.engine);
    convForward(ctx.engine, g, x!.ptr, w!, b ? b.ptr : 0, y.ptr);
    return y;
  },
  backward(ctx, gy, [x, w, b], attrs, needs) {
    const g = conv2dGeometry("conv2d", x!.shape, w!.shape, attrs);
    let dx: Tensor | null = null, dw: Tensor | null = null;
    if (needs[0]) {
      dx = empty(x!.shape, ctx.engine);
      convInput(ctx.engine, g, gy.ptr, w!, dx.ptr);
    }
    if (needs[1]) {
      dw = empty(w!.shape, ctx.engine);
      convWeight(ctx.engine, g, x!.ptr, gy.ptr, dw.ptr);
    }
    return [dx, dw, needs[2] && b ? biasGrad(gy, b.shape) : null];
  },
}, convDefaults);

/** 2-D convolution as torch.nn.functional.conv2d: x [N,C,H,W], w [O, C/groups, kH, kW]. */
export function conv2d(x: Tensor, w: Tensor, b?: Tensor | null, opts: Partial<Conv2dAttrs> = {}): Tensor {
  return conv2dOp.apply([x, w, b ?? null], opts);
}

function sameEngine(op: string, ...ts: Tensor[]) {
  for (const t of ts) {
    if (!(t instanceof Tensor)) fail(op, `expected a Tensor, got ${typeof t}`);
    t.assertUsable(op);
    if (t.device !== ts[0].device) fail(op, `inputs are on different devices (${ts.map((x) => x.device).join(", ")}); move them to one with .to()`);
    if (t.engine !== ts[0].engine) fail(op, "inputs belong to different engines");
  }
}

/** torch.nn.grad.conv2d_input: the gradient of conv2d with respect to its input (shape
 *  inputShape), for weight w and output gradient gradOut. Not recorded for backward. */
/** The GPU twins of conv2d_input / conv2d_weight's drivers (set by src/webgpu/ops/conv.ts). */
let gpuConv: {
  input: (g: ReturnType<typeof conv2dGeometry>, dy: Tensor, w: Tensor, dx: Tensor) => void;
  weight: (g: ReturnType<typeof conv2dGeometry>, x: Tensor, dy: Tensor, dw: Tensor) => void;
} | null = null;
export function _setGpuConv(f: typeof gpuConv) {
  gpuConv = f;
}

export function conv2d_input(inputShape: number[], w: Tensor, gradOut: Tensor, opts: Partial<Conv2dAttrs> = {}): Tensor {
  const op = "conv2d_input";
  checkOptions(op, opts, Object.keys(convDefaults), { noun: "attribute", error: OpError });
  sameEngine(op, w, gradOut);
  const g = conv2dGeometry(op, inputShape, w.shape, { ...convDefaults, ...opts });
  const want = [g.N, g.O, g.HO, g.WO];
  if (gradOut.rank !== 4 || gradOut.shape.some((d, i) => d !== want[i]))
    fail(op, `gradOut ${shapeStr(gradOut.shape)} must be the output shape ${shapeStr(want)} (input ${shapeStr(inputShape)}, weight ${shapeStr(w.shape)})`);
  const dx = empty(inputShape, w.engine);
  if (w.device === "webgpu") gpuConv!.input(g, gradOut, w, dx);
  else convInput(w.engine, g, gradOut.ptr, w, dx.ptr);
  return dx;
}

/** torch.nn.grad.conv2d_weight: the gradient of conv2d with respect to its weight (shape
 *  weightShape), for input x and output gradient gradOut. Not recorded for backward. */
export function conv2d_weight(x: Tensor, weightShape: number[], gradOut: Tensor, opts: Partial<Conv2dAttrs> = {}): Tensor {
  const op = "conv2d_weight";
  checkOptions(op, opts, Object.keys(convDefaults), { noun: "attribute", error: OpError });
  sameEngine(op, x, gradOut);
  const g = conv2dGeometry(op, x.shape, weightShape, { ...convDefaults, ...opts });
  const want = [g.N, g.O, g.HO, g.WO];
  if (gradOut.rank !== 4 || gradOut.shape.some((d, i) => d !== want[i]))
    fail(op, `gradOut ${shapeStr(gradOut.shape)} must be the output shape ${shapeStr(want)} (input ${shapeStr(x.shape)}, weight ${shapeStr(weightShape)})`);
  const dw = empty(weightShape, x.engine);
  if (x.device === "webgpu") gpuConv!.weight(g, x, gradOut, dw);
  else convWeight(x.engine, g, x.ptr, gradOut.ptr, dw.ptr);
  return dw;
}

// ---- conv_transpose2d ----

const transposeDefaults: ConvTranspose2dAttrs = { ...convDefaults, output_padding: 0 };

export const convTranspose2dOp = defineOp<ConvTranspose2dAttrs>({
  name: "conv_transpose2d",
  inputs: ["input", "weight", "bias?"],
  check([x, w, b], attrs) {
    const g = convTranspose2dGeometry("conv_transpose2d", x!.shape, w!.shape, attrs);
    checkBias("conv_transpose2d", b, g.C, w!.shape);
  },
  forward(ctx, [x, w, b], attrs) {
    const g = convTranspose2dGeometry("conv_transpose2d", x!.shape, w!.shape, attrs);
    const y = empty([g.N, g.C, g.H, g.W], ctx.engine);
    convInput(ctx.engine, g, x!.ptr, w!, y.ptr, b ? b.ptr : 0);
    return y;
  },
  backward(ctx, gy, [x, w, b], attrs, needs) {
    const g = convTranspose2dGeometry("conv_transpose2d", x!.shape, w!.shape, attrs);
    let dx: Tensor | null = null, dw: Tensor | null = null;
    if (needs[0]) {
      dx = empty(x!.shape, ctx.engine);
      convForward(ctx.engine, g, gy.ptr, w!, 0, dx.ptr);
    }
    if (needs[1]) {
      dw = empty(w!.shape, ctx.engine);
      convWeight(ctx.engine, g, gy.ptr, x!.ptr, dw.ptr);
    }
    return [dx, dw, needs[2] && b ? biasGrad(gy, b.shape) : null];
  },
}, transposeDefaults);

/** Transposed convolution as torch.nn.functional.conv_transpose2d: x [N, Cin, H, W],
 *  w [Cin, Cout/groups, kH, kW]. */
export function conv_transpose2d(x: Tensor, w: Tensor, b?: Tensor | null, opts: Partial<ConvTranspose2dAttrs> = {}): Tensor {
  return convTranspose2dOp.apply([x, w, b ?? null], opts);
}
