// Model weights as safetensors with PyTorch state-dict names (load them with
// safetensors.torch.load_file + load_state_dict), and the architecture as JSON.
import { parseSafetensors, serializeSafetensors } from "../io/safetensors.js";
import { Module, type ModuleConfig } from "./module.js";
import { moduleFromConfig, unbuildableTypes, checkConfig } from "./config.js";
import { checkOptions, badArgument } from "../options.js";
import { nodeFs, nodePath } from "../platform/index.js";
import { describe } from "./shapes.js";

export const MODEL_FORMAT = "simdnet-model";

export interface ModelFile {
  format: typeof MODEL_FORMAT;
  version: 1;
  model: ModuleConfig;
  /** anything else worth keeping: the zoo name and options, normalisation, class names */
  meta?: Record<string, unknown>;
}

/** The state dict as safetensors bytes (float32; num_batches_tracked too). */
export function weightsToSafetensors(model: Module, metadata: Record<string, string> = {}): Uint8Array {
  if (!(model instanceof Module)) badArgument("weightsToSafetensors", "the model", "a Module", model);
  const sd = new Map([...model.stateDict()].map(([n, t]) => [n, { shape: t.shape, data: t.toArray() }]));
  return serializeSafetensors(sd, { format: "pt", ...metadata });
}

/** Load safetensors bytes into a model. Errors name the file and the tensor (missing,
 *  unexpected, wrong shape) or the header problem. */
