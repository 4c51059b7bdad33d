// LeNet in two forms.
// - lenet(): the lecture's modern LeNet (UBC CPSC 425 L20's table): conv 20@5x5 pad 2, ReLU,
//   max-pool 2, conv 50@5x5 pad 2, ReLU, max-pool 2, flatten 2450, Linear 500, ReLU, Linear 10.
// - lenet5(): LeNet-5 as LeCun et al. built it (Proc. IEEE 1998): tanh, trainable subsampling,
//   C3's partial connection table.
import { Tensor, ones, zeros } from "../tensor.js";
import { Module, windowRF, type Flow } from "../nn/module.js";
import { Sequential } from "../nn/containers.js";
import { Conv2d, Linear } from "../nn/conv.js";
import { MaxPool2d, AvgPool2d } from "../nn/pool.js";
import { ReLU, Tanh } from "../nn/activation.js";
import { BatchNorm1d, BatchNorm2d } from "../nn/norm.js";
import { Flatten } from "../nn/misc.js";
import { PartialConv2d } from "../nn/partial.js";
import { registerModuleType } from "../nn/config.js";
import { conv2d, avg_pool2d } from "../ops/index.js";
import { checkOptions, keysOf } from "../options.js";
import { describe } from "../nn/shapes.js";

export interface LeNetOptions {
  classes?: number;
  inChannels?: number;
  /** height = width of the input (28 for MNIST) */
  inputSize?: number;
  /** batch norm after each conv and after the hidden Linear (not in the lecture) */
  batchNorm?: boolean;
}

function checkInt(model: string, what: string, v: number, min: number) {
  if (!Number.isInteger(v) || v < min) throw new Error(`${model}: ${what} must be an integer >= ${min}, got ${describe(v)}`);
}

/** The lecture's LeNet. Children: features (convs), flatten, classifier (Linears), so the
 *  state-dict names are features.0.weight, features.3.weight, classifier.0.weight, ... */
export function lenet(options: LeNetOptions = {}): Sequential {
  checkOptions("lenet", options, keysOf<LeNetOptions>({ classes: true, inChannels: true, inputSize: true, batchNorm: true }));
  const { classes = 10, inChannels = 1, inputSize = 28, batchNorm = false } = options;
  checkInt("lenet", "classes", classes, 1);
  checkInt("lenet", "inChannels", inChannels, 1);
  checkInt("lenet", "inputSize", inputSize, 4);
  const bn2 = (c: number) => (batchNorm ? [new BatchNorm2d(c)] : []);
  const features = new Sequential(
    new Conv2d(inChannels, 20, 5, { padding: 2 }),
    ...bn2(20),
    new ReLU(),
    new MaxPool2d(2),
    new Conv2d(20, 50, 5, { padding: 2 }),
    ...bn2(50),
    new ReLU(),
    new MaxPool2d(2),
  );
  const side = Math.floor(Math.floor(inputSize / 2) / 2);
  const classifier = new Sequential(new Linear(50 * side * side, 500), ...(batchNorm ? [new BatchNorm1d(500)] : []), new ReLU(), new Linear(500, classes));
  return new Sequential({ features, flatten: new Flatten(), classifier });
}

/** LeNet-5's S2/S4: each map's 2x2 sum times a trainable coefficient plus a trainable bias
 *  (2 parameters per map). Done as average pooling then a per-map scale and shift (a depthwise
 *  1x1 conv); the coefficient starts at 1 and the bias at 0, so it starts as plain average
 *  pooling. */
export class Subsampling extends Module {
  readonly type = "Subsampling";
  readonly weight: Tensor;
  readonly bias: Tensor;
  private pool: AvgPool2d;

  constructor(readonly channels: number, readonly kernelSize = 2) {
    super();
    checkInt("Subsampling", "channels", channels, 1);
    this.pool = new AvgPool2d(kernelSize);
    this.weight = this.registerParameter("weight", ones([channels, 1, 1, 1]))!;
    this.bias = this.registerParameter("bias", zeros([channels]))!;
  }

