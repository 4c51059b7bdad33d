// Checkpoints: everything a run needs to continue as if it had never stopped, in one
// safetensors file: the model's state dict (model.*), the optimiser's tensors (optim.*), and in
// the metadata the epoch, the history, the optimiser's other state, and every random
// generator's state (default, per layer, the data loader's). Written atomically, with a checksum
// of every byte in the metadata (so that a damaged file is refused, not silently loaded).
import { Tensor, keep, tensor, shapeStr } from "../tensor.js";
import { parseSafetensors, serializeSafetensors } from "../io/safetensors.js";
import { Module } from "../nn/module.js";
import { Generator, defaultGenerator, type RngState } from "../random.js";
import { checkOptions, keysOf, badArgument } from "../options.js";

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

const PARTS = keysOf<CheckpointParts>({ model: true, optimizer: true, scheduler: true, loader: true, epoch: true, history: true, extra: true });
const RESTORE_PARTS = keysOf<RestoreParts>({ model: true, optimizer: true, scheduler: true, loader: true, expectExtra: true });

/** What unpackCheckpoint / loadCheckpoint restore into, and the run settings that must match. */
export type RestoreParts = Omit<CheckpointParts, "epoch" | "history" | "extra"> & { expectExtra?: Record<string, unknown> };

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

function unpack(v: any, tensors: Map<string, { shape: number[]; data: Float32Array }>, what: string, depth = 0): any {
  if (depth > 64) throw new Error(`${what}: the state in the metadata nests more than 64 levels deep`);
  if (Array.isArray(v)) return v.map((x) => unpack(x, tensors, what, depth + 1));
  if (v && typeof v === "object") {
    const ref = v.__tensor__ ?? v.__f32__;
    if (typeof ref === "string") {
      const t = tensors.get(ref);
      if (!t) throw new Error(`${what}: tensor '${ref}' is referenced by the state but not in the file`);
      return v.__tensor__ ? keep(tensor(t.data, t.shape)) : t.data;
    }
    if (typeof v.__num__ === "string") return Number(v.__num__);
    if (Array.isArray(v.__map__)) return new Map(v.__map__.map(([k, x]: [string, any]) => [k, unpack(x, tensors, what, depth + 1)]));
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unpack(x, tensors, what, depth + 1)]));
  }
  return v;
}

export function packCheckpoint(p: CheckpointParts): Uint8Array {
  if (p === null || typeof p !== "object" || !(p.model instanceof Module)) badArgument("packCheckpoint", "its argument", "an object { model: a Module, optimizer?, scheduler?, ... }", p);
  checkOptions("packCheckpoint", p, PARTS);
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
    checksum: UNSEALED,
  };
  return sealCheckpoint(serializeSafetensors(tensors, meta));
}

// ---- the checksum ----
// 64 bits (two 32-bit lanes, murmur3's mixing) over the whole file, with the checksum's own 16
// hex digits taken as zeros: any damage to the tensors or the metadata is detected (a false match
// is a chance of 2^-64), unlike a bit flip in a weight, which would otherwise load silently.

const UNSEALED = "0000000000000000";
const KEY = new TextEncoder().encode('"checksum":"');

