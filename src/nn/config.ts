// Models to and from JSON: every module writes {type, args, children}; this registry turns
// the JSON back into modules (fresh weights; load the safetensors file next).
import { Module, trackModules, type ModuleConfig } from "./module.js";
import { Sequential, Residual, Concat } from "./containers.js";
import { Conv2d, ConvTranspose2d, Linear } from "./conv.js";
import { MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, GlobalAvgPool2d } from "./pool.js";
import { ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, LogSoftmax } from "./activation.js";
import { BatchNorm1d, BatchNorm2d, LocalResponseNorm } from "./norm.js";
import { Dropout, Flatten, Upsample, Identity } from "./misc.js";
import { PartialConv2d } from "./partial.js";
import { describe } from "./shapes.js";
import { sizeOf, shapeStr } from "../tensor.js";
import { engine } from "../engine/engine.js";
import { fmt } from "../engine/arena.js";
import { badArgument } from "../options.js";

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
registerModuleType("Residual", (_a, kids, names) => {
  const other = names.filter((n) => n !== "body" && n !== "shortcut");
  if (!names.includes("body") || other.length) throw new Error(`Residual: the children are 'body' and optionally 'shortcut', got ${names.map((n) => `'${n}'`).join(", ") || "none"}`);
  return new Residual(kids[names.indexOf("body")], names.includes("shortcut") ? kids[names.indexOf("shortcut")] : null);
});
registerModuleType("Concat", (_a, kids, names) => new Concat(names.map((n, i) => [n, kids[i]] as [string, Module])));

/** How deep a config may nest (a deeper one is damaged or hostile: no model here is near it). */
export const MAX_CONFIG_DEPTH = 64;

const childPath = (where: string, n: string) => (where ? `${where}.${n}` : n);
/** A path for a message: long names (a hostile file's) are cut in the middle. */
const short = (p: string) => (p.length > 200 ? `${p.slice(0, 120)}...${p.slice(-60)}` : p);

/** Checks a config's structure before anything is built: every node a {type, args?, children?}
 *  of a registered type, args a list, children a list of [name, config] with unique names that
 *  are non-empty and have no ".", nesting at most MAX_CONFIG_DEPTH deep. Iterative (a hostile
 *  file cannot overflow the stack); errors name the node's path. */
export function checkConfig(cfg: unknown, where = "config"): void {
  const stack: [unknown, string, number][] = [[cfg, where, 0]];
  while (stack.length) {
    const [c, at, depth] = stack.pop()!;
    if (depth > MAX_CONFIG_DEPTH) throw new Error(`${short(at)}: the model nests more than ${MAX_CONFIG_DEPTH} levels deep (a damaged file?)`);
    if (!c || typeof c !== "object" || Array.isArray(c)) throw new Error(`${short(at)}: expected a module {type, args?, children?}, got ${describe(c)}`);
    const o = c as Record<string, unknown>;
    const extra = Object.keys(o).filter((k) => k !== "type" && k !== "args" && k !== "children");
    if (extra.length) throw new Error(`${short(at)}: unexpected field${extra.length > 1 ? "s" : ""} ${extra.slice(0, 4).map((k) => describe(k)).join(", ")} (a module has type, args and children)`);
    if (typeof o.type !== "string") throw new Error(`${short(at)}: the module type must be a string, got ${describe(o.type)}`);
    if (!registry.has(o.type)) throw new Error(`${short(at)}: unknown module type ${describe(o.type).replace(/^"|"$/g, "'")} (known: ${[...registry.keys()].sort().join(", ")})`);
    if (o.args !== undefined && !Array.isArray(o.args)) throw new Error(`${short(at)}: the args of ${o.type} must be a list, got ${describe(o.args)}`);
    if (o.children === undefined) continue;
    if (!Array.isArray(o.children)) throw new Error(`${short(at)}: the children of ${o.type} must be a list of [name, module], got ${describe(o.children)}`);
    const names = new Set<string>();
    o.children.forEach((e: unknown, i: number) => {
      if (!Array.isArray(e) || e.length !== 2) throw new Error(`${short(at)}: child ${i} of ${o.type} must be a pair [name, module], got ${describe(e)}`);
      const [n, child] = e;
      if (typeof n !== "string" || !n || n.includes(".")) throw new Error(`${short(at)}: child ${i} of ${o.type} has a bad name ${describe(n)} (a non-empty string without '.')`);
      if (names.has(n)) throw new Error(`${short(at)}: ${o.type} has two children named '${short(n)}'`);
      names.add(n);
      stack.push([child, childPath(at, n), depth + 1]);
    });
  }
}

