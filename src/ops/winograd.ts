// Winograd F(m x m, 3 x 3) for 3x3 stride-1 convolutions and F(2 x 2, 5 x 5) for 5x5 ones
// (assembly/winograd.ts): when it applies, the transformed filters and the forward driver. src/ops/conv.ts calls it for the
// forward and for the input gradient (a forward convolution of dy with the flipped filters).
import type { Engine } from "../engine/engine.js";
import type { ConvGeometry } from "./conv.js";
import { MR, NR } from "./linalg.js";

/** How 3x3 stride-1 convolutions run (forward, input gradient and weight gradient): "auto"
 *  (default) Winograd where the measurements of docs/performance.md say it is faster,
 *  "winograd" wherever it applies (the tile by the same rule as "auto"), "winograd2" /
 *  "winograd4" with F(2x2,3x3) / F(4x4,3x3) wherever it applies, "im2col" never (the exact
 *  path: each output one dot product over C*9 taps). */
export type Conv3x3 = "auto" | "winograd" | "winograd2" | "winograd4" | "im2col";
export const CONV3X3_CHOICES: readonly Conv3x3[] = ["auto", "winograd", "winograd2", "winograd4", "im2col"];

/** How 5x5 stride-1 convolutions run: "auto" (default) Winograd F(2x2,5x5) where the
 *  measurements of docs/performance.md say it is faster and its rounding is harmless,
 *  "winograd" wherever it applies, "im2col" never (the exact path). */
export type Conv5x5 = "auto" | "winograd" | "im2col";
export const CONV5X5_CHOICES: readonly Conv5x5[] = ["auto", "winograd", "im2col"];

/** Whether Winograd may run g at all: a non-empty 3x3 (5x5) convolution, stride 1, dilation 1,
 *  one group, and conv3x3 (conv5x5) not "im2col" (the forward, the input gradient and the
 *  weight gradient). */
function winogradFits(eng: Engine, g: ConvGeometry, k: 3 | 5 = 3): boolean {
  if ((k === 3 ? eng.conv3x3 : eng.conv5x5) === "im2col") return false;
  if (g.KH !== k || g.KW !== k || g.SH !== 1 || g.SW !== 1 || g.DH !== 1 || g.DW !== 1 || g.G !== 1) return false;
  return g.HO * g.WO !== 0 && g.C !== 0 && g.O !== 0;
}

/** The output tile m (2 or 4) of the Winograd path for g under the engine's setting, or 0 for
 *  the im2col path: a 3x3 kernel (F(2,3) or F(4,3)) or a 5x5 one (F(2,5)), stride 1, dilation
 *  1, one group. inputGrad: g is an input gradient (or conv_transpose2d) run as a forward
 *  convolution of dy. The kernel size r of the path is g.KH. */
export function winogradTile(eng: Engine, g: ConvGeometry, inputGrad = false): 0 | 2 | 4 {
  if (g.KH === 5) {
    if (!winogradFits(eng, g, 5)) return 0;
    return eng.conv5x5 === "winograd" || tile5ByShape(g) ? 2 : 0;
  }
  if (!winogradFits(eng, g)) return 0;
  if (eng.conv3x3 === "winograd2") return 2;
  if (eng.conv3x3 === "winograd4") return 4;
  const m = tileByShape(g, inputGrad ? DX_MIN_CHANNELS : MIN_CHANNELS);
  if (m === 0 && eng.conv3x3 === "winograd") return 2;
  return m;
}

/** Tiles of 4x4 outputs per image from which F(4,3) pays (maps of 13x13 and up; ResNet-18's
 *  256@14x14: 7.4 -> 5.3 ms on one thread, docs/performance.md). */
