// VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
// Recognition", ICLR 2015), the six configurations of its table 1: A (11 weight layers), A-LRN
// (A with local response normalisation after the first conv), B (13), C (16, with three 1x1
// convs), D (16) and E (19); all 3x3 convs stride 1 pad 1 (1x1 pad 0 in C), 2x2 max pools
// stride 2, then FC-4096, FC-4096, FC-classes with dropout 0.5 after the two hidden ones.
// Laid out as torchvision's vgg11/13/16/19 (and _bn, batch norm after every conv): children
// features / avgpool / classifier, so the state-dict names (features.0.weight,
// classifier.6.bias) and counts are torchvision's (D = vgg16: 138,357,544 at 224x224, 1000
// classes; the paper's table 2 says 133, 133, 134, 138, 144 million for A..E).
import { Sequential } from "../nn/containers.js";
import { Conv2d, Linear } from "../nn/conv.js";
import { MaxPool2d, AdaptiveAvgPool2d } from "../nn/pool.js";
import { ReLU } from "../nn/activation.js";
import { BatchNorm2d, LocalResponseNorm } from "../nn/norm.js";
import { Dropout, Flatten } from "../nn/misc.js";
import { Module } from "../nn/module.js";
import { checkInt, checkOptions } from "./blocks.js";
import { alexnetLRN } from "./alexnet.js";
import { keysOf } from "../options.js";

/** Table 1 of the paper: a number is a 3x3 conv with that many filters, "1x1-N" a 1x1 conv,
 *  "M" a max pool, "LRN" local response normalisation. */
export const VGG_CONFIGS: Record<string, (number | string)[]> = {
  A: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
  "A-LRN": [64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
  B: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
  C: [64, 64, "M", 128, 128, "M", 256, 256, "1x1-256", "M", 512, 512, "1x1-512", "M", 512, 512, "1x1-512", "M"],
  D: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
  E: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
};

export interface VGGOptions {
  /** "A", "A-LRN", "B", "C", "D" or "E" */
  config?: string;
  classes?: number;
  inChannels?: number;
  /** height = width of the input, at least 32 (five 2x2 pools) */
  inputSize?: number;
  /** batch norm after every conv (torchvision's vgg*_bn; not in the paper) */
  batchNorm?: boolean;
  /** side of the map the classifier sees: torchvision's AdaptiveAvgPool2d((7, 7)) makes any
   *  input give 512x7x7, which is 224x224's map unchanged. 1 gives 512 features (small inputs). */
  poolSize?: number;
  /** width of the two hidden fully connected layers (4096) */
  hidden?: number;
  dropout?: number;
}

const VGG_OPTIONS = keysOf<VGGOptions>({ config: true, classes: true, inChannels: true, inputSize: true, batchNorm: true, poolSize: true, hidden: true, dropout: true });

export function vgg(options: VGGOptions = {}): Sequential {
  checkOptions("vgg", options, VGG_OPTIONS);
  const { config = "D", classes = 1000, inChannels = 3, inputSize = 224, batchNorm = false, poolSize = 7, hidden = 4096, dropout = 0.5 } = options;
  const cfg = VGG_CONFIGS[config];
  const name = `vgg-${config}`;
  if (!cfg) throw new Error(`vgg: config must be one of ${Object.keys(VGG_CONFIGS).join(", ")}, got ${JSON.stringify(config)}`);
  checkInt(name, "classes", classes, 1);
  checkInt(name, "inChannels", inChannels, 1);
  checkInt(name, "inputSize", inputSize, 32);
  checkInt(name, "poolSize", poolSize, 1);
  checkInt(name, "hidden", hidden, 1);
  const layers: Module[] = [];
  let c = inChannels;
  for (const v of cfg) {
    if (v === "M") layers.push(new MaxPool2d(2, { stride: 2 }));
    else if (v === "LRN") layers.push(alexnetLRN());
    else {
      const [k, out] = typeof v === "number" ? [3, v] : [1, Number(v.slice(4))];
      layers.push(new Conv2d(c, out, k, { padding: k === 3 ? 1 : 0 }));
      if (batchNorm) layers.push(new BatchNorm2d(out));
      layers.push(new ReLU());
      c = out;
    }
  }
  return new Sequential({
    features: new Sequential(...layers),
    avgpool: new AdaptiveAvgPool2d(poolSize),
    flatten: new Flatten(),
    classifier: new Sequential(
      new Linear(c * poolSize * poolSize, hidden),
      new ReLU(),
      new Dropout(dropout),
      new Linear(hidden, hidden),
      new ReLU(),
      new Dropout(dropout),
      new Linear(hidden, classes),
    ),
  });
}

type Opts = Omit<VGGOptions, "config" | "batchNorm">;
const named = (name: string, config: string, batchNorm: boolean) => (o: Opts = {}) => {
  checkOptions(name, o, VGG_OPTIONS);
  for (const k of ["config", "batchNorm"] as const)
    if ((o as VGGOptions)?.[k] !== undefined) throw new Error(`${name}: ${k} is fixed by the name; use vgg({config, batchNorm})`);
  return vgg({ ...o, config, batchNorm });
};

/** torchvision's names: vgg11 = A, vgg13 = B, vgg16 = D, vgg19 = E; vgg11_lrn = A-LRN and
 *  vgg16_c = C (16 weight layers too), which torchvision does not have. */
export const vgg11 = named("vgg11", "A", false);
export const vgg11_bn = named("vgg11_bn", "A", true);
export const vgg11_lrn = named("vgg11_lrn", "A-LRN", false);
export const vgg11_lrn_bn = named("vgg11_lrn_bn", "A-LRN", true);
export const vgg13 = named("vgg13", "B", false);
export const vgg13_bn = named("vgg13_bn", "B", true);
export const vgg16_c = named("vgg16_c", "C", false);
export const vgg16_c_bn = named("vgg16_c_bn", "C", true);
export const vgg16 = named("vgg16", "D", false);
export const vgg16_bn = named("vgg16_bn", "D", true);
export const vgg19 = named("vgg19", "E", false);
export const vgg19_bn = named("vgg19_bn", "E", true);