/** Where a config names a module type that moduleFromConfig cannot build (a class of one's own
 *  that was not registered), as "path (Type)"; empty when all can be built. */
export function unbuildableTypes(cfg: ModuleConfig, where = ""): string[] {
  const out: string[] = [];
  const stack: [ModuleConfig, string][] = [[cfg, where]];
  while (stack.length) {
    const [c, at] = stack.pop()!;
    if (!registry.has(c.type)) out.push(`${at || "the model"} (${c.type})`);
    for (const [n, k] of [...(c.children ?? [])].reverse()) stack.push([k, at ? `${at}.${n}` : n]);
  }
  return out;
}

/** The weights a build is checked against (loadModel): the weight file's tensors by state-dict
 *  name, and the file's name for messages. */
export interface WeightsCheck {
  tensors: Map<string, { shape: readonly number[] }>;
  what: string;
}

class BuildError extends Error {}

/** Build a module from its config (as written by module.config()). With `weights`, the build is
 *  held to the weight file: each layer's tensors must have the file's shapes, and all the memory
 *  the build takes is charged against what the file holds (its tensors once, as much again for
 *  buffers a layer derives from its arguments, and 1 MiB), so a description that declares more
 *  than the weights (Linear(30000, 30000) beside a file of a few bytes) is refused before the
 *  allocation that would exceed it, naming the layer. */
export function moduleFromConfig(cfg: ModuleConfig, where = "config", weights?: WeightsCheck): Module {
  if (typeof where !== "string") badArgument("moduleFromConfig", "where (the name errors give the config)", "a string", where);
  checkConfig(cfg, where);
  const eng = weights ? engine() : null;
  const at: [string, ModuleConfig][] = [];
  if (eng) {
    let fileBytes = 0;
    for (const t of weights!.tensors.values()) fileBytes += sizeOf(t.shape) * 4;
    const budget = 2 * fileBytes + 2 ** 20;
    let used = 0;
    if (eng.allocGuard) throw new Error(`${where}: another checked build is in progress`);
    eng.allocGuard = (bytes, what) => {
      if (used + bytes <= budget) {
        used += bytes;
        return;
      }
      const [path, c] = at[at.length - 1] ?? ["", cfg];
      throw new BuildError(
        `${where}: layer '${short(path) || "(root)"}' (${c.type}${c.args?.length ? ` ${describe(c.args)}` : ""}) would allocate ${what} (${fmt(bytes)}), ` +
          `more than ${weights!.what} holds (${fmt(fileBytes)} in ${weights!.tensors.size} tensors): the model description does not match the weights`,
      );
    };
  }
  try {
    return build(cfg, where, "", at, weights);
  } finally {
    if (eng) eng.allocGuard = null;
  }
}

function build(cfg: ModuleConfig, where: string, path: string, at: [string, ModuleConfig][], weights?: WeightsCheck): Module {
  const kids: Module[] = [];
  const names = (cfg.children ?? []).map(([n]) => n);
  let m: Module;
  try {
    for (const [n, c] of cfg.children ?? []) kids.push(build(c, childPath(where, n), childPath(path, n), at, weights));
    at.push([path, cfg]);
    const made: Module[] = [];
    try {
      m = trackModules(made, () => registry.get(cfg.type)!(cfg.args ?? [], kids, names));
      if (!(m instanceof Module)) throw new Error(`the factory registered for ${cfg.type} returned ${describe(m)}, not a Module`);
    } catch (e) {
      // what the factory made before it failed (a constructor that threw halfway) is freed now
      for (const x of made) x.dispose();
      if (e instanceof BuildError) throw e;
      throw new Error(`${short(where)}: cannot build ${cfg.type}: ${(e as Error)?.message ?? String(e)}`);
    } finally {
      at.pop();
    }
  } catch (e) {
    for (const k of kids) k.dispose();
    throw e;
  }
  // a child the factory left out (ResidualBlock makes its own relu) would hold its memory
  const adopted = new Set(m.modules());
  for (const k of kids) if (!adopted.has(k)) k.dispose();
  if (weights) {
    // this layer's own tensors (those of its config children were checked with them)
    const children = new Set(names);
    for (const [n, t] of m.stateDict()) {
      const dot = n.indexOf(".");
      if (dot > 0 && children.has(n.slice(0, dot))) continue;
      const key = childPath(path, n), f = weights.tensors.get(key);
      if (f && !(sameShape(f.shape, t.shape) || (sizeOf(f.shape) === 1 && t.size === 1))) {
        m.dispose();
        throw new Error(`${short(where)}: ${cfg.type} declares '${short(key)}' as ${shapeStr(t.shape)} but ${weights.what} has it as ${shapeStr(f.shape)}`);
      }
    }
  }
  return m;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
