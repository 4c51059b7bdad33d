// The model zoo, by name (for configs and the command line).
import type { Module } from "../nn/module.js";
import { lenet, lenet5 } from "./lenet.js";
export { lenet, lenet5, Subsampling, LENET5_C3_TABLE, type LeNetOptions, type LeNet5Options } from "./lenet.js";

export const modelFactories: Record<string, (options?: any) => Module> = { lenet, lenet5 };

// AlexNet, VGG, GoogLeNet, the ResNets, FCN and U-Net (see zoo.ts)
import { zooFactories } from "./zoo.js";
export * from "./zoo.js";
Object.assign(modelFactories, zooFactories);

/** Build a zoo model by name, e.g. createModel("lenet", {classes: 10}). */
export function createModel(name: string, options: Record<string, unknown> = {}): Module {
  const f = modelFactories[name];
  if (!f) throw new Error(`createModel: unknown model '${name}' (known: ${Object.keys(modelFactories).join(", ")})`);
  return f(options);
}