const MIN_TILES = 16;
/** Smaller maps (4 to 15 tiles) pay where their outputs fill at least half of the tiles (7x7
 *  and 6x6 do; 5x5, 25 outputs in 4 tiles padded to 8 at batch 1, is slower: 0.48 -> 0.64 ms for
 *  256@5x5). There the filters' transform, made once per call in training (the weights change
 *  every step), is a large share: with more than SMALL_MAP_F4_FILTERS channel pairs F(2,3),
 *  whose transformed filters are 16/36 the size, is the one that never loses much (ResNet-18's
 *  512@7x7 training step, forward and backward, two threads: im2col 30.7 / 60.5 / 99 / 172 ms
 *  at batch 1 / 4 / 8 / 16, F(4,3) 53.8 / 67.1 / 89 / 127, F(2,3) 33.6 / 54.3 / 82 / 133; at batch
 *  1 in inference im2col 4.2, F(4,3) 3.4, F(2,3) 2.9 ms). */
const SMALL_MAP_TILES = 4, SMALL_MAP_F4_FILTERS = 256 * 256;
/** Channels (in and out) at least. The forward: 32. F(4,3) is faster with 16 too (CIFAR
 *  ResNet-20's first stage, 16@32x32 at batch 128, two threads: 8.9 -> 6.0 ms), but a forward's
 *  rounding moves ReLU masks downstream: with the first stage's forward on F(4,3) (its error
 *  1.0e-6 of the largest output, im2col's 3.4e-7) a ResNet-20 training step's gradients lay
 *  thousands of times the exact path's one-ulp sensitivity from it at 3 of 5 seeds (median
 *  2,780x relaxed build, 5,630x simd; test/winograd.test.mjs holds the default path's median to
 *  10x: 2.7x on both with the forward on im2col). The input gradient: 16 (8.5 -> 5.6 ms); its
 *  rounding reaches the gradients before it linearly, no mask moves (the same test, the same
 *  seeds jumping as with im2col there). */
const MIN_CHANNELS = 32, DX_MIN_CHANNELS = 16;

/** "auto"'s choice, from bench/winograd.mjs (docs/performance.md): F(4x4,3x3), F(2x2,3x3) or
 *  im2col. A function of one image's shape, never of the batch: an image gives the same bits
 *  alone or in a batch (test/conv_blocks.test.mjs). */
function tileByShape(g: ConvGeometry, minChannels: number): 0 | 2 | 4 {
  if (Math.min(g.C, g.O) < minChannels) return 0;
  const tiles = Math.ceil(g.HO / 4) * Math.ceil(g.WO / 4);
  if (tiles >= MIN_TILES) return 4;
  if (tiles < SMALL_MAP_TILES || 2 * g.HO * g.WO < 16 * tiles) return 0;
  return g.C * g.O <= SMALL_MAP_F4_FILTERS ? 4 : 2;
}

/** "auto"'s choice for a 5x5 layer, the forward and the input gradient alike: F(2x2,5x5) where
 *  both channel counts are 16 or more and an image has 4 or more 2x2 output tiles, im2col
 *  otherwise. Measured (bench/winograd.mjs --k5, docs/performance.md, two threads): LeNet's
 *  20 -> 50 at 14x14, batch 64, forward 1.32x, input gradient 1.27x; 16 -> 32 at 28x28 1.12-1.33x;
 *  64 -> 64 at 56x56 2.0x; 6 -> 16 at 14x14 0.72x (forward); one 2x2 map 0.72x, 4x4 1.1x.
 *  Its rounding (about 5x im2col's, docs/performance.md) moves LeNet's training gradients by
 *  2-5x the exact path's own one-ulp sensitivity, batch norm or not (test/winograd.test.mjs).
 *  A function of one image's shape: an image gives the same bits alone or in a batch. */
function tile5ByShape(g: ConvGeometry): boolean {
  return Math.min(g.C, g.O) >= MIN_CHANNELS_5 && Math.ceil(g.HO / 2) * Math.ceil(g.WO / 2) >= MIN_TILES_5;
}
const MIN_CHANNELS_5 = 16, MIN_TILES_5 = 4;

