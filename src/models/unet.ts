// U-Net (Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for Biomedical Image
// Segmentation", MICCAI 2015, figure 1): a contracting path of two 3x3 convs + ReLU and a 2x2
// max pool per level, doubling the channels; an expanding path of a 2x2 transposed convolution
// ("up-convolution") that halves them, concatenation with the contracting path's map of that
// level, and two 3x3 convs; a 1x1 conv to the classes. depth 4 and width 64 are the paper's
// (23 conv layers). The paper's convs are unpadded and the skip maps are cropped to fit; here
// they are padded (1), so the maps line up without cropping and the output has the input's size
// (the input side must be a multiple of 2^depth).
// Built from the containers, one level inside the other: level = enc (two convs), skip =
// Concat(identity, down: pool -> inner level -> up-conv), dec (two convs).
import { Sequential, Concat } from "../nn/containers.js";
import { Conv2d, ConvTranspose2d } from "../nn/conv.js";
import { MaxPool2d } from "../nn/pool.js";
import { ReLU } from "../nn/activation.js";
import { BatchNorm2d } from "../nn/norm.js";
import { Identity } from "../nn/misc.js";
import { Module } from "../nn/module.js";
import { checkInt, checkOptions } from "./blocks.js";
import { keysOf } from "../options.js";

export interface UNetOptions {
  /** output channels, one score map per class (2 in the paper) */
  classes?: number;
  inChannels?: number;
  /** height = width of the input, a multiple of 2^depth */
  inputSize?: number;
  /** number of 2x2 poolings (4 in the paper) */
  depth?: number;
  /** channels of the first level (64 in the paper); level d has width * 2^d */
  width?: number;
  /** batch norm after every 3x3 conv (not in the paper) */
  batchNorm?: boolean;
}

function doubleConv(inC: number, outC: number, bn: boolean): Sequential {
  const layers: Module[] = [];
  for (const c of [inC, outC]) {
    layers.push(new Conv2d(c, outC, 3, { padding: 1, bias: !bn }));
    if (bn) layers.push(new BatchNorm2d(outC));
    layers.push(new ReLU());
  }
  return new Sequential(...layers);
}

const UNET_OPTIONS = keysOf<UNetOptions>({ classes: true, inChannels: true, inputSize: true, depth: true, width: true, batchNorm: true });

export function unet(options: UNetOptions = {}): Sequential {
  checkOptions("unet", options, UNET_OPTIONS);
  const { classes = 2, inChannels = 1, inputSize = 256, depth = 4, width = 64, batchNorm = false } = options;
  checkInt("unet", "classes", classes, 1);
  checkInt("unet", "inChannels", inChannels, 1);
  checkInt("unet", "depth", depth, 0);
  checkInt("unet", "width", width, 1);
  checkInt("unet", "inputSize", inputSize, 1);
  if (inputSize % 2 ** depth) throw new Error(`unet: inputSize must be a multiple of 2^depth = ${2 ** depth} (each level halves the map and the skips must line up), got ${inputSize}`);
  const level = (d: number, inC: number): [string, Module][] => {
    const c = width * 2 ** d;
    if (d === depth) return [["enc", doubleConv(inC, c, batchNorm)]];
    const down = new Sequential({
      pool: new MaxPool2d(2, { stride: 2 }),
      inner: new Sequential(level(d + 1, c)),
      up: new ConvTranspose2d(2 * c, c, 2, { stride: 2 }),
    });
    return [
      ["enc", doubleConv(inC, c, batchNorm)],
      ["skip", new Concat([["identity", new Identity()], ["down", down]])],
      ["dec", doubleConv(2 * c, c, batchNorm)],
    ];
  };
  return new Sequential([...level(0, inChannels), ["head", new Conv2d(width, classes, 1)]]);
}
