// Fully convolutional nets (Long, Shelhamer & Darrell, "Fully Convolutional Networks for
// Semantic Segmentation", CVPR 2015, section 3.1 and figure 2): a fully connected layer that
// sees a whole C x h x w map is a convolution with an h x w kernel, and the ones after it are
// 1x1 convolutions. Turned so, a classifier trained on S x S inputs slides over a larger image
// and gives a map of class scores, one per S x S window, spaced by the net's total stride;
// on an S x S input it gives exactly the classifier's scores (as a 1x1 map).
import { Module } from "../nn/module.js";
import { Sequential } from "../nn/containers.js";
import { Conv2d, Linear } from "../nn/conv.js";
import { AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool2d } from "../nn/pool.js";
import { BatchNorm1d, BatchNorm2d } from "../nn/norm.js";
import { Flatten, Identity, Dropout } from "../nn/misc.js";
import { ReLU, LeakyReLU, Sigmoid, Tanh, Softmax } from "../nn/activation.js";
import { moduleFromConfig } from "../nn/config.js";
import { checkInt } from "./blocks.js";
import { createModel } from "./index.js";
import { badArgument } from "../options.js";

/** layers that act on each value (or along the channel axis) and so work on maps as on vectors */
const pointwise = [ReLU, LeakyReLU, Sigmoid, Tanh, Dropout, Identity];

/** A copy of `model` (a Sequential, possibly nested, with Flatten then Linear layers, as the
 *  zoo's classifiers are) whose fully connected layers are convolutions with the same weights.
 *  inputShape: the [C, H, W] the classifier was built for. Other changes, so that the copy
 *  works on any larger input:
 *  - Flatten becomes Identity (the map stays a map);
 *  - an adaptive average pool that does nothing at the training size (torchvision's VGG and
 *    AlexNet at 224) becomes Identity; one to 1x1 (ResNet's global pooling) becomes an h x w
 *    average pool with stride 1, which on the training input is the same average;
 *  - BatchNorm1d after a Linear becomes BatchNorm2d with the same statistics.
 *  The state-dict names stay the same (classifier.0.weight is now [out, C, h, w]). */
export function convolutionalize(model: Module, inputShape: readonly number[]): Sequential {
  if (!(model instanceof Sequential)) throw new Error(`convolutionalize: expects a Sequential classifier (features, Flatten, Linear layers), got ${model?.type ?? typeof model}`);
  if (!Array.isArray(inputShape) || inputShape.length !== 3 || inputShape.some((d) => !Number.isInteger(d) || d < 1))
    throw new Error(`convolutionalize: inputShape must be the training input [C, H, W], got ${JSON.stringify(inputShape)}`);
  try {
    model.outputShape([1, ...inputShape]);
  } catch (e) {
    throw new Error(`convolutionalize: the model does not take ${JSON.stringify(inputShape)} inputs: ${(e as Error).message}`);
  }
  // work on a copy, so the classifier stays as it was
  const copy = moduleFromConfig(model.config()) as Sequential;
  copy.loadStateDict(model.stateDict());
  copy.train(model.training);
  const state: Walk = { shape: [1, ...inputShape], flat: null, sawFlatten: false };
  const out = convertSequential(copy, state);
  if (!state.sawFlatten) throw new Error("convolutionalize: the model has no Flatten, so nothing to turn into convolutions");
  if (state.flat) throw new Error("convolutionalize: the model ends with a Flatten; nothing after it to turn into a convolution");
  out.train(model.training);
  return out;
}

interface Walk {
  /** the shape of the original model's activations at this point */
  shape: number[];
  /** [C, h, w] of the map a Flatten turned into features, until a Linear takes it */
  flat: number[] | null;
  sawFlatten: boolean;
}

function convertSequential(seq: Sequential, w: Walk): Sequential {
  const kids: [string, Module][] = [];
  for (const [n, m] of seq.namedChildren()) kids.push([n, m instanceof Sequential ? convertSequential(m, w) : convert(m, w)]);
  return new Sequential(kids);
}