/** Bytes of f32_winograd_weight's scratch per thread for 5x5 filters (assembly/winograd.ts). */
const W5_SCRATCH = 1024;

/** Transform points of F(m x m, r x r): (m + r - 1)^2. */
const points = (m: number, r: number) => (m + r - 1) ** 2;

/** Bytes of the transformed, packed filters: T matrices O x C in MR-row strips. */
const packedBytes = (O: number, C: number, m: number, r: number) => points(m, r) * Math.ceil(O / MR) * MR * C * 4;

/** The transformed filters of the convolution with O outputs and C inputs, packed for the
 *  micro-kernel, in a new buffer the caller releases: from w [O, C, r, r], or with flip from
 *  w [C, O, r, r] with the taps reversed (the input gradient's filters). */
export function winogradWeights(eng: Engine, w: number, O: number, C: number, flip: boolean, m: number, r: number): number {
  const pu = eng.alloc(packedBytes(O, C, m, r), "Winograd filters");
  eng.run("f32_winograd_weight", [w, O, C, flip ? 1 : 0, m, r, pu, r === 5 ? eng.scratch(W5_SCRATCH) : 0], O * C * points(m, r) * 4);
  return pu;
}

/** Floats between one point's transformed patches (or output gradients) and the next beyond
 *  their size: assembly/winograd.ts V_PAD (4 KB multiples put a tile's points in one L1 set). */
const V_PAD = 16;

/** Floats of V per thread at most (point x channel x tile): about 256 KB, so that an item's
 *  transformed patches stay in L2 while the filters stream through. */
const V_FLOATS = 1 << 16;
/** Floats of the shared V at most (all tiles' transformed patches, about 1 MB). */
const SHARED_V_FLOATS = 1 << 18;
/** Strips per pass of an item at most, and the floats of their products (M) at most. */
const SPC_MAX = 16, M_FLOATS = 1 << 16;

/** How winogradForward splits its work (none of it changes a sum: every output has the same
 *  bits under any plan, test/winograd.test.mjs):
 *  - items are blocks of NBT tiles (a multiple of NR) times MB blocks of the output channels'
 *    row strips; an item runs its strips SPC at a time, every point for those SPC strips before
 *    the next ones, so that a point's patches are read once per SPC strips and the filters of
 *    consecutive strips stream as one run (ResNet-18's 256@14x14 at batch 16, two threads:
 *    24.9 -> 19.2 ms; 512@7x7: 32 -> 21 ms);
 *  - shared: with too few tile blocks for the threads, MB > 1 items would each transform the
 *    same tiles again; then (where all tiles' V fits SHARED_V_FLOATS) f32_winograd_input
 *    transforms them once, on all threads, into one V, and the items are blocks of strips over
 *    all tiles (256@14x14 at batch 1: 2.1 -> 1.5 ms on two threads). Not where the per-item plan
 *    has blocks enough: 128@28x28 at batch 1 on two threads (7 blocks) measured 1.32 -> 1.47 ms
 *    shared. */
function winogradPlan(eng: Engine, g: ConvGeometry, m: number): { NBT: number; MB: number; SPC: number; shared: boolean } {
  const T = points(m, g.KH);
  const tiles = g.N * Math.ceil(g.HO / m) * Math.ceil(g.WO / m);
  const S = Math.ceil(g.O / MR);
  let NBT = Math.max(NR, Math.min(64, Math.floor(V_FLOATS / (T * g.C) / NR) * NR));
  while (NBT > NR && Math.ceil(tiles / NBT) < 4 * eng.threads) NBT -= NR;
  const NB = Math.ceil(tiles / NBT);
  const MB = Math.max(1, Math.min(S, Math.ceil(2 * eng.threads / NB)));
  const all = Math.ceil(tiles / NR) * NR;
  const spc = (nbt: number) => Math.max(1, Math.min(SPC_MAX, Math.floor(M_FLOATS / (T * MR * nbt))));
  if (MB > 1 && tiles > 0 && T * g.C * all <= SHARED_V_FLOATS) return { NBT: all, MB: Math.min(S, 4 * eng.threads), SPC: spc(all), shared: true };
  return { NBT, MB, SPC: spc(NBT), shared: false };
}