function hashInto(h: Uint32Array, bytes: Uint8Array): void {
  let a = h[0], b = h[1];
  const words = bytes.byteLength >>> 2;
  const src = bytes.byteOffset % 4 ? new Uint8Array(bytes.subarray(0, words * 4)) : bytes;
  const w32 = new Uint32Array(src.buffer, src.byteOffset, words);
  for (let i = 0; i < words; i++) {
    let k = Math.imul(w32[i], 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    a ^= k;
    a = (Math.imul((a << 13) | (a >>> 19), 5) + 0xe6546b64) | 0;
    b = Math.imul(b ^ k ^ (k >>> 11), 0x85ebca6b);
    b = (b << 17) | (b >>> 15);
  }
  for (let i = words * 4; i < bytes.byteLength; i++) {
    a = Math.imul(a ^ bytes[i], 0x01000193);
    b = Math.imul(b + bytes[i] + 1, 0x2c1b3c6d);
  }
  const fin = (x: number) => {
    x ^= bytes.byteLength;
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
    return (x ^ (x >>> 16)) >>> 0;
  };
  h[0] = fin(a);
  h[1] = fin(b ^ h[0]);
}

/** Where the checksum's 16 hex digits sit in the header (the only '"checksum":"' in it), or -1. */
function checksumAt(bytes: Uint8Array, headerEnd: number): number {
  let at = -1;
  outer: for (let i = 8; i + KEY.length + 17 <= headerEnd; i++) {
    for (let j = 0; j < KEY.length; j++) if (bytes[i + j] !== KEY[j]) continue outer;
    if (at >= 0) return -2; // twice: not a file this writer made
    at = i + KEY.length;
  }
  return at;
}

function digest(bytes: Uint8Array, headerEnd: number, at: number): string {
  const header = new Uint8Array(bytes.subarray(0, headerEnd));
  header.fill(0x30, at, at + 16);
  const h = new Uint32Array([0x9747b28c, 0x5bd1e995]);
  hashInto(h, header);
  hashInto(h, bytes.subarray(headerEnd));
  return h[0].toString(16).padStart(8, "0") + h[1].toString(16).padStart(8, "0");
}

function headerEndOf(bytes: Uint8Array, what: string): number {
  if (!(bytes instanceof Uint8Array)) badArgument(what, "the bytes", "a Uint8Array", bytes);
  if (bytes.byteLength < 8) throw new Error(`${what}: too short (${bytes.byteLength} bytes) to be a checkpoint`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n > bytes.byteLength - 8) throw new Error(`${what}: bad header: length ${n} is past the end of the file (${bytes.byteLength} bytes)`);
  return 8 + n;
}

/** Writes the checksum of a checkpoint into its metadata (in place; returns the bytes).
 *  packCheckpoint does this; call it yourself only after editing a checkpoint's metadata on
 *  purpose (the edit is then trusted; unpackCheckpoint still checks every value). */
export function sealCheckpoint(bytes: Uint8Array, what = "checkpoint"): Uint8Array {
  const end = headerEndOf(bytes, what);
  const at = checksumAt(bytes, end);
  if (at < 0) throw new Error(`${what}: no single checksum field in the metadata to seal (write it as "checksum": "${UNSEALED}")`);
  const hex = digest(bytes, end, at);
  for (let i = 0; i < 16; i++) bytes[at + i] = hex.charCodeAt(i);
  return bytes;
}

/** Throws unless the checkpoint's checksum matches its bytes: checked on the raw bytes, before
 *  anything in them is parsed. Returns the checksum. */
function verifyChecksum(bytes: Uint8Array, what: string): string {
  const end = headerEndOf(bytes, what);
  const at = checksumAt(bytes, end);
  if (at < 0) {
    // say what the file is, if it is something else
    let format: unknown;
    try {
      format = JSON.parse(new TextDecoder().decode(bytes.subarray(8, end))).__metadata__?.format;
    } catch {}
    if (at === -1 && format !== undefined && format !== CHECKPOINT_FORMAT) throw new Error(`${what}: not a checkpoint (metadata format is ${JSON.stringify(format)?.slice(0, 60)})`);
    throw new Error(
      at === -2 ? `${what}: two checksum fields in the header: the file is damaged` : `${what}: the metadata has no checksum: damaged, or written by an older simdnet (which did not check its checkpoints)`,
    );
  }
  const saved = new TextDecoder().decode(bytes.subarray(at, at + 16));
  if (!/^[0-9a-f]{16}$/.test(saved) || bytes[at + 16] !== 0x22) throw new Error(`${what}: the checksum field is damaged (${JSON.stringify(saved)})`);
  const want = digest(bytes, end, at);
  if (want !== saved) throw new Error(`${what}: checksum mismatch (the file says ${saved}, its bytes give ${want}): the file is damaged (a bad disk, a partial copy, an edit); nothing was restored`);
  return saved;
}

/** A deep copy of a state object (tensors and arrays copied), to put back if a restore fails. */
function copyOf(state: unknown, what: string): () => any {
  const tensors: Tensors = new Map();
  const packed = pack(state, "undo", tensors);
  return () => unpack(packed, tensors as Map<string, { shape: number[]; data: Float32Array }>, what);
}

function parseMeta(m: Record<string, string>, key: string, what: string, fallback: string): any {
  try {
    return JSON.parse(m[key] ?? fallback);
  } catch (e) {
    throw new Error(`${what}: the checkpoint's '${key}' metadata is not valid JSON (${(e as Error).message})`);
  }
}

function checkRngState(s: unknown, whose: string, what: string): void {
  try {
    new Generator(0).setState(s as RngState);
  } catch (e) {
    throw new Error(`${what}: bad random generator state for ${whose}: ${JSON.stringify(s ?? null)?.slice(0, 120)} (${(e as Error).message})`);
  }
}

/** The checks every reader of a checkpoint makes first (its bytes, checksum, format, epoch and
 *  history), and what they read. */
function readHeader(bytes: Uint8Array, what: string) {
  if (!(bytes instanceof Uint8Array)) throw new Error(`${what}: expected the checkpoint's bytes (a Uint8Array), got ${bytes === null ? "null" : typeof bytes}`);
  const sum = verifyChecksum(bytes, what);
  const file = parseSafetensors(bytes, what);
  const m = file.metadata;
  if (!m || typeof m !== "object" || Array.isArray(m)) throw new Error(`${what}: not a checkpoint (no metadata)`);
  if (m.format !== CHECKPOINT_FORMAT) throw new Error(`${what}: not a checkpoint (metadata format is ${JSON.stringify(m.format)?.slice(0, 60)})`);
  if (m.checksum !== sum) throw new Error(`${what}: the checksum in the metadata is not the one in the header's text (an edited file)`);
  for (const [k, v] of Object.entries(m)) if (typeof v !== "string") throw new Error(`${what}: metadata '${k}' must be a string, got ${typeof v}`);
  if (!/^(0|[1-9]\d{0,14})$/.test(m.epoch ?? "")) throw new Error(`${what}: bad epoch ${JSON.stringify(m.epoch ?? null)} in the metadata`);
  const history = unpack(parseMeta(m, "history", what, "[]"), file.tensors, what);
  if (!Array.isArray(history)) throw new Error(`${what}: the history in the metadata is not a list`);
  return { file, m, epoch: Number(m.epoch), history, extra: parseMeta(m, "extra", what, "{}") };
}

/** Restore a checkpoint into the given (freshly built) model, optimiser, schedule and loader.
 *  All or nothing: the file is checked against everything given (model tensor names and shapes,
 *  the generators, the optimiser's and the schedule's state) before any of them changes, and a
 *  restore that fails leaves every one as it was. State in the file needs something to restore it
 *  into, and what is given needs its state in the file (a schedule restarted at epoch 0 in the
 *  middle of a run would go unnoticed); only the loader's generator state may be left unused.
 *  Returns the epochs completed, the history and the extra data. */
export function unpackCheckpoint(bytes: Uint8Array, p: RestoreParts, what = "checkpoint") {
  checkOptions("unpackCheckpoint", p, RESTORE_PARTS);
  const { file, m, epoch, history, extra } = readHeader(bytes, what);
  // settings of the run that must not change on resume (fit's schedulerStep), checked first;
  // a file from before a setting was recorded is taken as it is
  for (const [k, v] of Object.entries(p.expectExtra ?? {}))
    if (extra && k in extra && JSON.stringify(extra[k] ?? null) !== JSON.stringify(v ?? null))
      throw new Error(`${what}: the run was saved with ${k} ${JSON.stringify(extra?.[k] ?? null)}, this one has ${JSON.stringify(v ?? null)}; resume it with the same setting`);

  // the model: the same tensor names and shapes (Module.loadStateDict's rules, checked here so
  // that nothing is written before the optimiser's state has been checked too)
  const modelSd = new Map([...file.tensors].filter(([n]) => n.startsWith("model.")).map(([n, t]) => [n.slice(6), t]));
  const own = p.model.stateDict();
  const missing = [...own.keys()].filter((k) => !modelSd.has(k));
  const unexpected = [...modelSd.keys()].filter((k) => !own.has(k));
  if (missing.length || unexpected.length) {
    const list = (ns: string[]) => ns.slice(0, 8).map((n) => `'${n}'`).join(", ") + (ns.length > 8 ? ` and ${ns.length - 8} more` : "");
    const parts = [missing.length ? `missing ${list(missing)}` : "", unexpected.length ? `unexpected ${list(unexpected)}` : ""].filter(Boolean);
    throw new Error(`${what}: the model's tensors do not match the checkpoint's (${p.model.type}): ${parts.join("; ")}`);
  }
  for (const [k, t] of own) {
    const v = modelSd.get(k)!;
    const same = v.shape.length === t.shape.length && v.shape.every((d, i) => d === t.shape[i]);
    // a 0-d scalar and a 1-element vector are the same buffer (num_batches_tracked)
    if (!same && !(t.size === 1 && v.data.length === 1))
      throw new Error(`${what}: '${k}' has shape ${shapeStr(v.shape)} in the state dict but ${shapeStr(t.shape)} in the model`);
  }

  // the generators: the default one, one per layer that has one (dropout), the loader's
  const rng = parseMeta(m, "rng", what, "null");
  if (!rng || typeof rng !== "object") throw new Error(`${what}: no random generator states in the metadata`);
  checkRngState(rng.default, "the default generator", what);
  const withRng = p.model.namedModules().filter(([, mod]) => mod.rng);
  const saved = rng.modules && typeof rng.modules === "object" ? rng.modules : {};
  for (const [n, mod] of withRng) {
    if (!(n in saved)) throw new Error(`${what}: no generator state for layer '${n || "(root)"}' (${mod.type}): the checkpoint was saved from a model without it`);
    checkRngState(saved[n], `layer '${n || "(root)"}'`, what);
  }
  const extraRng = Object.keys(saved).filter((n) => !withRng.some(([k]) => k === n));
  if (extraRng.length) throw new Error(`${what}: generator states for layers that have no generator in this model: ${extraRng.map((n) => `'${n}'`).join(", ")}`);
  const loaderState = rng.loader ?? null;
  if (p.loader && loaderState === null) throw new Error(`${what}: a loader was given but the checkpoint has no loader state (saved without one)`);
  if (p.loader) checkRngState(loaderState, "the data loader", what);

  // the optimiser and the schedule: their own loadStateDict() checks their state, so they are
  // restored first, and put back as they were if either refuses
  const optim = parseMeta(m, "optimizer", what, "null");
  const sched = parseMeta(m, "scheduler", what, "null");
  if (optim !== null && !p.optimizer?.loadStateDict) throw new Error(`${what}: the checkpoint has optimiser state but no optimiser with loadStateDict() was given`);
  if (optim === null && p.optimizer?.loadStateDict) throw new Error(`${what}: an optimiser was given but the checkpoint has no optimiser state (saved without one)`);
  if (sched !== null && !p.scheduler?.loadStateDict) throw new Error(`${what}: the checkpoint has scheduler state but no scheduler with loadStateDict() was given`);
  if (sched === null && p.scheduler?.loadStateDict) throw new Error(`${what}: a scheduler was given but the checkpoint has no scheduler state (saved without one)`);
  const undo: (() => void)[] = [];
  const restore = (part: Stateful, state: any, name: string) => {
    if (part.stateDict) {
      const before = copyOf(part.stateDict(), what);
      undo.push(() => part.loadStateDict!(before()));
    }
    const value = unpack(state, file.tensors, what); // its errors name the file already
    try {
      part.loadStateDict!(value);
    } catch (e) {
      throw new Error(`${what}: the ${name} state in the checkpoint does not fit the ${name} given: ${(e as Error).message}`);
    }
  };
  try {
    if (optim !== null) restore(p.optimizer!, optim, "optimiser");
    if (sched !== null) restore(p.scheduler!, sched, "scheduler");
  } catch (e) {
    try {
      for (const u of undo.reverse()) u();
    } catch (e2) {
      throw new Error(`${(e as Error).message}; putting the previous state back failed too: ${(e2 as Error).message}`);
    }
    throw e;
  }

  // checked above: these cannot fail
  p.model.loadStateDict(modelSd);
  defaultGenerator.setState(rng.default);
  p.model.setRngStates(saved);
  if (p.loader) p.loader.setState(loaderState);
  return { epoch, history, extra };
}

/** What a checkpoint says about its run without restoring anything: the epochs completed, the
 *  history so far and the `checkpointInfo` that fit() stored (null if none). The file is checked
 *  as unpackCheckpoint checks it (format and checksum), so damage is an error here too. */
export function readCheckpointInfo(bytes: Uint8Array, what = "checkpoint"): { epoch: number; history: unknown[]; info: Record<string, unknown> | null } {
  const { epoch, history, extra } = readHeader(bytes, what);
  const info = extra && typeof extra === "object" && !Array.isArray(extra) ? (extra as any).info ?? null : null;
  if (info !== null && (typeof info !== "object" || Array.isArray(info))) throw new Error(`${what}: the run information in the metadata is not an object`);
  return { epoch, history, info };
}

/** Node: write a checkpoint file atomically (a crash mid-write leaves the previous one). */
export async function saveCheckpoint(path: string, p: CheckpointParts): Promise<void> {
  checkOptions("saveCheckpoint", p, PARTS);
  const { writeFileAtomic } = await import("./files.js");
  await writeFileAtomic(path, packCheckpoint(p));
}

/** Node: read a checkpoint file and restore it (see unpackCheckpoint). */
export async function loadCheckpoint(path: string, p: RestoreParts) {
  if (typeof path !== "string") badArgument("loadCheckpoint", "the path", "a string", path);
  checkOptions("loadCheckpoint", p, RESTORE_PARTS);
  const { readFileBytes } = await import("./files.js");
  return unpackCheckpoint(await readFileBytes(path), p, path);
}
