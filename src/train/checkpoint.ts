// Checkpoints: everything a run needs to continue as if it had never stopped, in one
// safetensors file: the model's state dict (model.*), the optimiser's tensors (optim.*), and in
// the metadata the epoch, the history, the optimiser's other state, and every random
// generator's state (default, per layer, the data loader's). Written atomically.
import { Tensor, keep, tensor } from "../tensor.js";
import { parseSafetensors, serializeSafetensors } from "../io/safetensors.js";
import { Module } from "../nn/module.js";
import { defaultGenerator, type RngState } from "../random.js";

export const CHECKPOINT_FORMAT = "simdnet-checkpoint";

/** What fit() and a hand-written loop need from an optimiser (torch.optim's shape). */
export interface Optimizer {
  step(): void;
  /** setToNone: drop the gradients instead of zeroing them (fit() asks for that) */
  zeroGrad(setToNone?: boolean): void;
  stateDict?(): unknown;
  loadStateDict?(state: any): void;
}

/** Anything with state to save (an LR schedule). */
export interface Stateful {
  stateDict?(): unknown;
  loadStateDict?(state: any): void;
}

export interface CheckpointParts {
  model: Module;
  optimizer?: Optimizer | null;
  scheduler?: Stateful | null;
  /** the data loader's generator (or anything with getState/setState) */
  loader?: { getState(): RngState; setState(s: RngState): void } | null;
  /** epochs completed */
  epoch: number;
  history?: unknown[];
  extra?: Record<string, unknown>;
}

type Tensors = Map<string, { shape: readonly number[]; data: Float32Array }>;

/** Plain JSON for any state object, tensors moved into `tensors` under `path`. */
function pack(v: unknown, path: string, tensors: Tensors): unknown {
  if (v instanceof Tensor) {
    tensors.set(path, { shape: v.shape, data: v.toArray() });
    return { __tensor__: path };
  }
  if (v instanceof Float32Array) {
    tensors.set(path, { shape: [v.length], data: v.slice() });
    return { __f32__: path };
  }
  if (typeof v === "number" && !Number.isFinite(v)) return { __num__: String(v) };
  if (Array.isArray(v)) return v.map((x, i) => pack(x, `${path}.${i}`, tensors));
  if (v instanceof Map) return { __map__: [...v].map(([k, x]) => [k, pack(x, `${path}.${k}`, tensors)]) };
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, pack(x, `${path}.${k}`, tensors)]));
  return v;
}

function unpack(v: any, tensors: Map<string, { shape: number[]; data: Float32Array }>, what: string): any {
  if (Array.isArray(v)) return v.map((x) => unpack(x, tensors, what));
  if (v && typeof v === "object") {
    const ref = v.__tensor__ ?? v.__f32__;
    if (typeof ref === "string") {
      const t = tensors.get(ref);
      if (!t) throw new Error(`${what}: tensor '${ref}' is referenced by the state but not in the file`);
      return v.__tensor__ ? keep(tensor(t.data, t.shape)) : t.data;
    }
    if (typeof v.__num__ === "string") return Number(v.__num__);
    if (Array.isArray(v.__map__)) return new Map(v.__map__.map(([k, x]: [string, any]) => [k, unpack(x, tensors, what)]));
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unpack(x, tensors, what)]));
  }
  return v;
}

export function packCheckpoint(p: CheckpointParts): Uint8Array {
  const tensors: Tensors = new Map();
  for (const [n, t] of p.model.stateDict()) tensors.set(`model.${n}`, { shape: t.shape, data: t.toArray() });
  const optim = p.optimizer?.stateDict ? pack(p.optimizer.stateDict(), "optim", tensors) : null;
  const sched = p.scheduler?.stateDict ? pack(p.scheduler.stateDict(), "sched", tensors) : null;
  const meta = {
    format: CHECKPOINT_FORMAT,
    epoch: String(p.epoch),
    model: JSON.stringify(p.model.config()),
    optimizer: JSON.stringify(optim),
    scheduler: JSON.stringify(sched),
    rng: JSON.stringify({ default: defaultGenerator.getState(), modules: p.model.rngStates(), loader: p.loader?.getState() ?? null }),
    history: JSON.stringify(pack(p.history ?? [], "history", tensors)),
    extra: JSON.stringify(p.extra ?? {}),
  };
  return serializeSafetensors(tensors, meta);
}

/** Restore a checkpoint into the given (freshly built) model, optimiser, schedule and loader.
 *  Returns the epochs completed, the history and the extra data. */
export function unpackCheckpoint(bytes: Uint8Array, p: Omit<CheckpointParts, "epoch" | "history" | "extra">, what = "checkpoint") {
  const file = parseSafetensors(bytes, what);
  const m = file.metadata;
  if (m.format !== CHECKPOINT_FORMAT) throw new Error(`${what}: not a checkpoint (metadata format is ${JSON.stringify(m.format)})`);
  const modelSd = new Map([...file.tensors].filter(([n]) => n.startsWith("model.")).map(([n, t]) => [n.slice(6), t]));
  try {
    p.model.loadStateDict(modelSd);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
  const optim = JSON.parse(m.optimizer ?? "null");
  if (optim !== null) {
    if (!p.optimizer?.loadStateDict) throw new Error(`${what}: the checkpoint has optimiser state but no optimiser with loadStateDict() was given`);
    p.optimizer.loadStateDict(unpack(optim, file.tensors, what));
  }
  const sched = JSON.parse(m.scheduler ?? "null");
  if (sched !== null && p.scheduler?.loadStateDict) p.scheduler.loadStateDict(unpack(sched, file.tensors, what));
  const rng = JSON.parse(m.rng);
  defaultGenerator.setState(rng.default);
  p.model.setRngStates(rng.modules);
  if (rng.loader && p.loader) p.loader.setState(rng.loader);
  return { epoch: Number(m.epoch), history: unpack(JSON.parse(m.history ?? "[]"), file.tensors, what) as any[], extra: JSON.parse(m.extra ?? "{}") };
}

/** Node: write a checkpoint file atomically (a crash mid-write leaves the previous one). */
export async function saveCheckpoint(path: string, p: CheckpointParts): Promise<void> {
  const { writeFileAtomic } = await import("./files.js");
  await writeFileAtomic(path, packCheckpoint(p));
}

/** Node: read a checkpoint file and restore it (see unpackCheckpoint). */
export async function loadCheckpoint(path: string, p: Omit<CheckpointParts, "epoch" | "history" | "extra">) {
  const { readFileBytes } = await import("./files.js");
  return unpackCheckpoint(await readFileBytes(path), p, path);
}