/** y = conv(x, W) (+ bias) by F(m x m, r x r), r = g.KH; pu from winogradWeights; the split
 *  from winogradPlan. */
export function winogradForward(eng: Engine, g: ConvGeometry, m: number, x: number, pu: number, bias: number, y: number, ep = 0): void {
  const r = g.KH, T = points(m, r);
  const tiles = g.N * Math.ceil(g.HO / m) * Math.ceil(g.WO / m);
  const { NBT, MB, SPC, shared } = winogradPlan(eng, g, m);
  const own = shared ? 0 : T * (g.C * NBT + V_PAD); // floats of the item's own V
  // V, M, the block's tile origins (16 i32 per group of four), the transforms' buffers
  const bytes = Math.ceil(((own + T * SPC * MR * NBT) + 4 * NBT + 3 * T * 4) * 4 / 64) * 64;
  const scratch = eng.scratch(bytes);
  const geo = eng.alloc(68, "conv geometry");
  const v = shared ? eng.alloc(T * (g.C * NBT + V_PAD) * 4, "Winograd transformed patches") : 0; // one block: all tiles
  try {
    new Int32Array(eng.memory.buffer, geo, 17).set([g.N, g.C, g.H, g.W, g.O, g.G, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.DH, g.DW, g.HO, g.WO, 0]);
    if (shared) {
      // slivers times channel blocks: enough items for every thread
      const slivers = NBT / NR, CB = 2 * Math.max(2, Math.ceil(g.C / 2 / Math.ceil(4 * eng.threads / slivers)));
      eng.run("f32_winograd_input", [geo, x, v, m, r, NBT, CB, scratch, bytes], tiles * T * g.C);
    }
    eng.run("f32_winograd_fwd", [geo, x, pu, bias, y, m, r, NBT, MB, SPC, ep, v, scratch, bytes], tiles * T * g.C * g.O);
  } finally {
    eng.release(geo);
    if (v) eng.release(v);
  }
}

// ---- the weight gradient: F(2x2, 3x3) and F(4x4, 3x3) (assembly/winograd_dw.ts) ----

/** The output tile m of the Winograd weight gradient of g (2: F(2x2, 3x3), 4: F(4x4, 3x3)), or 0
 *  for im2col's: where the forward could run by Winograd (a 3x3 kernel, stride 1, dilation 1,
 *  one group) unless conv3x3 is "im2col"; "winograd2" and "winograd4" force their tile,
 *  "winograd" takes "auto"'s tile, or F(2x2) where "auto" would not take Winograd. "auto":
 *  Winograd where it was measured faster than im2col's weight gradient (bench/winograd.mjs,
 *  docs/performance.md): 16 channels or more each way (CIFAR ResNet-20's 16@32x32 at batch 128:
 *  10.2 -> 8.1 ms by F(2x2)), 96 tiles of 2x2 or more in the batch (ResNet-18's 512@7x7 at batch
 *  4, 64 tiles: 0.86x) and at most 512 x 512 channels; there F(4x4), measured 1.0-2.0x F(2x2)'s
 *  speed on every such shape from 24 tiles of 4x4 to 8,192 (ResNet-20's, ResNet-18's and others,
 *  docs/performance.md "Winograd F(4x4,3x3) for the weight gradient"). F(4x4)'s rounding is
 *  8-17x im2col's (its G has 1/6 and 1/24; F(2x2)'s is im2col's); it reaches only this weight
 *  gradient, linearly (no ReLU mask moves), and a ResNet-20 training step with it stays within
 *  2.7-3.3x its exact path's one-ulp sensitivity (median of five seeds; with F(2x2) 2.7x;
 *  test/winograd.test.mjs holds the default path to 10x). A function of the batch too: unlike
 *  the forward, a weight gradient sums over the batch anyway. */