function convert(m: Module, w: Walk): Module {
  const where = () => `convolutionalize: ${m.describe()} at '${m.path()}'`;
  const inShape = w.shape;
  w.shape = m.outputShape(inShape);
  const mapped = w.sawFlatten; // past the first Flatten the new model sees maps where the old saw vectors
  if (m instanceof Flatten) {
    if (inShape.length !== 4) throw new Error(`${where()}: expected to flatten a map [N, C, h, w], got [${inShape}]`);
    w.flat = inShape.slice(1);
    w.sawFlatten = true;
    return new Identity();
  }
  if (m instanceof Linear) {
    const [c, h, wd] = w.flat ?? [m.inFeatures, 1, 1];
    if (!mapped) throw new Error(`${where()}: a Linear before any Flatten`);
    w.flat = null;
    const conv = new Conv2d(c, m.outFeatures, [h, wd], { bias: !!m.bias });
    // PyTorch's flatten order is (C, h, w), which is the [out, C, h, w] weight's order
    conv.weight.data.set(m.weight.data);
    if (m.bias) conv.bias!.data.set(m.bias.data);
    m.dispose();
    return conv;
  }
  if (m instanceof BatchNorm1d) {
    if (!mapped) return m;
    const bn = new BatchNorm2d(m.numFeatures, { eps: m.eps, momentum: m.momentum, affine: m.affine, trackRunningStats: m.trackRunningStats });
    bn.loadStateDict(m.stateDict());
    m.dispose();
    return bn;
  }
  if (m instanceof AdaptiveAvgPool2d || m instanceof GlobalAvgPool2d) {
    if (mapped) throw new Error(`${where()}: pooling after a Flatten`);
    const [h, wd] = [inShape[2], inShape[3]];
    const o = m instanceof AdaptiveAvgPool2d ? m.outputSize : [1, 1];
    if (o[0] === h && o[1] === wd) return new Identity();
    if (o[0] === 1 && o[1] === 1) return new AvgPool2d([h, wd], { stride: 1 });
    throw new Error(`${where()}: pools the ${h}x${wd} map of the training input to ${o[0]}x${o[1]}, which is no sliding window; build the classifier for an input whose map here is ${o[0]}x${o[1]}`);
  }
  if (!mapped) return m; // the convolutional part stays as it is
  if (pointwise.some((C) => m instanceof C) || (m instanceof Softmax && (m.dim === 1 || m.dim === -inShape.length + 1))) return m;
  throw new Error(`${where()}: does not know how to apply it to maps after the Flatten`);
}

export interface FCNOptions {
  /** a zoo classifier built as a Sequential: "alexnet", "vgg16", "resnet18", "lenet", ... */
  backbone?: string;
  classes?: number;
  inChannels?: number;
  /** the classifier's training input size (larger inputs give larger maps) */
  inputSize?: number;
  /** further options for the backbone */
  [option: string]: unknown;
}

/** The backbone classifier for `inputSize` inputs, convolutionalized: on a larger image it
 *  gives a [N, classes, h, w] heat map. */
export function fcn(options: FCNOptions = {}): Sequential {
  if (options === null || typeof options !== "object") badArgument("fcn", "its options", "an object { backbone?, classes?, inChannels?, inputSize? }", options);
  const { backbone = "alexnet", classes = 1000, inChannels = 3, inputSize = 224, ...rest } = options;
  if (typeof backbone !== "string") throw new Error(`fcn: backbone must be a zoo model's name, got ${JSON.stringify(backbone)}`);
  checkInt("fcn", "inputSize", inputSize, 1);
  checkInt("fcn", "inChannels", inChannels, 1);
  const model = createModel(backbone, { classes, inChannels, inputSize, ...rest });
  try {
    return convolutionalize(model, [inChannels, inputSize, inputSize]);
  } finally {
    model.dispose();
  }
}

