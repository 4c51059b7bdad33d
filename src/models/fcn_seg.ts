// Fully convolutional nets for semantic segmentation (Long, Shelhamer & Darrell, "Fully
// Convolutional Networks for Semantic Segmentation", CVPR 2015, sections 4.1-4.2, figure 3):
// VGG's convolutions, its fully connected layers as convolutions (fc6: 7x7, fc7: 1x1), a 1x1
// class scorer, and learned upsampling by transposed convolutions initialised to bilinear
// interpolation, back to the input's size:
//   FCN-32s: the stride-32 scores upsampled 32x in one step;
//   FCN-16s: upsampled 2x, plus scores from pool4 (a 1x1 conv, zero-initialised), then 16x;
//   FCN-8s:  that sum upsampled 2x again, plus scores from pool3, then 8x ("skip layer
//            refinement": the coarse, semantic layers and the fine, local ones combined).
// State-dict names follow the paper's layers (features.N as torchvision's VGG, so its
// convolutions load from a torchvision VGG state dict; fc6 is its classifier.0 reshaped to
// [4096, 512, 7, 7]). Unlike the paper, fc6 pads by 3 and the upsampling layers by half their
// stride, so the maps line up without its 100-pixel input padding and cropping: the input side
// must be a multiple of 32 and the output has the input's size.
import { Module, checkNamedChildren, type Flow, type SummaryRow, type ModuleConfig } from "../nn/module.js";
import { Sequential } from "../nn/containers.js";
import { Conv2d, ConvTranspose2d } from "../nn/conv.js";
import { MaxPool2d } from "../nn/pool.js";
import { ReLU } from "../nn/activation.js";
import { Dropout } from "../nn/misc.js";
import { registerModuleType } from "../nn/config.js";
import { add } from "../ops/index.js";
import { Tensor, shapeStr } from "../tensor.js";
import { vgg } from "./vgg.js";
import { checkInt, checkOptions } from "./blocks.js";
import { keysOf } from "../options.js";

export type FCNVariant = "32s" | "16s" | "8s";

