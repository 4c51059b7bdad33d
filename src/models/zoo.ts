// The zoo beyond LeNet: every model's factory and the names they are registered under.
import { alexnet, alexnet2012 } from "./alexnet.js";
import { vgg, vgg11, vgg11_bn, vgg11_lrn, vgg11_lrn_bn, vgg13, vgg13_bn, vgg16_c, vgg16_c_bn, vgg16, vgg16_bn, vgg19, vgg19_bn } from "./vgg.js";
import { googlenet } from "./googlenet.js";
import { resnet, resnet18, resnet34, resnet50, resnet101, resnet152 } from "./resnet.js";
import { cifarResnet, resnet20, resnet32, resnet44, resnet56, resnet110, plain20, plain32, plain44, plain56, plain110 } from "./cifar_resnet.js";
import { fcn } from "./fcn.js";
import { unet } from "./unet.js";
import { fcn32s, fcn16s, fcn8s } from "./fcn_seg.js";

export { alexnet, alexnet2012, alexnetLRN, type AlexNetOptions, type AlexNet2012Options } from "./alexnet.js";
export { vgg, vgg11, vgg11_bn, vgg11_lrn, vgg11_lrn_bn, vgg13, vgg13_bn, vgg16_c, vgg16_c_bn, vgg16, vgg16_bn, vgg19, vgg19_bn, VGG_CONFIGS, type VGGOptions } from "./vgg.js";
export { googlenet, GoogLeNet, inception, inceptionAux, basicConv, type GoogLeNetOptions } from "./googlenet.js";
export { resnet, resnet18, resnet34, resnet50, resnet101, resnet152, basicBlock, bottleneck, projection, heInit, RESNET_LAYERS, type ResNetOptions } from "./resnet.js";
export { cifarResnet, resnet20, resnet32, resnet44, resnet56, resnet110, plain20, plain32, plain44, plain56, plain110, type CifarResNetOptions } from "./cifar_resnet.js";
export { ResidualBlock, ZeroPadShortcut } from "./blocks.js";
export { fcn, convolutionalize, type FCNOptions } from "./fcn.js";
export { unet, type UNetOptions } from "./unet.js";
export { fcn32s, fcn16s, fcn8s, FCNSegmenter, bilinearKernel, type FCNSegOptions, type FCNVariant } from "./fcn_seg.js";

export const zooFactories = {
  alexnet, alexnet2012,
  vgg, vgg11, vgg11_bn, vgg11_lrn, vgg11_lrn_bn, vgg13, vgg13_bn, vgg16_c, vgg16_c_bn, vgg16, vgg16_bn, vgg19, vgg19_bn,
  googlenet,
  resnet, resnet18, resnet34, resnet50, resnet101, resnet152,
  cifar_resnet: cifarResnet, resnet20, resnet32, resnet44, resnet56, resnet110, plain20, plain32, plain44, plain56, plain110,
  fcn, unet, fcn32s, fcn16s, fcn8s,
};
