// ResNet-18/34/50/101/152 for ImageNet (He et al., "Deep Residual Learning for Image
// Recognition", CVPR 2016, table 1), built as torchvision builds them so that the state-dict
// names (conv1, bn1, layer1.0.conv1, layer1.0.downsample.0, fc) and the parameter counts are
// torchvision's (ResNet-50: 25,557,032). Two choices follow torchvision rather than the paper:
// - the bottleneck's stride sits on its 3x3 conv ("ResNet v1.5"); the paper strides the first
//   1x1. The parameters are the same; v1.5 is what torchvision's weights were trained with.
// - shortcuts are identities except where the shape changes, where they are projections (1x1
//   conv with stride + batch norm): the paper's option B.
import { Module } from "../nn/module.js";
import { Sequential } from "../nn/containers.js";
import { Conv2d, Linear } from "../nn/conv.js";
import { MaxPool2d, AdaptiveAvgPool2d } from "../nn/pool.js";
import { ReLU } from "../nn/activation.js";
import { BatchNorm2d } from "../nn/norm.js";
import { Flatten } from "../nn/misc.js";
import { kaimingNormal } from "../nn/init.js";
import { ResidualBlock, checkInt, checkOptions } from "./blocks.js";
import { keysOf, badArgument } from "../options.js";

export interface ResNetOptions {
  classes?: number;
  inChannels?: number;
  /** height = width of the input; any size >= 32 works (the head pools globally) */
  inputSize?: number;
  /** 18, 34, 50, 101 or 152 */
  depth?: number;
}

/** blocks per stage and block kind for each depth (table 1 of the paper) */
export const RESNET_LAYERS: Record<number, { blocks: number[]; bottleneck: boolean }> = {
  18: { blocks: [2, 2, 2, 2], bottleneck: false },
  34: { blocks: [3, 4, 6, 3], bottleneck: false },
  50: { blocks: [3, 4, 6, 3], bottleneck: true },
  101: { blocks: [3, 4, 23, 3], bottleneck: true },
  152: { blocks: [3, 8, 36, 3], bottleneck: true },
};

const conv3 = (i: number, o: number, stride = 1) => new Conv2d(i, o, 3, { stride, padding: 1, bias: false });
const conv1 = (i: number, o: number, stride = 1) => new Conv2d(i, o, 1, { stride, bias: false });

/** Projection shortcut (option B): 1x1 conv with the block's stride, then batch norm. */
export function projection(inC: number, outC: number, stride: number): Sequential {
  return new Sequential(conv1(inC, outC, stride), new BatchNorm2d(outC));
}

/** Two 3x3 convs (ResNet-18/34 and the CIFAR nets). */
export function basicBlock(inC: number, outC: number, stride: number, downsample: Module | null, residual = true): ResidualBlock {
  return new ResidualBlock(
    [["conv1", conv3(inC, outC, stride)], ["bn1", new BatchNorm2d(outC)], ["relu1", new ReLU()], ["conv2", conv3(outC, outC)], ["bn2", new BatchNorm2d(outC)]],
    { downsample, residual },
  );
}

/** 1x1 reduce to `width`, 3x3 (with the stride), 1x1 expand to 4 x width (ResNet-50/101/152). */
export function bottleneck(inC: number, width: number, stride: number, downsample: Module | null): ResidualBlock {
  return new ResidualBlock(
    [
      ["conv1", conv1(inC, width)], ["bn1", new BatchNorm2d(width)], ["relu1", new ReLU()],
      ["conv2", conv3(width, width, stride)], ["bn2", new BatchNorm2d(width)], ["relu2", new ReLU()],
      ["conv3", conv1(width, width * 4)], ["bn3", new BatchNorm2d(width * 4)],
    ],
    { downsample },
  );
}

/** He initialisation (He et al., "Delving Deep into Rectifiers", ICCV 2015) for every conv:
 *  N(0, 2/fan) with fan = k*k*channels (torchvision's ResNets use the fan_out form); batch norm
 *  starts at weight 1, bias 0; Linear keeps PyTorch's default. */
export function heInit(model: Module, mode: "fan_in" | "fan_out" = "fan_out"): Module {
  if (!(model instanceof Module)) badArgument("heInit", "the model", "a Module", model);
  if (mode !== "fan_in" && mode !== "fan_out") badArgument("heInit", "mode", "\"fan_in\" or \"fan_out\"", mode);
  for (const m of model.modules()) if (m instanceof Conv2d) kaimingNormal(m.weight, { mode, nonlinearity: "relu" });
  return model;
}

const RESNET_OPTIONS = keysOf<ResNetOptions>({ classes: true, inChannels: true, inputSize: true, depth: true });

export function resnet(options: ResNetOptions = {}): Sequential {
  checkOptions("resnet", options, RESNET_OPTIONS);
  const { classes = 1000, inChannels = 3, inputSize = 224, depth = 18 } = options;
  const name = `resnet${depth}`;
  const spec = RESNET_LAYERS[depth];
  if (!spec) throw new Error(`resnet: depth must be one of ${Object.keys(RESNET_LAYERS).join(", ")}, got ${depth}`);
  checkInt(name, "classes", classes, 1);
  checkInt(name, "inChannels", inChannels, 1);
  checkInt(name, "inputSize", inputSize, 32);
  const expansion = spec.bottleneck ? 4 : 1;
  let inC = 64;
  const stage = (width: number, blocks: number, stride: number) => {
    const layers: Module[] = [];
    for (let b = 0; b < blocks; b++) {
      const s = b === 0 ? stride : 1;
      const outC = width * expansion;
      const ds = s !== 1 || inC !== outC ? projection(inC, outC, s) : null;
      layers.push(spec.bottleneck ? bottleneck(inC, width, s, ds) : basicBlock(inC, outC, s, ds));
      inC = outC;
    }
    return new Sequential(...layers);
  };
  const model = new Sequential({
    conv1: new Conv2d(inChannels, 64, 7, { stride: 2, padding: 3, bias: false }),
    bn1: new BatchNorm2d(64),
    relu: new ReLU(),
    maxpool: new MaxPool2d(3, { stride: 2, padding: 1 }),
    layer1: stage(64, spec.blocks[0], 1),
    layer2: stage(128, spec.blocks[1], 2),
    layer3: stage(256, spec.blocks[2], 2),
    layer4: stage(512, spec.blocks[3], 2),
    avgpool: new AdaptiveAvgPool2d(1),
    flatten: new Flatten(),
    fc: new Linear(512 * expansion, classes),
  });
  heInit(model);
  return model;
}

const at = (depth: number) => (o: ResNetOptions = {}) => {
  checkOptions(`resnet${depth}`, o, RESNET_OPTIONS);
  if (o?.depth !== undefined && o.depth !== depth) throw new Error(`resnet${depth}: depth is ${depth}, got depth ${o.depth} (use resnet({depth}))`);
  return resnet({ ...o, depth });
};
export const resnet18 = at(18);
export const resnet34 = at(34);
export const resnet50 = at(50);
export const resnet101 = at(101);
export const resnet152 = at(152);
