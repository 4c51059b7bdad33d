// A tensor is a shape and a view into the engine's arena. Memory is released by dispose(),
// by tidy() at the end of a scope, or (eventually) when the object is garbage collected.
import { engine as currentEngine, type Engine } from "./engine/engine.js";
import type { Node } from "./autograd.js";
import type { GpuEngine } from "./webgpu/engine.js";
import { badArgument } from "./options.js";

export type Shape = readonly number[];
/** Where a tensor's values live: the wasm engine's memory, or the WebGPU engine's buffer. */
export type Device = "cpu" | "webgpu";

/** The WebGPU engine started by init({ webgpu: true }), if any (set by engine.ts). */
let gpuEngine: (() => GpuEngine) | null = null;
export function _setGpuEngine(f: () => GpuEngine) {
  gpuEngine = f;
}

function onGpu(t: Tensor, what: string): never {
  throw new Error(`${what}: tensor ${shapeStr(t.shape)} is on webgpu; its values can only be read asynchronously: use await t.read() (a Float32Array) or await t.cpu() (a CPU tensor)`);
}

/** Packed copies of a storage's values (a weight's, for the kernels: src/ops/packs.ts), by
 *  layout, each with the version of the values it was made from. */
export type Packs = Map<string, { version: number; ptr: number }>;

/** The memory behind one or more tensors (a reshape shares it). */
export class Storage {
  released = false;
  /** Bumped by every write to the values through the API (Tensor.markWritten): a pack made at
   *  another version is stale. */
  version = 0;
  readonly packs: Packs = new Map();
  constructor(readonly engine: Engine, readonly ptr: number, readonly bytes: number) {}
  release() {
    if (this.released) return;
    this.released = true;
    registry.unregister(this);
    this.engine.release(this.ptr);
    releasePacks(this.engine, this.packs);
  }
}

function releasePacks(engine: Engine, packs: Packs) {
  for (const p of packs.values()) engine.release(p.ptr);
  packs.clear();
}

const registry = new FinalizationRegistry<{ engine: Engine; ptr: number; storage: WeakRef<Storage> | null; packs: Packs }>((h) => {
  h.engine.release(h.ptr);
  releasePacks(h.engine, h.packs);
});

/** Scopes opened by tidy(): each collects the storages made inside it. */
const scopes: Set<Storage>[] = [];

