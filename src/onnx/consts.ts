// Constants of an ONNX graph: initializers that are not weights, Constant nodes, and the shape
// arithmetic torch exports (Shape, Gather, Slice, Unsqueeze, Concat, Cast, ...). They are small
// arrays computed in plain JS, never tensors: constant-only subgraphs are folded once at load,
// and arithmetic on a tensor's shape is computed from the shape alone at each forward (it costs
// microseconds and lets the batch size differ from the exported one).
import { OnnxError } from "./proto_read.js";

export class Const {
  constructor(
    readonly dims: number[],
    /** integers (shapes, indices, booleans as 0/1) or float32 values */
    readonly data: number[] | Float32Array,
    readonly isFloat: boolean,
  ) {}

  get size(): number {
    return this.data.length;
  }

  /** The values as a list of integers (for attributes such as pads, axes, shapes). INT64 values
   *  past 2^53 were read as +-Infinity: only Slice's starts and ends (where torch writes INT64_MAX
   *  for "to the end") take them (infinite = true); anywhere else they are an error. */
  ints(what: string, infinite = false): number[] {
    const out = Array.from(this.data);
    if (out.some((v) => !Number.isInteger(v) && !(infinite && Math.abs(v) === Infinity)))
      throw new OnnxError(`${what} must be integers${infinite ? "" : " within 2^53"}, got [${out.join(", ")}]`);
    return out;
  }

  scalar(what: string): number {
    if (this.size !== 1) throw new OnnxError(`${what} must hold one value, got ${this.size} (shape [${this.dims.join(", ")}])`);
    return this.data[0];
  }
}