export function loadWeights(model: Module, bytes: Uint8Array, opts: { strict?: boolean; what?: string } = {}) {
  if (!(model instanceof Module)) badArgument("loadWeights", "the model", "a Module", model);
  if (!(bytes instanceof Uint8Array)) badArgument("loadWeights", "the file", "a Uint8Array of safetensors bytes", bytes);
  checkOptions("loadWeights", opts, ["strict", "what"]);
  const { strict = true, what = "weights" } = opts;
  const file = parseSafetensors(bytes, what);
  try {
    return model.loadStateDict(file.tensors, { strict });
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
}

export function modelConfig(model: Module, meta?: Record<string, unknown>): ModelFile {
  if (!(model instanceof Module)) badArgument("modelConfig", "the model", "a Module", model);
  return { format: MODEL_FORMAT, version: 1, model: model.config(), ...(meta ? { meta } : {}) };
}

/** Parses and checks the JSON written by saveModel / modelConfig: the format, the version, the
 *  model's structure (every field's type, unique child names, bounded nesting) and meta. */
export function parseModelFile(json: string | ModelFile, what = "model config"): ModelFile {
  let cfg: unknown;
  try {
    cfg = typeof json === "string" ? JSON.parse(json) : json;
  } catch (e) {
    throw new Error(`${what}: not JSON (${(e as Error).message})`);
  }
  const f = cfg as Partial<ModelFile> | null;
  if (!f || typeof f !== "object" || Array.isArray(f)) throw new Error(`${what}: not a ${MODEL_FORMAT} file (it holds ${describe(f)}, not an object)`);
  if (f.format !== MODEL_FORMAT) throw new Error(`${what}: not a ${MODEL_FORMAT} file (format is ${describe(f.format)})`);
  if (f.version !== 1) throw new Error(`${what}: ${f.version === undefined ? "no version" : `version ${describe(f.version)}`} (this simdnet reads version 1)`);
  if (f.meta !== undefined && (!f.meta || typeof f.meta !== "object" || Array.isArray(f.meta))) throw new Error(`${what}: meta must be an object, got ${describe(f.meta)}`);
  if (f.model === undefined) throw new Error(`${what}: no model in the file`);
  checkConfig(f.model, what);
  return f as ModelFile;
}

/** Build a model from the JSON written by saveModel / modelConfig (fresh weights). */
export function modelFromConfig(json: string | ModelFile, what = "model config"): Module {
  return moduleFromConfig(parseModelFile(json, what).model, what);
}

/** A model from the bytes of its two files (what saveModel writes), built and loaded with the
 *  description held to the weights: each layer's tensors must have the weight file's shapes, and
 *  the build may take no more memory than the weights justify, so a damaged or hostile
 *  description fails (naming the file, the layer and the shapes) before it allocates more. */
export function modelFromBytes(config: string | Uint8Array, weights: Uint8Array, opts: { configName?: string; weightsName?: string } = {}): { model: Module; meta: Record<string, unknown> } {
  checkOptions("modelFromBytes", opts, ["configName", "weightsName"]);
  const { configName = "model.json", weightsName = "model.safetensors" } = opts;
  if (typeof config !== "string" && !(config instanceof Uint8Array)) badArgument("modelFromBytes", "the config", "model.json as a string or a Uint8Array", config);
  const file = parseModelFile(typeof config === "string" ? config : new TextDecoder().decode(config), configName);
  const w = parseSafetensors(weights, weightsName);
  const model = moduleFromConfig(file.model, configName, { tensors: w.tensors, what: weightsName });
  try {
    model.loadStateDict(w.tensors, { strict: true });
  } catch (e) {
    model.dispose();
    throw new Error(`${weightsName}: ${(e as Error).message} (the model as ${configName} describes it)`);
  }
  return { model, meta: file.meta ?? {} };
}

/** Node: write <dir>/<name>.safetensors and <dir>/<name>.json (each atomically). */
export async function saveModel(model: Module, dir: string, opts: { name?: string; meta?: Record<string, unknown> } = {}): Promise<{ weights: string; config: string }> {
  checkOptions("saveModel", opts, ["name", "meta"]);
  const { name = "model", meta } = opts;
  const { join } = await nodePath();
  const { writeFileAtomic } = await import("../train/files.js");
  const weights = join(dir, `${name}.safetensors`), config = join(dir, `${name}.json`);
  // a JSON that loadModel could not rebuild is refused before anything is written
  const cfg = modelConfig(model, meta);
  const custom = unbuildableTypes(cfg.model);
  if (custom.length)
    throw new Error(
      `saveModel: ${custom.join(", ")} ${custom.length > 1 ? "are classes" : "is a class"} of your own, which loadModel could not rebuild from ${name}.json: ` +
        `register ${custom.length > 1 ? "them" : "it"} with nn.registerModuleType(type, (args, children, names) => module), or save the weights alone (weightsToSafetensors) and build the model in code`,
    );
  await writeFileAtomic(weights, weightsToSafetensors(model));
  await writeFileAtomic(config, JSON.stringify(cfg, null, 1) + "\n");
  return { weights, config };
}

/** Node: rebuild a model saved by saveModel: from its folder (model.json and
 *  model.safetensors), from either file's path, or from the path without the extension. */
export async function loadModel(path: string): Promise<{ model: Module; meta: Record<string, unknown> }> {
  const fs = await nodeFs();
  const { join, dirname, basename } = await nodePath();
  if (typeof path !== "string" || !path) throw new Error(`loadModel: expected the path of a model folder or file, got ${describe(path)}`);
  const isDir = (p: string) => fs.existsSync(p) && fs.statSync(p).isDirectory();
  let base: string;
  if (isDir(path)) base = join(path, "model");
  else {
    base = path.replace(/\.(json|safetensors)$/, "");
    if (!fs.existsSync(`${base}.json`) && !fs.existsSync(`${base}.safetensors`)) {
      const dir = dirname(base);
      throw new Error(
        isDir(dir) && !/[\\/]$/.test(path)
          ? `loadModel: ${path}: no such folder, and no ${basename(base)}.json or ${basename(base)}.safetensors in ${dir}`
          : `loadModel: ${path}: no such folder or file (give the folder saveModel wrote, with model.json and model.safetensors, or either file's path)`,
      );
    }
  }
  const cfgPath = `${base}.json`, wPath = `${base}.safetensors`;
  const missing = [cfgPath, wPath].filter((p) => !fs.existsSync(p));
  if (missing.length) {
    const dir = dirname(base);
    const present = fs.readdirSync(dir).filter((f) => /\.(json|safetensors)$/.test(f)).sort();
    throw new Error(
      `loadModel: ${dir} has no ${missing.map((p) => basename(p)).join(" and no ")} (saveModel writes both files; ` +
        `${present.length ? `the folder has ${present.slice(0, 8).join(", ")}${present.length > 8 ? ", ..." : ""}` : "the folder has no .json or .safetensors file"})`,
    );
  }
  return modelFromBytes(fs.readFileSync(cfgPath, "utf8"), new Uint8Array(fs.readFileSync(wPath)), { configName: cfgPath, weightsName: wPath });
}
