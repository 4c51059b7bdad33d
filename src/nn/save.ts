// Model weights as safetensors with PyTorch state-dict names (load them with
// safetensors.torch.load_file + load_state_dict), and the architecture as JSON.
import { parseSafetensors, serializeSafetensors } from "../io/safetensors.js";
import { Module, type ModuleConfig } from "./module.js";
import { moduleFromConfig, unbuildableTypes } from "./config.js";
import { checkOptions } from "../options.js";
import { nodeFs, nodePath } from "../platform/index.js";

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
  const sd = new Map([...model.stateDict()].map(([n, t]) => [n, { shape: t.shape, data: t.toArray() }]));
  return serializeSafetensors(sd, { format: "pt", ...metadata });
}

/** Load safetensors bytes into a model. Errors name the file and the tensor (missing,
 *  unexpected, wrong shape) or the header problem. */
export function loadWeights(model: Module, bytes: Uint8Array, opts: { strict?: boolean; what?: string } = {}) {
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
  return { format: MODEL_FORMAT, version: 1, model: model.config(), ...(meta ? { meta } : {}) };
}

/** Build a model from the JSON written by saveModel / modelConfig. */
export function modelFromConfig(json: string | ModelFile, what = "model config"): Module {
  let cfg: ModelFile;
  try {
    cfg = typeof json === "string" ? JSON.parse(json) : json;
  } catch (e) {
    throw new Error(`${what}: not JSON (${(e as Error).message})`);
  }
  if (!cfg || cfg.format !== MODEL_FORMAT) throw new Error(`${what}: not a ${MODEL_FORMAT} file (format is ${JSON.stringify(cfg?.format)})`);
  return moduleFromConfig(cfg.model, what);
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

/** Node: rebuild a model saved by saveModel (from the folder, or the .json / .safetensors path). */
export async function loadModel(path: string): Promise<{ model: Module; meta: Record<string, unknown> }> {
  const fs = await nodeFs();
  const { join } = await nodePath();
  let base = path.replace(/\.(json|safetensors)$/, "");
  if (fs.existsSync(path) && fs.statSync(path).isDirectory()) base = join(path, "model");
  const cfgPath = `${base}.json`, wPath = `${base}.safetensors`;
  for (const p of [cfgPath, wPath]) if (!fs.existsSync(p)) throw new Error(`loadModel: ${p} not found`);
  const text = fs.readFileSync(cfgPath, "utf8");
  const model = modelFromConfig(text, cfgPath); // a damaged file: an error naming it
  try {
    loadWeights(model, new Uint8Array(fs.readFileSync(wPath)), { what: wPath });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, meta: (JSON.parse(text) as ModelFile).meta ?? {} };
}