export function winogradWeightTile(eng: Engine, g: ConvGeometry): 0 | 2 | 4 {
  if (g.KH === 5) {
    if (!winogradFits(eng, g, 5) || g.N === 0) return 0;
    return eng.conv5x5 === "winograd" || tile5WeightByShape(g) ? 2 : 0;
  }
  if (!winogradFits(eng, g) || g.N === 0) return 0;
  if (eng.conv3x3 === "winograd2") return 2;
  if (eng.conv3x3 === "winograd4") return 4;
  const tiles = g.N * Math.ceil(g.HO / 2) * Math.ceil(g.WO / 2);
  if (Math.min(g.C, g.O) >= DW_MIN_CHANNELS && tiles >= DW_MIN_TILES && g.C * g.O <= DW_MAX_FILTERS) return 4;
  return eng.conv3x3 === "winograd" ? 2 : 0;
}
const DW_MIN_CHANNELS = 16, DW_MIN_TILES = 96, DW_MAX_FILTERS = 512 * 512;

/** "auto"'s choice for a 5x5 layer's weight gradient: F(2x2,5x5) with 16+ channels each way (as
 *  the forward) and DW5_MIN_TILES tiles of 2x2 in the batch, im2col otherwise. Measured
 *  (docs/performance.md, "The 5x5 weight gradient by F(2x2,5x5)", two threads): LeNet's 20 -> 50
 *  at 14x14 0.77x at batch 2 (98 tiles), 0.87-1.10x at 4 (196), 0.99-1.05x at 8, 1.06x at 16,
 *  1.2x at 64; 16 -> 16 at 14x14 1.2x at batch 4 and 8; 64 -> 192 at 27x27 (AlexNet's conv2)
 *  1.35x at batch 1, 1.6x at 8; 64@56x56 1.8x; 6 -> 16 channels 0.8x. F(2,5)'s
 *  G has 1/6 and 1/24 as F(4x4,3x3)'s: its rounding (up to 20x im2col's here) reaches only this
 *  gradient, linearly, and LeNet's training step stays within 2.5-5.8x its exact path's one-ulp
 *  sensitivity (test/winograd5.test.mjs holds it to 10x). Of the batch too, as the 3x3 rule. */
function tile5WeightByShape(g: ConvGeometry): boolean {
  return Math.min(g.C, g.O) >= MIN_CHANNELS_5 && g.N * Math.ceil(g.HO / 2) * Math.ceil(g.WO / 2) >= DW5_MIN_TILES;
}
const DW5_MIN_TILES = 256;

/** Floats of one chunk's transformed patches and output gradients (per thread): T points (16 or
 *  36) x (input channels + output channels of the item's blocks) x KC tiles. They are written once and
 *  packed once, so they need not stay in L1. */
const DW_CHUNK_FLOATS = 1 << 18;
/** Tiles per chunk at most. Layers with few channels got chunks of up to 256 tiles from
 *  DW_CHUNK_FLOATS alone (CIFAR ResNet-20's 16@32x32 F(4,3): 212, in 39 chunks over 8 ranges of
 *  5 and one of 4); 128 (64 chunks, 16 ranges of 4) took that layer's weight gradient from 8.8 to
 *  7.8 ms on two threads at batch 128 (1.10-1.17x at batch 32 and on 16@16x16; F(2,3)'s 32@16x16
 *  1.10-1.13x). The sums group differently: those layers' bits changed (deterministically). */
const DW_KC_MAX = 128;
/** Floats of all ranges' partial sums together at most (each range: T x O x C). */
const DW_PARTIAL_FLOATS = 1 << 22;
/** Channels per block at most (128 inputs, 132 outputs): a chunk then holds at least 60 tiles
 *  (KC). Every block transforms its chunk's patches and output gradients again for its share of
 *  the other side's channels, so larger blocks redo less: half these (64 x 66) took, ms on two
 *  threads at batch 16, 512@7x7 51.8 (now 42.6), 256@14x14 46.1 (38.0), 128@28x28 39.3 (31.8). */