export function shapeStr(shape: Shape): string {
  // (used in error messages: never itself the error)
  return Array.isArray(shape) ? `[${shape.join(",")}]` : String(shape);
}

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export class Tensor {
  requiresGrad = false;
  grad: Tensor | null = null;
  /** the op that made this tensor, when recorded for backward */
  node: Node | null = null;
  /** a name for error messages and state dicts */
  name?: string;
  readonly size: number;

  // storage changes only when a tensor moves in place (module.to(): parameters keep their
  // identity, so optimisers and user references stay valid, as with PyTorch's param.data = ...)
  constructor(public storage: Storage, readonly shape: Shape, readonly offset = 0) {
    this.size = sizeOf(shape);
  }

  get engine(): Engine {
    return this.storage.engine;
  }
  /** "cpu" or "webgpu" */
  get device(): Device {
    return (this.storage.engine as any).device === "webgpu" ? "webgpu" : "cpu";
  }
  /** byte address in wasm memory */
  get ptr(): number {
    return this.storage.ptr + this.offset * 4;
  }
  get rank(): number {
    return this.shape.length;
  }
  get disposed(): boolean {
    return this.storage.released;
  }

  /** Counts the writes to this tensor's memory (shared with its reshapes and detached copies)
   *  through the API: optimiser steps, loadStateDict, setValues, taking `.data`. Kernels keep
   *  packed copies of weights across calls while it is unchanged. */
  get version(): number {
    return this.storage.version;
  }

  /** Records a write to the values (bumps the version): for code that writes them through a
   *  pointer, e.g. an optimiser's kernel. */
  markWritten(): void {
    const st = this.storage;
    st.version++;
    // the packs of the old values are of no more use: freed now, not at the next call
    if (st.packs.size) releasePacks(st.engine, st.packs);
  }

  /** A live view of the values; invalid after the next allocation that grows memory. It may be
   *  written, so taking it counts as a write (bumps the version); toArray() does not. */
  get data(): Float32Array {
    const v = this.view("data");
    this.markWritten();
    return v;
  }

  /** The values, read-only by convention (no version bump). */
  private view(op: string): Float32Array {
    this.assertUsable(op);
    if (this.device === "webgpu") onGpu(this, op);
    return this.engine.heapF32.subarray(this.ptr >>> 2, (this.ptr >>> 2) + this.size);
  }

  /** A copy of the values. */
  toArray(): Float32Array {
    return this.view("toArray").slice();
  }

  /** A copy of the values, on any device (the way to read a GPU tensor). */
  async read(): Promise<Float32Array> {
    this.assertUsable("read");
    if (this.device === "cpu") return this.view("read").slice();
    // named in the error of a GPU kernel's check found by this read (engine.ts, checkTag)
    const what = `${this.name ? `tensor "${this.name}"` : "a tensor"} ${shapeStr(this.shape)}`;
    return (this.engine as any as GpuEngine).read(this.ptr, this.size, what);
  }

  /** This tensor on `device` (itself if it is there already). Moving to webgpu needs
   *  init({ webgpu: true }) first; moving back is asynchronous: await t.cpu(). The copy does not
   *  record anything for backward and keeps requiresGrad. */
  to(device: Device): Tensor {
    this.assertUsable("to");
    if (device === this.device) return this;
    if (device === "webgpu") {
      if (!gpuEngine) throw new Error("to: no WebGPU engine; call await init({ webgpu: true }) first (and check its webgpu.available)");
      const g = gpuEngine();
      const t = empty(this.shape, g as any);
      g.write(t.ptr, this.view("to"));
      t.requiresGrad = this.requiresGrad;
      t.name = this.name;
      return t;
    }
    if (device === "cpu") throw new Error(`to: tensor ${shapeStr(this.shape)} is on webgpu; reading it back is asynchronous: use await t.cpu()`);
    throw new Error(`to: unknown device ${JSON.stringify(device)}; the devices are "cpu" and "webgpu"`);
  }

  /** Moves this tensor's values to `device` in place (same object, new memory; its gradient is
   *  moved too). For whole-tensor storages only (parameters, buffers). */
  async _moveInPlace(device: Device): Promise<void> {
    if (device === this.device) return;
    if (device === "webgpu") return this._moveToGpuInPlace();
    this.checkWhole();
    this.adoptMoved(await this.cpu(), this.grad ? await this.grad.cpu() : null);
  }

  /** _moveInPlace to webgpu, synchronously (uploads are queued; nothing is awaited). */
  _moveToGpuInPlace(): void {
    if (this.device === "webgpu") return;
    this.checkWhole();
    this.adoptMoved(this.to("webgpu"), this.grad ? this.grad.to("webgpu") : null);
  }

  /** Takes over the memory of `moved` (and the gradient's), freeing what this held. */
  private checkWhole(): void {
    if (this.offset !== 0) throw new Error("to: cannot move a view in place");
  }

  private adoptMoved(moved: Tensor, movedGrad: Tensor | null): void {
    const old = this.storage;
    this.storage = moved.storage;
    for (const s of scopes) s.delete(moved.storage);
    old.release();
    if (movedGrad) {
      for (const s of scopes) s.delete(movedGrad.storage);
      this.grad!.dispose();
      this.grad = movedGrad;
    }
  }

  /** A CPU copy (awaits the GPU for a webgpu tensor). */
  async cpu(): Promise<Tensor> {
    if (this.device === "cpu") return this;
    const values = await this.read();
    const t = empty(this.shape, currentEngine());
    t.data.set(values);
    t.requiresGrad = this.requiresGrad;
    t.name = this.name;
    return t;
  }

  item(): number {
    if (this.device === "webgpu") onGpu(this, "item");
    if (this.size !== 1) throw new Error(`item: tensor has ${this.size} elements ${shapeStr(this.shape)}, not 1`);
    return this.view("item")[0];
  }

  /** Same memory, another shape (PyTorch's view/reshape for contiguous tensors); -1 infers one size. */
  reshape(...shape: number[] | [number[]]): Tensor {
    const s = (Array.isArray(shape[0]) ? shape[0] : shape) as number[];
    const known = s.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    const full = s.map((d) => (d === -1 ? this.size / known : d));
    if (s.filter((d) => d === -1).length > 1 || full.some((d) => !Number.isInteger(d) || d < 0) || sizeOf(full) !== this.size)
      throw new Error(`reshape: cannot view ${shapeStr(this.shape)} (${this.size} elements) as ${shapeStr(s)}`);
    return reshapeOp(this, full);
  }

  requireGrad(on = true): this {
    this.requiresGrad = on;
    return this;
  }

  /** Gradient of this scalar (or, given `grad`, of grad · this) with respect to every tensor
   *  that requires it, added into their .grad; with `{ inputs: [a, b] }` into a's and b's only
   *  (PyTorch's backward(inputs=...)): no other .grad changes, and no op computes a gradient
   *  that leads only to other tensors. */
  backward(grad?: Tensor | null, opts?: { inputs?: Tensor[] }): void {
    backwardImpl(this, grad, opts);
  }

  /** A new tensor, not recorded for backward, with the same values. */
  detach(): Tensor {
    const t = new Tensor(this.storage, this.shape, this.offset);
    return t;
  }

  dispose(): void {
    this.storage.release();
  }

  assertUsable(op: string): void {
    if (this.storage.released) throw new Error(`${op}: tensor ${shapeStr(this.shape)} was disposed`);
    if (this.engine.disposed) throw new Error(`${op}: tensor ${shapeStr(this.shape)} belongs to a disposed engine; make it again after init()`);
  }

  toString(): string {
    return `Tensor${shapeStr(this.shape)}`;
  }
}

