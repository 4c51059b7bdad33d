// The `nn` namespace: layers, containers and initialisers, named as in torch.nn.
import { Module } from "./module.js";
import { Sequential } from "./containers.js";
export { Module, ModuleError, parameter, withForwardHook, type StateDict, type StateValue, type ModuleConfig, type SummaryRow, type Flow } from "./module.js";
export { Sequential, Residual, Concat } from "./containers.js";
export { Conv2d, ConvTranspose2d, Linear, type Conv2dOptions, type ConvTranspose2dOptions } from "./conv.js";
export { MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, GlobalAvgPool2d, type PoolOptions } from "./pool.js";
export { ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, LogSoftmax } from "./activation.js";
export { BatchNorm1d, BatchNorm2d, LocalResponseNorm, type BatchNormOptions } from "./norm.js";
export { Dropout, Flatten, Upsample, Identity, type UpsampleOptions } from "./misc.js";
export { PartialConv2d, type PartialConv2dOptions } from "./partial.js";
export { fuseBatchNorm } from "./fuse.js";
export { withoutFusion } from "./fusion.js";
export { moduleFromConfig, registerModuleType } from "./config.js";
export * as init from "./init.js";

/** nn.sequential(a, b, c): a Sequential with children "0", "1", "2". */
export function sequential(...layers: Module[]): Sequential {
  return new Sequential(...layers);
}