const DW_BLOCK_SLIVERS = 16, DW_BLOCK_STRIPS = 22;

/** dw = the weight gradient of the convolution g for input x and output gradient dy, by F(m x m,
 *  3x3), m = 2 or 4: the tiles in chunks of KC, NCH ranges of chunks summed apart and added in order, items
 *  = ranges x blocks of output-channel strips x blocks of input channels. All of them functions
 *  of the shapes only (KC and NCH group the sums). */
export function winogradWeightGrad(eng: Engine, g: ConvGeometry, x: number, dy: number, dw: number, m: 2 | 4): void {
  const T = points(m, g.KH);
  const tiles = g.N * Math.ceil(g.HO / m) * Math.ceil(g.WO / m);
  const S = Math.ceil(g.O / MR), NSL = Math.ceil(g.C / NR);
  const OBN = Math.ceil(S / DW_BLOCK_STRIPS), CBN = Math.ceil(NSL / DW_BLOCK_SLIVERS);
  const OBMAX = Math.ceil(S / OBN) * MR, CBMAX = Math.ceil(NSL / CBN) * NR;
  // chunks of about equal size, at most KCMAX tiles, and at least 4 (of 16 tiles or more) where
  // the tiles allow, so that a small batch still makes items for the threads (a function of the
  // shapes only). With chunks of KCMAX a last chunk of a few tiles left its range's item short
  // while another ran a full one (F(4x4), 64@8x8 at batch 16: 56 + 8 tiles, 0.79x F(2x2)), and
  // up to KCMAX tiles were one item on one thread (at batch 12: 0.88x)
  const KCMAX = Math.max(8, Math.min(DW_KC_MAX, Math.floor(DW_CHUNK_FLOATS / (T * (OBMAX + CBMAX)) / 4) * 4));
  const chunks = Math.max(Math.ceil(tiles / KCMAX), Math.min(4, Math.floor(tiles / 16)), 1);
  const KC = Math.ceil(tiles / chunks / 4) * 4;
  // ranges: 16 where the chunks split into 16 equal ones, else at most 8 (ranges of unequal
  // length leave a thread waiting for the longest at the end)
  const partialsFit = Math.floor(DW_PARTIAL_FLOATS / (T * g.O * g.C));
  const NCH = Math.max(1, chunks % 16 === 0 && partialsFit >= 16 ? 16 : Math.min(chunks, 8, partialsFit));
  // V, Z, the packed strip and slivers, a tile, four groups' tile origins, the transforms' buffers
  const floats = T * ((CBMAX + OBMAX) * KC + 2 * V_PAD) + MR * KC + CBMAX * KC + MR * NR + 64 + 3 * T * 4;
  const bytes = Math.ceil((floats * 4) / 64) * 64;
  const scratch = eng.scratch(bytes);
  const part = eng.alloc(NCH * T * (g.O * g.C + V_PAD) * 4, "Winograd weight-gradient partial sums");
  const geo = eng.alloc(68, "conv geometry");
  try {
    new Int32Array(eng.memory.buffer, geo, 17).set([g.N, g.C, g.H, g.W, g.O, g.G, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.DH, g.DW, g.HO, g.WO, 0]);
    eng.run("f32_winograd_dw", [geo, x, dy, part, NCH, KC, OBN, CBN, m, scratch, bytes], tiles * T * g.C * g.O);
    // the finish's scratch: 2 KB per thread (four channels' 36 points, 30 column sums, 25 taps)
    eng.run("f32_winograd_dw_finish", [part, NCH, g.O, g.C, dw, m, g.KH, eng.scratch(2048)], g.O * g.C * T * NCH);
  } finally {
    eng.release(geo);
    eng.release(part);
  }
}