// set by autograd.ts / ops to avoid an import cycle
let backwardImpl: (t: Tensor, g?: Tensor | null, opts?: { inputs?: Tensor[] }) => void = () => {
  throw new Error("backward: autograd not loaded");
};
let reshapeOp: (t: Tensor, shape: number[]) => Tensor = (t, s) => new Tensor(t.storage, s, t.offset);
export function _setBackward(f: typeof backwardImpl) {
  backwardImpl = f;
}
export function _setReshape(f: typeof reshapeOp) {
  reshapeOp = f;
}

function checkShape(op: string, shape: Shape) {
  if (!Array.isArray(shape)) throw new Error(`${op}: shape must be an array of sizes, got ${typeof shape === "object" ? String(shape) : typeof shape}`);
  for (const d of shape)
    if (!Number.isInteger(d) || d < 0) throw new Error(`${op}: bad shape ${shapeStr(shape)}: sizes must be integers >= 0`);
}

/** The factories' last argument is the engine to make the tensor on (sn.engine(),
 *  sn.gpuEngine()). A plain object there is usually PyTorch's `requires_grad=True` or a device
 *  option: say what to write instead rather than fail inside the allocator. */
function checkEngine(op: string, eng: unknown): void {
  if (eng !== null && typeof eng === "object" && typeof (eng as any).alloc === "function") return;
  const got = eng === null ? "null" : typeof eng === "object" ? `an object with keys {${Object.keys(eng as object).join(", ")}}` : `${typeof eng} ${JSON.stringify(eng) ?? String(eng)}`;
  let hint = "";
  if (eng !== null && typeof eng === "object" && ("requiresGrad" in eng || "requires_grad" in eng)) hint = "; for a tensor that records gradients write .requireGrad() after it";
  else if (typeof eng === "string" || (eng !== null && typeof eng === "object" && "device" in eng)) hint = `; to put a tensor on a device write .to("webgpu") after it`;
  throw new Error(`${op}: the last argument is the engine to make the tensor on (sn.engine() or sn.gpuEngine()), got ${got}${hint}`);
}

/** An uninitialised tensor. */
export function empty(shape: Shape, eng: Engine = currentEngine()): Tensor {
  checkShape("empty", shape);
  checkEngine("empty", eng);
  const n = sizeOf(shape);
  const ptr = eng.alloc(n * 4, `tensor ${shapeStr(shape)}`);
  const st = new Storage(eng, ptr, n * 4);
  registry.register(st, { engine: eng, ptr, storage: null, packs: st.packs }, st);
  if (scopes.length) scopes[scopes.length - 1].add(st);
  return new Tensor(st, [...shape]);
}

export function zeros(shape: Shape, eng: Engine = currentEngine()): Tensor {
  checkShape("zeros", shape);
  checkEngine("zeros", eng);
  return full(shape, 0, eng);
}

/** Sets every element to v, on either device. */
export function fillTensor(t: Tensor, v: number): void {
  t.assertUsable("fill");
  t.markWritten();
  if (t.device === "webgpu") gpuFill!(t.engine as any, t.ptr, t.size, v);
  else t.data.fill(v);
}