/** The children each variant has after the VGG features and fc6 .. score_fr. */
const HEADS: Record<FCNVariant, string[]> = {
  "32s": ["upscore"],
  "16s": ["score_pool4", "upscore2", "upscore16"],
  "8s": ["score_pool4", "score_pool3", "upscore2", "upscore_pool4", "upscore8"],
};
const TRUNK = ["features", "fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "score_fr"];

export class FCNSegmenter extends Module {
  readonly type = "FCNSegmenter";
  readonly variant: FCNVariant;
  /** indices of pool3 and pool4 among the features' children (after which the skips read) */
  private readonly taps: [number, number];

  constructor(layers: [string, Module][]) {
    super();
    checkNamedChildren("FCNSegmenter", layers);
    for (const [n, m] of layers) this.registerModule(n, m);
    const names = layers.map(([n]) => n);
    const v = (Object.keys(HEADS) as FCNVariant[]).find((k) => [...TRUNK, ...HEADS[k]].join() === names.join());
    if (!v) throw new Error(`FCNSegmenter: children must be ${TRUNK.join(", ")} and then those of FCN-32s, -16s or -8s (${Object.values(HEADS).map((h) => h.join(", ")).join(" / ")}), got ${names.join(", ")}`);
    this.variant = v;
    const pools = [...this.child("features").namedChildren()].map(([, m], i) => (m instanceof MaxPool2d ? i : -1)).filter((i) => i >= 0);
    if (pools.length !== 5) throw new Error(`FCNSegmenter: the features must have five max pools (VGG's), found ${pools.length}`);
    this.taps = [pools[2], pools[3]];
  }

  private child(n: string): Module {
    return this._modules.get(n)!;
  }

  /** the features' outputs at pool3, pool4 and the end, in the form `step` gives them */
  private trunk<T>(x: T, step: (m: Module, x: T, name: string) => T): { pool3: T; pool4: T; score: T } {
    let pool3 = x, pool4 = x;
    [...this.child("features").namedChildren()].forEach(([n, m], i) => {
      x = step(m, x, `features.${n}`);
      if (i === this.taps[0]) pool3 = x;
      if (i === this.taps[1]) pool4 = x;
    });
    for (const n of TRUNK.slice(1)) x = step(this.child(n), x, n);
    return { pool3, pool4, score: x };
  }

  /** the variant's upsampling and skips over trunk outputs, with `join` adding two maps */
  private head<T>(t: { pool3: T; pool4: T; score: T }, step: (m: Module, x: T, name: string) => T, join: (a: T, b: T, name: string) => T): T {
    const at = (n: string, x: T) => step(this.child(n), x, n);
    if (this.variant === "32s") return at("upscore", t.score);
    const fuse4 = join(at("upscore2", t.score), at("score_pool4", t.pool4), "fuse_pool4");
    if (this.variant === "16s") return at("upscore16", fuse4);
    const fuse3 = join(at("upscore_pool4", fuse4), at("score_pool3", t.pool3), "fuse_pool3");
    return at("upscore8", fuse3);
  }

  forward(x: Tensor): Tensor {
    const side = x.shape.slice(2);
    if (x.shape.length !== 4 || side.some((d) => d % 32)) throw new Error(`FCNSegmenter (FCN-${this.variant}): input must be [N, C, H, W] with H and W multiples of 32, got ${shapeStr(x.shape)}`);
    const step = (m: Module, v: Tensor) => m.call(v);
    return this.head(this.trunk(x, step), step, (a, b) => add(a, b));
  }

  outputShape(i: number[]): number[] {
    if (i.length !== 4 || i.slice(2).some((d) => d % 32)) throw new Error(`input must be [N, C, H, W] with H and W multiples of 32, got ${shapeStr(i)}`);
    const step = (m: Module, s: number[]) => m.outputShape(s);
    return this.head(this.trunk(i, step), step, (a) => a);
  }

  summarize(flow: Flow, rows: SummaryRow[], name: string): Flow {
    const at = (n: string) => (name ? `${name}.${n}` : n);
    const step = (m: Module, f: Flow, n: string) => m.summarize(f, rows, at(n));
    return this.head(this.trunk(flow, step), step, (a, b, n) => {
      const out: Flow = { ...a, rf: [Math.max(a.rf[0], b.rf[0]), Math.max(a.rf[1], b.rf[1])], jump: [Math.max(a.jump[0], b.jump[0]), Math.max(a.jump[1], b.jump[1])] };
      rows.push({ name: at(n), layer: "Add", inputShape: a.shape, outputShape: out.shape, weightShape: null, params: 0, trainable: 0, macs: 0, rf: out.rf });
      return out;
    });
  }

  config(): ModuleConfig {
    return { type: this.type, children: [...this.namedChildren()].map(([n, m]) => [n, m.config()]) };
  }
}
registerModuleType("FCNSegmenter", (_a, kids, names) => new FCNSegmenter(names.map((n, i) => [n, kids[i]])));

/** Weights of a transposed convolution that upsamples each of `channels` maps by bilinear
 *  interpolation (the paper's initialisation; channel c reads only channel c): kernel k. */
export function bilinearKernel(channels: number, k: number): Float32Array {
  const f = Math.ceil(k / 2), center = k % 2 === 1 ? f - 1 : f - 0.5;
  const w = new Float32Array(channels * channels * k * k);
  for (let c = 0; c < channels; c++)
    for (let i = 0; i < k; i++)
      for (let j = 0; j < k; j++) w[((c * channels + c) * k + i) * k + j] = (1 - Math.abs(i - center) / f) * (1 - Math.abs(j - center) / f);
  return w;
}

/** An upsampling by `factor` (a transposed conv, kernel 2*factor, padding factor/2: exactly
 *  factor times the size), bilinear to start with, learned after. No bias, as the paper's. */
function upsample(classes: number, factor: number): ConvTranspose2d {
  const up = new ConvTranspose2d(classes, classes, 2 * factor, { stride: factor, padding: factor / 2, bias: false });
  up.weight.data.set(bilinearKernel(classes, 2 * factor));
  return up;
}

/** A 1x1 class scorer for a skip, zero-initialised (the paper's), so training starts from the
 *  coarser net's output. */
function skipScorer(inC: number, classes: number): Conv2d {
  const s = new Conv2d(inC, classes, 1);
  s.weight.data.fill(0);
  s.bias!.data.fill(0);
  return s;
}

export interface FCNSegOptions {
  /** classes scored per pixel (21 in the paper: PASCAL VOC's 20 and background) */
  classes?: number;
  inChannels?: number;
  /** height = width of the input, a multiple of 32 */
  inputSize?: number;
  /** the VGG configuration of the features: "A" .. "E" ("D", VGG-16, in the paper) */
  config?: string;
  /** batch norm after every conv of the features (not in the paper) */
  batchNorm?: boolean;
  /** channels of fc6 and fc7 (4096) */
  hidden?: number;
  dropout?: number;
}

const FCN_SEG_OPTIONS = keysOf<FCNSegOptions>({ classes: true, inChannels: true, inputSize: true, config: true, batchNorm: true, hidden: true, dropout: true });

function build(variant: FCNVariant, options: FCNSegOptions): FCNSegmenter {
  const model = `fcn${variant}`;
  checkOptions(model, options, FCN_SEG_OPTIONS);
  const { classes = 21, inChannels = 3, inputSize = 224, config = "D", batchNorm = false, hidden = 4096, dropout = 0.5 } = options;
  checkInt(model, "classes", classes, 1);
  checkInt(model, "inChannels", inChannels, 1);
  checkInt(model, "hidden", hidden, 1);
  checkInt(model, "inputSize", inputSize, 32);
  if (inputSize % 32) throw new Error(`${model}: inputSize must be a multiple of 32 (five 2x2 pools, then upsampling back), got ${inputSize}`);
  const backbone = vgg({ config, batchNorm, inChannels, inputSize, classes: 1, hidden: 1, poolSize: 1 });
  const parts = new Map(backbone.namedChildren());
  const features = parts.get("features") as Sequential;
  parts.get("classifier")!.dispose(); // only VGG's convolutions are kept
  const c5 = features.outputShape([1, inChannels, 32, 32])[1];
  const c4 = widthAfterPool(features, 4, inChannels), c3 = widthAfterPool(features, 3, inChannels);
  const layers: [string, Module][] = [
    ["features", features],
    ["fc6", new Conv2d(c5, hidden, 7, { padding: 3 })],
    ["relu6", new ReLU()],
    ["drop6", new Dropout(dropout)],
    ["fc7", new Conv2d(hidden, hidden, 1)],
    ["relu7", new ReLU()],
    ["drop7", new Dropout(dropout)],
    ["score_fr", new Conv2d(hidden, classes, 1)],
  ];
  if (variant === "32s") layers.push(["upscore", upsample(classes, 32)]);
  else if (variant === "16s") layers.push(["score_pool4", skipScorer(c4, classes)], ["upscore2", upsample(classes, 2)], ["upscore16", upsample(classes, 16)]);
  else
    layers.push(["score_pool4", skipScorer(c4, classes)], ["score_pool3", skipScorer(c3, classes)], ["upscore2", upsample(classes, 2)], ["upscore_pool4", upsample(classes, 2)], ["upscore8", upsample(classes, 8)]);
  return new FCNSegmenter(layers);
}

/** channels of the features' map after their k-th max pool */
function widthAfterPool(features: Sequential, k: number, inChannels: number): number {
  let shape = [1, inChannels, 32, 32], pools = 0;
  for (const [, m] of features.namedChildren()) {
    shape = m.outputShape(shape);
    if (m instanceof MaxPool2d && ++pools === k) return shape[1];
  }
  throw new Error(`the features have fewer than ${k} max pools`);
}

/** FCN-32s: VGG, fc6/fc7 as convolutions, scores upsampled 32x (bilinear to start). */
export const fcn32s = (options: FCNSegOptions = {}) => build("32s", options);
/** FCN-16s: FCN-32s's scores upsampled 2x plus pool4's, then 16x. */
export const fcn16s = (options: FCNSegOptions = {}) => build("16s", options);
/** FCN-8s: FCN-16s's sum upsampled 2x plus pool3's, then 8x. */
export const fcn8s = (options: FCNSegOptions = {}) => build("8s", options);