  outputShape(i: number[]): number[] {
    if (i.length === 4 && i[1] !== this.channels) throw new Error(`expected ${this.channels} channels, got ${i[1]}`);
    return this.pool.outputShape(i);
  }

  forward(x: Tensor): Tensor {
    return conv2d(avg_pool2d(x, { kernel_size: this.kernelSize }), this.weight, this.bias, { groups: this.channels });
  }

  macs(_i: number[], o: number[]): number {
    return o[0] * o[1] * o[2] * o[3];
  }

  receptiveField(flow: Flow) {
    return windowRF(flow, [this.kernelSize, this.kernelSize], [this.kernelSize, this.kernelSize]);
  }

  protected args() {
    return [this.channels, this.kernelSize];
  }

  protected extraRepr() {
    return `${this.channels}, kernel_size=${this.kernelSize}`;
  }
}
registerModuleType("Subsampling", (a) => new Subsampling(a[0], a[1]));

/** C3's connection table (LeCun et al. 1998, table I), as the input maps of each output map:
 *  maps 0-5 see 3 neighbouring S2 maps, 6-11 four neighbouring, 12-14 four non-neighbouring,
 *  15 all six. 6*(75+1) + 6*(100+1) + 3*(100+1) + (150+1) = 1,516 parameters. */
export const LENET5_C3_TABLE: number[][] = [
  ...[0, 1, 2, 3, 4, 5].map((j) => [j, j + 1, j + 2].map((i) => i % 6)),
  ...[0, 1, 2, 3, 4, 5].map((j) => [j, j + 1, j + 2, j + 3].map((i) => i % 6)),
  ...[0, 1, 2].map((j) => [j, j + 1, j + 3, j + 4].map((i) => i % 6)),
  [0, 1, 2, 3, 4, 5],
];

export interface LeNet5Options {
  classes?: number;
  inChannels?: number;
  /** 32 as in the paper; 28 (MNIST) pads C1 by 2, which gives the same 28x28 C1 maps */
  inputSize?: number;
}

/** LeNet-5: C1 conv 6@5x5, S2, C3 partial conv 16@5x5, S4, C5 conv 120@5x5, F6 Linear 84,
 *  output Linear. Parameters: C1 156 + S2 12 + C3 1,516 + S4 32 + C5 48,120 + F6 10,164 =
 *  60,000 (the paper's "60,000 trainable parameters"), plus 84*10+10 = 850 for the output layer:
 *  60,850 in all. The paper's output is a layer of Euclidean RBF units whose parameter vectors
 *  were drawn by hand (stylised 7x12 bitmaps of the characters) and kept fixed, so it adds
 *  nothing trainable; here it is a trainable Linear, as everyone trains it today. */
export function lenet5(options: LeNet5Options = {}): Sequential {
  checkOptions("lenet5", options, keysOf<LeNet5Options>({ classes: true, inChannels: true, inputSize: true }));
  const { classes = 10, inChannels = 1, inputSize = 32 } = options;
  checkInt("lenet5", "classes", classes, 1);
  checkInt("lenet5", "inChannels", inChannels, 1);
  const pad = (32 - inputSize) / 2;
  if (!Number.isInteger(pad) || pad < 0) throw new Error(`lenet5: inputSize must be 32, or 28 (padded to 32 by C1), or another even size below 32; got ${inputSize}`);
  return new Sequential({
    c1: new Conv2d(inChannels, 6, 5, { padding: pad }),
    act1: new Tanh(),
    s2: new Subsampling(6),
    act2: new Tanh(),
    c3: new PartialConv2d(6, LENET5_C3_TABLE, 5),
    act3: new Tanh(),
    s4: new Subsampling(16),
    act4: new Tanh(),
    c5: new Conv2d(16, 120, 5),
    act5: new Tanh(),
    flatten: new Flatten(),
    f6: new Linear(120, 84),
    act6: new Tanh(),
    output: new Linear(84, classes),
  });
}