/** Copies values into a tensor, on either device (a GPU write is queued in order). */
export function setValues(t: Tensor, values: ArrayLike<number>): void {
  t.assertUsable("set");
  if (values.length !== t.size) throw new Error(`set: ${values.length} values for tensor ${shapeStr(t.shape)} of ${t.size}`);
  t.markWritten();
  if (t.device === "webgpu") (t.engine as any as GpuEngine).write(t.ptr, values instanceof Float32Array ? values : Float32Array.from(values));
  else t.data.set(values);
}

/** Set by the webgpu ops: fill n floats at ptr on the GPU. */
let gpuFill: ((g: GpuEngine, ptr: number, n: number, v: number) => void) | null = null;
export function _setGpuFill(f: typeof gpuFill) {
  gpuFill = f;
}

export function full(shape: Shape, value: number, eng: Engine = currentEngine()): Tensor {
  checkShape("full", shape);
  if (typeof value !== "number") throw new Error(`full: value must be a number, got ${typeof value}`);
  checkEngine("full", eng);
  const t = empty(shape, eng);
  if ((eng as any).device === "webgpu") gpuFill!(eng as any, t.ptr, t.size, value);
  else t.data.fill(value);
  return t;
}

export function ones(shape: Shape, eng?: Engine): Tensor {
  checkShape("ones", shape);
  if (eng !== undefined) checkEngine("ones", eng);
  return full(shape, 1, eng);
}

/** A tensor from values (copied). */
export function tensor(values: ArrayLike<number> | number[][] | any, shape?: Shape, eng: Engine = currentEngine()): Tensor {
  let flat: ArrayLike<number>;
  let inferred: number[];
  if (Array.isArray(values) && Array.isArray(values[0])) {
    inferred = [];
    let v: any = values;
    while (Array.isArray(v)) {
      inferred.push(v.length);
      v = v[0];
    }
    flat = (values as any).flat(Infinity);
  } else {
    if (values === null || typeof values !== "object" || typeof values.length !== "number")
      throw new Error(`tensor: values must be an array or a typed array of numbers, got ${values === null ? "null" : typeof values}`);
    flat = values as ArrayLike<number>;
    inferred = [flat.length];
  }
  // a typed array holds numbers; anything else is checked (a string would become NaN)
  if (!ArrayBuffer.isView(flat) || flat instanceof BigInt64Array || flat instanceof BigUint64Array)
    for (let i = 0; i < flat.length; i++)
      if (typeof flat[i] !== "number")
        throw new Error(`tensor: values must be numbers, got ${typeof flat[i] === "string" ? JSON.stringify(flat[i]) : typeof flat[i]} at index ${i}`);
  const s = shape ?? inferred;
  checkShape("tensor", s);
  if (sizeOf(s) !== flat.length) throw new Error(`tensor: ${flat.length} values do not fill shape ${shapeStr(s)}`);
  checkEngine("tensor", eng);
  const t = empty(s, eng);
  if ((eng as any).device === "webgpu") (eng as any as GpuEngine).write(t.ptr, Float32Array.from(flat));
  else t.data.set(flat);
  return t;
}

/** Run fn; free every tensor made inside except those returned (or nested in the result). */
export function tidy<T>(fn: () => T): T {
  if (typeof fn !== "function") badArgument("tidy", "its argument", "a function", fn);
  const scope = new Set<Storage>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    // nothing is returned: free what fn made (else an error inside a training step leaks it)
    scopes.pop();
    for (const st of scope) st.release();
    throw e;
  }
  scopes.pop();
  const keep = new Set<Storage>();
  const visit = (v: any, depth: number) => {
    if (!v || depth > 4) return;
    if (v instanceof Tensor) {
      keep.add(v.storage);
      if (v.grad) keep.add(v.grad.storage);
    } else if (Array.isArray(v)) v.forEach((x) => visit(x, depth + 1));
    else if (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) Object.values(v).forEach((x) => visit(x, depth + 1));
  };
  visit(result!, 0);
  for (const st of scope) {
    if (keep.has(st)) {
      if (scopes.length) scopes[scopes.length - 1].add(st);
    } else st.release();
  }
  return result!;
}

/** Keep a tensor made inside tidy() alive after it (parameters, running statistics). */
export function keep<T extends Tensor>(t: T): T {
  if (!(t instanceof Tensor)) badArgument("keep", "its argument", "a tensor", t);
  for (const s of scopes) s.delete(t.storage);
  return t;
}
