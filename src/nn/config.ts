// Models to and from JSON: every module writes {type, args, children}; this registry turns
// the JSON back into modules (fresh weights; load the safetensors file next).
import { Module, type ModuleConfig } from "./module.js";
import { Sequential, Residual, Concat } from "./containers.js";
import { Conv2d, ConvTranspose2d, Linear } from "./conv.js";
import { MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, GlobalAvgPool2d } from "./pool.js";
import { ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, LogSoftmax } from "./activation.js";
import { BatchNorm1d, BatchNorm2d, LocalResponseNorm } from "./norm.js";
import { Dropout, Flatten, Upsample, Identity } from "./misc.js";
import { PartialConv2d } from "./partial.js";

type Factory = (args: any[], children: Module[], names: string[]) => Module;
const registry = new Map<string, Factory>();

/** Make a module type loadable from a config (leaf layers: built from their args). */
export function registerModuleType(type: string, factory: Factory): void {
  registry.set(type, factory);
}

const leaf = (C: new (...a: any[]) => Module): Factory => (args) => new C(...args);
// names spelled out: class names do not survive minification
const leaves: [string, new (...a: any[]) => Module][] = [
  ["Conv2d", Conv2d], ["ConvTranspose2d", ConvTranspose2d], ["Linear", Linear],
  ["MaxPool2d", MaxPool2d], ["AvgPool2d", AvgPool2d], ["AdaptiveAvgPool2d", AdaptiveAvgPool2d], ["GlobalAvgPool2d", GlobalAvgPool2d],
  ["ReLU", ReLU], ["LeakyReLU", LeakyReLU], ["Sigmoid", Sigmoid], ["Tanh", Tanh], ["Softmax", Softmax], ["LogSoftmax", LogSoftmax],
  ["BatchNorm1d", BatchNorm1d], ["BatchNorm2d", BatchNorm2d], ["LocalResponseNorm", LocalResponseNorm],
  ["Dropout", Dropout], ["Flatten", Flatten], ["Upsample", Upsample], ["Identity", Identity], ["PartialConv2d", PartialConv2d],
];
for (const [type, C] of leaves) registerModuleType(type, leaf(C));
registerModuleType("Sequential", (_a, kids, names) => new Sequential(names.map((n, i) => [n, kids[i]] as [string, Module])));
registerModuleType("Residual", (_a, kids, names) => new Residual(kids[names.indexOf("body")], names.includes("shortcut") ? kids[names.indexOf("shortcut")] : null));
registerModuleType("Concat", (_a, kids, names) => new Concat(names.map((n, i) => [n, kids[i]] as [string, Module])));

/** Where a config names a module type that moduleFromConfig cannot build (a class of one's own
 *  that was not registered), as "path (Type)"; empty when all can be built. */
export function unbuildableTypes(cfg: ModuleConfig, where = ""): string[] {
  const here = registry.has(cfg.type) ? [] : [`${where || "the model"} (${cfg.type})`];
  return here.concat(...(cfg.children ?? []).map(([n, c]) => unbuildableTypes(c, where ? `${where}.${n}` : n)));
}

/** Build a module from its config (as written by module.config()). */
export function moduleFromConfig(cfg: ModuleConfig, where = "config"): Module {
  if (!cfg || typeof cfg !== "object" || typeof cfg.type !== "string") throw new Error(`${where}: expected {type, args?, children?}, got ${JSON.stringify(cfg)?.slice(0, 80)}`);
  const f = registry.get(cfg.type);
  if (!f) throw new Error(`${where}: unknown module type '${cfg.type}' (known: ${[...registry.keys()].sort().join(", ")})`);
  const kids = (cfg.children ?? []).map(([n, c]) => moduleFromConfig(c, `${where}.${n}`));
  try {
    return f(cfg.args ?? [], kids, (cfg.children ?? []).map(([n]) => n));
  } catch (e) {
    throw new Error(`${where}: cannot build ${cfg.type}: ${(e as Error).message}`);
  }
}
