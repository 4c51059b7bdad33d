// The optimisers' updates on the GPU (wgsl/optim.wgsl): the same arguments as the wasm kernels
// of assembly/optim.ts, pointers as element offsets. src/optim/*.ts calls gpuOptimStep for
// parameters that live on webgpu, inside Optimizer.step(), which brackets the step with
// gpuOptimBegin/gpuOptimEnd: the updates of all parameters then go out as one dispatch per kind
// (a table of per-parameter arguments, one row each) instead of one dispatch per parameter.
import code from "../../wgsl/optim.wgsl";
import { Tensor, empty, keep, setValues } from "../tensor.js";
import { wgslFile, type GpuEngine } from "./engine.js";

type Kind = "sgd" | "rmsprop" | "adam";
const K = wgslFile("optim.wgsl", code, ["sgd", "rmsprop", "adam"] as const);
/** floats per table row: the row's first workgroup and 16 arguments, two floats each */
const ROW = 34;
const e = (t: Tensor | undefined | null) => (t ? t.ptr >>> 2 : 0);

interface Row {
  eng: GpuEngine;
  kind: Kind;
  /** u32 arguments before the floats, the floats, u32 arguments after them */
  head: number[];
  nums: number[];
  tail: number[];
  n: number;
}

let batch: Row[] | null = null;
/** per engine: argument tables and the submit count when each was last dispatched */
const tables = new WeakMap<GpuEngine, { t: Tensor; usedAt: number }[]>();

/** The update of a parameter on the GPU; args as the wasm kernel f32_<kind>_step (p, g, buffers
 *  as tensors or null, then n and the numbers). Queued with the step's others when inside
 *  gpuOptimBegin/End, else dispatched at once. */
export function gpuOptimStep(kind: Kind, p: Tensor, g: Tensor, bufs: (Tensor | null | undefined)[], nums: number[], ints: number[]): void {
  const row: Row = { eng: p.engine as any as GpuEngine, kind, head: [e(p), e(g), ...bufs.map(e), p.size], nums, tail: ints, n: p.size };
  if (batch) batch.push(row);
  else dispatchRows([row]);
}

export function gpuOptimBegin(): void {
  batch = [];
}

/** Dispatches the step's queued updates: one dispatch per engine and kind. */
export function gpuOptimEnd(): void {
  const rows = batch ?? [];
  batch = null;
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const key = r.kind;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(r);
  }
  for (const same of groups.values()) {
    const byEngine = new Map<GpuEngine, Row[]>();
    for (const r of same) byEngine.set(r.eng, [...(byEngine.get(r.eng) ?? []), r]);
    for (const list of byEngine.values()) dispatchRows(list);
  }
}

/** A u32 as two floats of 16 bits each (exact in f32, unlike its bit pattern). */
function putU32(t: Float32Array, at: number, v: number): void {
  t[at] = Math.floor(v / 65536);
  t[at + 1] = v % 65536;
}

function dispatchRows(rows: Row[]): void {
  const eng = rows[0].eng;
  const table = new Float32Array(rows.length * ROW);
  let first = 0;
  rows.forEach((r, i) => {
    const o = i * ROW;
    putU32(table, o, first);
    let k = 0;
    for (const v of r.head) putU32(table, o + 2 + 2 * k++, v);
    for (const v of r.nums) table[o + 2 + 2 * k++] = v;
    for (const v of r.tail) putU32(table, o + 2 + 2 * k++, v);
    first += Math.ceil(r.n / 256);
  });
  // the table lives in the arena, in one of a few slots per engine: a slot is written (at once,
  // not at the next submit) only when the dispatch that last read it has been submitted, so
  // writing it neither forces a submit nor changes what a pending dispatch reads
  const slots = tables.get(eng) ?? [];
  tables.set(eng, slots);
  let slot = slots.find((s) => s.usedAt < eng.stats.submits && s.t.size >= table.length);
  if (slot) eng.writeUnpending(slot.t.ptr, table);
  else {
    // new memory may be a freed tensor's that a pending dispatch still reads: an ordered write
    slot = { t: keep(empty([Math.max(table.length, 64 * ROW)], eng as any)), usedAt: -1 };
    slots.push(slot);
    eng.write(slot.t.ptr, table);
  }
  eng.dispatch(K[rows[0].kind], [e(slot.t), rows.length], first);
  slot.usedAt = eng.stats.submits;
}