export const constOf = (dims: number[], data: number[] | Float32Array, isFloat: boolean) =>
  new Const(dims, isFloat ? Float32Array.from(data) : Array.from(data), isFloat);

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Row-major strides. */
function stridesOf(dims: readonly number[]): number[] {
  const s = new Array(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

/** Calls fn(flatIndex, position) for every position of `dims`, in row-major order. */
function forEachIndex(dims: readonly number[], fn: (pos: number[]) => void): void {
  const n = prod(dims);
  const pos = new Array(dims.length).fill(0);
  for (let k = 0; k < n; k++) {
    fn(pos);
    for (let i = dims.length - 1; i >= 0; i--) {
      if (++pos[i] < dims[i]) break;
      pos[i] = 0;
    }
  }
}

/** Normalises a possibly negative axis for a rank. */
export function axisOf(axis: number, rank: number, what: string): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) throw new OnnxError(`${what} ${axis} is out of range for rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
}

/** Constants are shape arithmetic and small tables: a larger one is an error, not a long loop. */
export const MAX_CONST = 1 << 20;

/** A const with an element of `dims` computed from its position (general gather/slice/transpose). */
function build(dims: number[], isFloat: boolean, at: (pos: number[]) => number): Const {
  if (prod(dims) > MAX_CONST) throw new OnnxError(`a constant of shape [${dims.join(", ")}] is larger than the ${MAX_CONST} values that shape arithmetic may hold`);
  const out: number[] = [];
  forEachIndex(dims, (pos) => out.push(at(pos)));
  return constOf(dims, out, isFloat);
}

export function gather(data: Const, indices: Const, axis: number): Const {
  const a = axisOf(axis, data.dims.length, "Gather axis");
  const n = data.dims[a];
  const idx = indices.ints("Gather indices").map((i) => {
    if (i < -n || i >= n) throw new OnnxError(`Gather index ${i} is out of range for a dimension of size ${n}`);
    return i < 0 ? i + n : i;
  });
  const dims = [...data.dims.slice(0, a), ...indices.dims, ...data.dims.slice(a + 1)];
  const st = stridesOf(data.dims), ist = stridesOf(indices.dims), r = indices.dims.length;
  return build(dims, data.isFloat, (pos) => {
    let flat = 0;
    for (let i = 0; i < a; i++) flat += pos[i] * st[i];
    let ii = 0;
    for (let i = 0; i < r; i++) ii += pos[a + i] * ist[i];
    flat += idx[ii] * st[a];
    for (let i = a + 1; i < data.dims.length; i++) flat += pos[i + r - 1] * st[i];
    return data.data[flat];
  });
}

/** ONNX Slice: per axis start, end, step (clamped as the spec says). */
export function slice(data: Const, starts: number[], ends: number[], axes: number[] | null, steps: number[] | null): Const {
  const r = data.dims.length;
  const ax = (axes ?? starts.map((_, i) => i)).map((a) => axisOf(a, r, "Slice axis"));
  if (starts.length !== ends.length || ax.length !== starts.length || (steps && steps.length !== starts.length))
    throw new OnnxError(`Slice: starts, ends, axes and steps must have the same length, got ${starts.length}, ${ends.length}, ${ax.length}, ${steps?.length}`);
  const begin = new Array(r).fill(0), step = new Array(r).fill(1), dims = [...data.dims];
  ax.forEach((a, i) => {
    const d = data.dims[a], s = steps ? steps[i] : 1;
    if (!s) throw new OnnxError("Slice: a step is 0");
    const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + d : v, lo), hi);
    const b = s > 0 ? clamp(starts[i], 0, d) : clamp(starts[i], -1, d - 1);
    const e = s > 0 ? clamp(ends[i], 0, d) : clamp(ends[i], -1, d - 1);
    begin[a] = b;
    step[a] = s;
    dims[a] = Math.max(0, Math.ceil((e - b) / s));
  });
  const st = stridesOf(data.dims);
  return build(dims, data.isFloat, (pos) => data.data[pos.reduce((f, p, i) => f + (begin[i] + p * step[i]) * st[i], 0)]);
}

export function concat(parts: Const[], axis: number): Const {
  const r = parts[0].dims.length;
  const a = axisOf(axis, r, "Concat axis");
  for (const p of parts)
    if (p.dims.length !== r || p.dims.some((d, i) => i !== a && d !== parts[0].dims[i]))
      throw new OnnxError(`Concat: shapes ${parts.map((q) => `[${q.dims.join(", ")}]`).join(", ")} do not fit along axis ${a}`);
  const dims = [...parts[0].dims];
  dims[a] = parts.reduce((n, p) => n + p.dims[a], 0);
  const isFloat = parts.some((p) => p.isFloat);
  return build(dims, isFloat, (pos) => {
    let k = pos[a];
    for (const p of parts) {
      if (k < p.dims[a]) return p.data[pos.reduce((f, q, i) => f * p.dims[i] + (i === a ? k : q), 0)];
      k -= p.dims[a];
    }
    return 0;
  });
}

export function transpose(data: Const, perm: number[] | null): Const {
  const r = data.dims.length;
  const pm = perm ?? data.dims.map((_, i) => r - 1 - i);
  if (pm.length !== r || [...pm].sort().some((p, i) => p !== i)) throw new OnnxError(`Transpose: perm ${JSON.stringify(pm)} is not a permutation of ${r} axes`);
  const st = stridesOf(data.dims);
  return build(pm.map((p) => data.dims[p]), data.isFloat, (pos) => data.data[pos.reduce((f, p, i) => f + p * st[pm[i]], 0)]);
}

/** Element-wise arithmetic on constants, with broadcasting; integer division truncates (ONNX). */
export function arith(kind: string, a: Const, b: Const): Const {
  const n = Math.max(a.dims.length, b.dims.length);
  const dims: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a.dims[a.dims.length - n + i] ?? 1, y = b.dims[b.dims.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new OnnxError(`${kind}: shapes [${a.dims.join(", ")}] and [${b.dims.join(", ")}] do not broadcast`);
    dims.push(x === 1 ? y : x);
  }
  const pick = (c: Const, pos: number[]) => {
    let f = 0;
    for (let i = 0; i < c.dims.length; i++) f = f * c.dims[i] + (c.dims[i] === 1 ? 0 : pos[n - c.dims.length + i]);
    return c.data[f];
  };
  const isFloat = a.isFloat || b.isFloat;
  const f: Record<string, (x: number, y: number) => number> = {
    Add: (x, y) => x + y,
    Sub: (x, y) => x - y,
    Mul: (x, y) => x * y,
    Div: (x, y) => (isFloat ? x / y : Math.trunc(x / y)),
    Pow: (x, y) => Math.pow(x, y),
    Equal: (x, y) => (x === y ? 1 : 0),
    Less: (x, y) => (x < y ? 1 : 0),
    Greater: (x, y) => (x > y ? 1 : 0),
  };
  const isBool = kind === "Equal" || kind === "Less" || kind === "Greater";
  return build(dims, isFloat && !isBool, (pos) => f[kind](pick(a, pos), pick(b, pos)));
}

/** Reshape's target shape: 0 copies the input's size (unless allowzero), one -1 is inferred. */
export function reshapeTarget(inDims: readonly number[], shape: number[], allowZero: boolean, what: string): number[] {
  const out = shape.map((d, i) => (d === 0 && !allowZero ? inDims[i] : d));
  if (out.some((d) => d === undefined || d < -1) || out.filter((d) => d === -1).length > 1)
    throw new OnnxError(`${what}: bad target shape [${shape.join(", ")}] for an input of shape [${inDims.join(", ")}]`);
  const known = prod(out.filter((d) => d !== -1)), total = prod(inDims);
  const full = out.map((d) => (d === -1 ? (known ? total / known : NaN) : d));
  if (full.some((d) => !Number.isInteger(d)) || prod(full) !== total)
    throw new OnnxError(`${what}: cannot reshape [${inDims.join(", ")}] (${total} elements) to [${shape.join(", ")}]`);
  return full;
}

/** Unsqueeze's output shape. */
export function unsqueezeDims(dims: readonly number[], axes: number[]): number[] {
  const r = dims.length + axes.length;
  const at = axes.map((a) => axisOf(a, r, "Unsqueeze axis")).sort((x, y) => x - y);
  if (new Set(at).size !== at.length) throw new OnnxError(`Unsqueeze: repeated axes ${JSON.stringify(axes)}`);
  const out: number[] = [];
  let k = 0;
  for (let i = 0; i < r; i++) out.push(at.includes(i) ? 1 : dims[k++]);
  return out;
}

/** Squeeze's output shape (no axes: every size-1 dimension). */
export function squeezeDims(dims: readonly number[], axes: number[] | null): number[] {
  if (!axes) return dims.filter((d) => d !== 1);
  const at = axes.map((a) => axisOf(a, dims.length, "Squeeze axis"));
  for (const a of at) if (dims[a] !== 1) throw new OnnxError(`Squeeze: dimension ${a} of [${dims.join(", ")}] is ${dims[a]}, not 1`);
  return dims.filter((_, i) => !at.includes(i));
}
