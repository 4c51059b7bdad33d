// The CIFAR-10 ResNets of He et al. 2016 ("Deep Residual Learning for Image Recognition",
// section 4.2) and their plain twins: a 3x3 conv with 16 filters, then three stages of n
// blocks (2n layers) on 32x32, 16x16 and 8x8 maps with 16, 32 and 64 filters, the first conv of
// stages 2 and 3 striding by 2; global average pooling, a fully connected layer, softmax:
// 6n+2 weighted layers (ResNet-20/32/44/56/110 for n = 3/5/7/9/18). Batch norm after every
// conv, before the ReLU; He initialisation (the paper's ref. [13]).
// Shortcuts: option A by default, as the paper uses on CIFAR ("so our residual models have
// exactly the same depth, width, and number of parameters as the plain counterparts"): an
// identity with stride 2 and zero channels appended where the stage changes (ZeroPadShortcut).
// Option B ("B") projects there instead (1x1 conv + batch norm, as torchvision's ResNets).
// Parameter counts with option A (conv weights without bias, batch norm scale and shift, the
// Linear): 269,722 / 464,154 / 658,586 / 853,018 / 1,727,962, the paper's table 6 "0.27M,
// 0.46M, 0.66M, 0.85M, 1.7M"; the test checks them against a PyTorch build of the same net.
import { Module } from "../nn/module.js";
import { Sequential } from "../nn/containers.js";
import { Conv2d, Linear } from "../nn/conv.js";
import { AdaptiveAvgPool2d } from "../nn/pool.js";
import { ReLU } from "../nn/activation.js";
import { BatchNorm2d } from "../nn/norm.js";
import { Flatten } from "../nn/misc.js";
import { ZeroPadShortcut, checkInt, checkOptions } from "./blocks.js";
import { basicBlock, projection, heInit } from "./resnet.js";
import { keysOf } from "../options.js";

export interface CifarResNetOptions {
  classes?: number;
  inChannels?: number;
  /** height = width of the input (32 for CIFAR-10); a multiple of 4 */
  inputSize?: number;
  /** 6n+2: 20, 32, 44, 56, 110, ... (8 is the smallest) */
  depth?: number;
  /** "A": identity shortcuts with zero padding (no parameters, the paper's CIFAR choice);
   *  "B": projections where the shape changes */
  shortcut?: "A" | "B";
  /** the plain twin: the same layers without any shortcut */
  plain?: boolean;
  /** filters of the three stages (the paper's 16, 32, 64) */
  widths?: [number, number, number];
}

const CIFAR_RESNET_OPTIONS = keysOf<CifarResNetOptions>({ classes: true, inChannels: true, inputSize: true, depth: true, shortcut: true, plain: true, widths: true });

export function cifarResnet(options: CifarResNetOptions = {}): Sequential {
  checkOptions("cifar_resnet", options, CIFAR_RESNET_OPTIONS);
  const { classes = 10, inChannels = 3, inputSize = 32, depth = 20, plain = false, widths = [16, 32, 64] } = options;
  const name = `${plain ? "plain" : "resnet"}${depth}`;
  if (!Number.isInteger(depth) || depth < 8 || (depth - 2) % 6) throw new Error(`${name}: depth must be 6n+2 (8, 14, 20, 32, 44, 56, 110, ...), got ${depth}`);
  if (plain && options.shortcut !== undefined) throw new Error(`${name}: a plain net has no shortcuts, so no shortcut option`);
  const shortcut = options.shortcut ?? "A";
  if (shortcut !== "A" && shortcut !== "B") throw new Error(`${name}: shortcut must be "A" (identity, zero padding) or "B" (projection), got ${JSON.stringify(shortcut)}`);
  checkInt(name, "classes", classes, 1);
  checkInt(name, "inChannels", inChannels, 1);
  checkInt(name, "inputSize", inputSize, 4);
  if (!Array.isArray(widths) || widths.length !== 3) throw new Error(`${name}: widths must be three filter counts, got ${JSON.stringify(widths)}`);
  widths.forEach((w, i) => checkInt(name, `widths[${i}]`, w, 1));
  if (shortcut === "A" && !plain && !(widths[0] <= widths[1] && widths[1] <= widths[2])) throw new Error(`${name}: option A pads channels, so widths must not decrease, got ${widths}`);
  const n = (depth - 2) / 6;
  let inC = widths[0];
  const stage = (outC: number, stride: number) => {
    const blocks: Module[] = [];
    for (let b = 0; b < n; b++) {
      const s = b === 0 ? stride : 1;
      const changes = s !== 1 || inC !== outC;
      const ds = plain || !changes ? null : shortcut === "A" ? new ZeroPadShortcut(inC, outC, s) : projection(inC, outC, s);
      blocks.push(basicBlock(inC, outC, s, ds, !plain));
      inC = outC;
    }
    return new Sequential(...blocks);
  };
  const model = new Sequential({
    conv1: new Conv2d(inChannels, widths[0], 3, { padding: 1, bias: false }),
    bn1: new BatchNorm2d(widths[0]),
    relu: new ReLU(),
    layer1: stage(widths[0], 1),
    layer2: stage(widths[1], 2),
    layer3: stage(widths[2], 2),
    avgpool: new AdaptiveAvgPool2d(1),
    flatten: new Flatten(),
    fc: new Linear(widths[2], classes),
  });
  heInit(model, "fan_in");
  return model;
}

const residual = (depth: number) => (o: Omit<CifarResNetOptions, "depth" | "plain"> = {}) => cifarResnet({ ...fixed(`resnet${depth}`, o, depth, false), depth });
const plainNet = (depth: number) => (o: Omit<CifarResNetOptions, "depth" | "plain"> = {}) => cifarResnet({ ...fixed(`plain${depth}`, o, depth, true), depth, plain: true });

function fixed(name: string, o: CifarResNetOptions, depth: number, plain: boolean): CifarResNetOptions {
  checkOptions(name, o, CIFAR_RESNET_OPTIONS);
  if (o?.depth !== undefined && o.depth !== depth) throw new Error(`${name}: depth is ${depth}, got depth ${o.depth} (use cifar_resnet({depth}))`);
  if (o?.plain !== undefined && o.plain !== plain) throw new Error(`${name}: plain is ${plain}, got plain ${o.plain}`);
  return o;
}

export const resnet20 = residual(20);
export const resnet32 = residual(32);
export const resnet44 = residual(44);
export const resnet56 = residual(56);
export const resnet110 = residual(110);
export const plain20 = plainNet(20);
export const plain32 = plainNet(32);
export const plain44 = plainNet(44);
export const plain56 = plainNet(56);
export const plain110 = plainNet(110);
