// AlexNet in two forms.
// - alexnet2012(): as Krizhevsky, Sutskever & Hinton describe it ("ImageNet Classification with
//   Deep Convolutional Neural Networks", NIPS 2012, section 3 and figure 2): conv1 96@11x11
//   stride 4, conv2 256@5x5, conv3 384@3x3, conv4 384@3x3, conv5 256@3x3, ReLU after every layer,
//   local response normalisation after the ReLUs of conv1 and conv2, overlapping 3x3 stride-2
//   max pooling after both normalisations and after conv5, then FC-4096, FC-4096, FC-classes
//   with dropout 0.5 on the two hidden layers. Single tower by default (62,378,344 parameters
//   for 1000 classes); towers: 2 keeps the two-GPU connectivity, where conv2, conv4 and conv5
//   only see the maps of their own GPU, as grouped convolutions (60,965,224: the paper's "60
//   million"). The paper says 224x224 inputs but its 55x55 conv1 maps need 227x227, the default.
// - alexnet(): torchvision's variant (from "One weird trick", Krizhevsky 2014): 64/192/384/256/256
//   filters, no LRN, padding 2 on conv1, an adaptive 6x6 average pool before the classifier,
//   dropout before the hidden FC layers; torchvision's names and its 61,100,840 parameters.
import { Sequential } from "../nn/containers.js";
import { Conv2d, Linear } from "../nn/conv.js";
import { MaxPool2d, AdaptiveAvgPool2d } from "../nn/pool.js";
import { ReLU } from "../nn/activation.js";
import { LocalResponseNorm } from "../nn/norm.js";
import { Dropout, Flatten } from "../nn/misc.js";
import { checkInt, checkOptions } from "./blocks.js";
import { keysOf } from "../options.js";

/** The paper's normalisation: b = a / (k + alpha * sum of a^2 over n = 5 neighbouring maps)^beta
 *  with k = 2, alpha = 1e-4, beta = 0.75. LocalResponseNorm follows PyTorch, which divides its
 *  alpha by n, so the paper's alpha is passed as n * 1e-4. */
export function alexnetLRN(): LocalResponseNorm {
  const n = 5;
  return new LocalResponseNorm(n, { alpha: n * 1e-4, beta: 0.75, k: 2 });
}

export interface AlexNetOptions {
  classes?: number;
  inChannels?: number;
  /** height = width of the input */
  inputSize?: number;
  dropout?: number;
}

function inputCheck(name: string, features: Sequential, inChannels: number, inputSize: number): number[] {
  try {
    return features.outputShape([1, inChannels, inputSize, inputSize]);
  } catch (e) {
    throw new Error(`${name}: inputSize ${inputSize} is too small for the conv/pool stack (${(e as Error).message})`);
  }
}

const ALEXNET_OPTIONS = keysOf<AlexNetOptions>({ classes: true, inChannels: true, inputSize: true, dropout: true });

/** torchvision's AlexNet. */
export function alexnet(options: AlexNetOptions = {}): Sequential {
  checkOptions("alexnet", options, ALEXNET_OPTIONS);
  const { classes = 1000, inChannels = 3, inputSize = 224, dropout = 0.5 } = options;
  checkInt("alexnet", "classes", classes, 1);
  checkInt("alexnet", "inChannels", inChannels, 1);
  checkInt("alexnet", "inputSize", inputSize, 1);
  const features = new Sequential(
    new Conv2d(inChannels, 64, 11, { stride: 4, padding: 2 }),
    new ReLU(),
    new MaxPool2d(3, { stride: 2 }),
    new Conv2d(64, 192, 5, { padding: 2 }),
    new ReLU(),
    new MaxPool2d(3, { stride: 2 }),
    new Conv2d(192, 384, 3, { padding: 1 }),
    new ReLU(),
    new Conv2d(384, 256, 3, { padding: 1 }),
    new ReLU(),
    new Conv2d(256, 256, 3, { padding: 1 }),
    new ReLU(),
    new MaxPool2d(3, { stride: 2 }),
  );
  inputCheck("alexnet", features, inChannels, inputSize);
  return new Sequential({
    features,
    avgpool: new AdaptiveAvgPool2d(6),
    flatten: new Flatten(),
    classifier: new Sequential(
      new Dropout(dropout),
      new Linear(256 * 6 * 6, 4096),
      new ReLU(),
      new Dropout(dropout),
      new Linear(4096, 4096),
      new ReLU(),
      new Linear(4096, classes),
    ),
  });
}

export interface AlexNet2012Options extends AlexNetOptions {
  /** 1: one tower (every conv sees all maps); 2: the paper's two GPUs as groups = 2 in conv2,
   *  conv4 and conv5 */
  towers?: 1 | 2;
}

const ALEXNET2012_OPTIONS = keysOf<AlexNet2012Options>({ classes: true, inChannels: true, inputSize: true, dropout: true, towers: true });

/** AlexNet as in the 2012 paper (see the top of this file). */
export function alexnet2012(options: AlexNet2012Options = {}): Sequential {
  checkOptions("alexnet2012", options, ALEXNET2012_OPTIONS);
  const { classes = 1000, inChannels = 3, inputSize = 227, dropout = 0.5, towers = 1 } = options;
  checkInt("alexnet2012", "classes", classes, 1);
  checkInt("alexnet2012", "inChannels", inChannels, 1);
  checkInt("alexnet2012", "inputSize", inputSize, 1);
  if (towers !== 1 && towers !== 2) throw new Error(`alexnet2012: towers must be 1 or 2, got ${JSON.stringify(towers)}`);
  const features = new Sequential(
    new Conv2d(inChannels, 96, 11, { stride: 4 }),
    new ReLU(),
    alexnetLRN(),
    new MaxPool2d(3, { stride: 2 }),
    new Conv2d(96, 256, 5, { padding: 2, groups: towers }),
    new ReLU(),
    alexnetLRN(),
    new MaxPool2d(3, { stride: 2 }),
    new Conv2d(256, 384, 3, { padding: 1 }),
    new ReLU(),
    new Conv2d(384, 384, 3, { padding: 1, groups: towers }),
    new ReLU(),
    new Conv2d(384, 256, 3, { padding: 1, groups: towers }),
    new ReLU(),
    new MaxPool2d(3, { stride: 2 }),
  );
  const [, c, h, w] = inputCheck("alexnet2012", features, inChannels, inputSize);
  return new Sequential({
    features,
    flatten: new Flatten(),
    classifier: new Sequential(
      new Linear(c * h * w, 4096),
      new ReLU(),
      new Dropout(dropout),
      new Linear(4096, 4096),
      new ReLU(),
      new Dropout(dropout),
      new Linear(4096, classes),
    ),
  });
}
