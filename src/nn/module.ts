// The base of every layer and container, after torch.nn.Module: named parameters and buffers
// (state-dict names such as `features.0.weight`), children, train/eval mode, state dicts and
// freezing. Containers call their children through `call()`, which checks the input shape
// first and, on an error, names the layer (its path in the model) and the shapes.
import { Tensor, keep, shapeStr, sizeOf, zeros, tidy, setValues, type Shape } from "../tensor.js";
import { noGrad } from "../autograd.js";
import type { Generator, RngState } from "../random.js";
import { checkOptions, badArgument } from "../options.js";

/** A value a state dict entry may hold: a tensor, or plain data with a shape (safetensors). */
export type StateValue = Tensor | { shape: readonly number[]; data: ArrayLike<number> };
export type StateDict = Map<string, Tensor>;

/** The trace in progress (Module.traceFlow), so that a child's own trace is not recorded twice. */
let tracing: object | null = null;

/** What a layer does to the size and receptive field of its input (for summary()). */
export interface Flow {
  shape: number[];
  /** receptive field of one output position in input pixels [h, w] */
  rf: [number, number];
  /** distance in input pixels between neighbouring output positions [h, w] */
  jump: [number, number];
  /** size [h, w] of the feature map that Flatten turned into features, until a Linear mixes it */
  spatial?: [number, number];
}

export interface SummaryRow {
  name: string;
  layer: string;
  inputShape: number[];
  outputShape: number[];
  weightShape: number[] | null;
  params: number;
  trainable: number;
  /** multiply-adds for the whole input batch */
  macs: number;
  rf: [number, number];
}

/** The JSON form of a module (see config.ts). */
export interface ModuleConfig {
  type: string;
  args?: any[];
  children?: [string, ModuleConfig][];
}

/** A tensor that a module learns: requires grad and outlives tidy() scopes. */
export function parameter(t: Tensor): Tensor {
  return keep(t).requireGrad(true);
}

export class ModuleError extends Error {
  constructor(
    readonly module: Module,
    readonly inputShape: Shape | null,
    readonly cause: unknown,
  ) {
    const where = module.path();
    const msg = cause instanceof Error ? cause.message : String(cause);
    super(`${module.describe()}${where ? ` at '${where}'` : ""}${inputShape ? `, input ${shapeStr(inputShape)}` : ""}: ${msg}`);
    this.name = "ModuleError";
  }
}

type ForwardHook = (m: Module, input: Tensor, output: Tensor) => void;
const forwardHooks: ForwardHook[] = [];

/** Children given as [name, Module] pairs (Sequential, the zoo's composite models). */
export function checkNamedChildren(where: string, v: unknown): asserts v is [string, Module][] {
  if (!Array.isArray(v) || !v.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === "string" && p[1] instanceof Module))
    badArgument(where, "the layers", "[name, Module] pairs", v);
}

/** Run fn with a hook called after every module's forward (NaN tracing, activation capture). */
export function withForwardHook<T>(hook: ForwardHook, fn: () => T): T {
  if (typeof hook !== "function" || typeof fn !== "function") badArgument("withForwardHook", "(hook, fn)", "two functions", [hook, fn]);
  forwardHooks.push(hook);
  try {
    return fn();
  } finally {
    forwardHooks.splice(forwardHooks.lastIndexOf(hook), 1);
  }
}

/** Whether a forward hook is on (the automatic fusion, src/nn/fusion.ts, is off then: the hooks
 *  see every layer's output). */
export function hasForwardHooks(): boolean {
  return forwardHooks.length > 0;
}

/** The profiler's clock around each layer's forward (src/profile.ts); null unless a profile
 *  runs. */
type LayerClock = <T>(m: Module, run: () => T) => T;
let layerClock: LayerClock | null = null;
export function _setLayerClock(clock: LayerClock | null): void {
  layerClock = clock;
}

/** Modules made while a config builder runs a factory (see trackModules). */
let made: Module[] | null = null;

/** Runs fn, collecting every module constructed meanwhile (so that a factory that throws halfway
 *  through a constructor can have their tensors freed at once). */
export function trackModules<T>(into: Module[], fn: () => T): T {
  const outer = made;
  made = into;
  try {
    return fn();
  } finally {
    made = outer;
  }
}

export abstract class Module {
  constructor() {
    made?.push(this);
  }

  /** the class name used in configs and messages */
  abstract readonly type: string;
  training = true;
  protected _parameters = new Map<string, Tensor | null>();
  protected _buffers = new Map<string, Tensor | null>();
  /** buffers that are part of the module but not of its state dict (derived from the config) */
  protected _nonPersistent = new Set<string>();
  protected _modules = new Map<string, Module>();
  /** where this module sits in its parent (set by registerModule) */
  private _parent: Module | null = null;
  private _name = "";
  /** per-module random numbers (dropout masks), saved in checkpoints */
  rng?: Generator;

  abstract forward(x: Tensor): Tensor;

  /** forward() with the input checked first and errors naming this layer. Containers call
   *  their children through this. */
  call(x: Tensor): Tensor {
    let y: Tensor;
    try {
      if (!(x instanceof Tensor)) throw new Error(`input must be a Tensor, got ${x === null ? "null" : typeof x}`);
      if (this._modules.size === 0) this.outputShape(x.shape as number[]);
      y = layerClock ? layerClock(this, () => this.forward(x)) : this.forward(x);
    } catch (e) {
      if (e instanceof ModuleError) throw e;
      throw new ModuleError(this, x instanceof Tensor ? x.shape : null, e);
    }
    for (const h of forwardHooks) h(this, x, y);
    return y;
  }

  /** call() running `run` instead of forward(): for a group of layers fused into one op that
   *  this layer heads (src/nn/fusion.ts). The input is checked against this layer, errors name
   *  it and the profiler times the group as this layer. (No forward hooks: fusion is off then.) */
  _callFused(x: Tensor, run: () => Tensor): Tensor {
    try {
      this.outputShape(x.shape as number[]);
      return layerClock ? layerClock(this, run) : run();
    } catch (e) {
      if (e instanceof ModuleError) throw e;
      throw new ModuleError(this, x.shape, e);
    }
  }

  // ---- registration ----

  registerParameter(name: string, t: Tensor | null): Tensor | null {
    this.checkName(name);
    if (t) {
      parameter(t);
      t.name = name;
    }
    this._parameters.set(name, t);
    return t;
  }

  registerBuffer(name: string, t: Tensor | null, persistent = true): Tensor | null {
    this.checkName(name);
    if (t) keep(t).name = name;
    this._buffers.set(name, t);
    if (!persistent) this._nonPersistent.add(name);
    return t;
  }

  registerModule<M extends Module>(name: string, m: M): M {
    this.checkName(name);
    if (!(m instanceof Module)) throw new Error(`${this.type}: child '${name}' is not a Module`);
    // a second child of one name would silently replace the first (replaceModule does that on purpose)
    if (this._modules.has(name)) throw new Error(`${this.type}: two children named '${name}' (names must be unique)`);
    this._modules.set(name, m);
    m._parent = this;
    m._name = name;
    return m;
  }

  /** Put `m` in the place of the child registered as `name` (same position in the order, same
   *  state-dict prefix); returns the child it replaces. Containers that keep their own
   *  references to children (Residual, ResidualBlock) update them too. */
  replaceModule(name: string, m: Module): Module {
    const old = this._modules.get(name);
    if (!old) throw new Error(`${this.type}: no child '${name}' to replace (has ${[...this._modules.keys()].join(", ") || "none"})`);
    if (!(m instanceof Module)) throw new Error(`${this.type}: the replacement for '${name}' is not a Module`);
    this._modules.set(name, m);
    m._parent = this;
    m._name = name;
    old._parent = null;
    old._name = "";
    return old;
  }

  private checkName(name: string) {
    if (typeof name !== "string" || !name || name.includes("."))
      throw new Error(`${this.type}: bad name '${name}': names must be non-empty and contain no '.'`);
  }

  // ---- traversal ----

  /** dotted name from the outermost parent ("" for the root) */
  path(): string {
    const parts: string[] = [];
    for (let m: Module | null = this; m && m._parent; m = m._parent) parts.unshift(m._name);
    return parts.join(".");
  }

  *namedChildren(): IterableIterator<[string, Module]> {
    yield* this._modules.entries();
  }

  children(): Module[] {
    return [...this._modules.values()];
  }

  /** this module and every descendant, depth first, with dotted names (root is ""). */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, m] of this._modules) out.push(...m.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** parameters with state-dict names; a tensor shared by two layers is listed once */
  namedParameters(): [string, Tensor][] {
    const seen = new Set<Tensor>();
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules())
      for (const [n, p] of m._parameters)
        if (p && !seen.has(p)) {
          seen.add(p);
          out.push([prefix ? `${prefix}.${n}` : n, p]);
        }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(persistentOnly = false): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules())
      for (const [n, b] of m._buffers)
        if (b && !(persistentOnly && m._nonPersistent.has(n))) out.push([prefix ? `${prefix}.${n}` : n, b]);
    return out;
  }

  buffers(): Tensor[] {
    return this.namedBuffers().map(([, b]) => b);
  }

  /** number of parameter values (all, or only those that require grad) */
  numParameters(trainableOnly = false): number {
    let n = 0;
    for (const p of this.parameters()) if (!trainableOnly || p.requiresGrad) n += p.size;
    return n;
  }

  // ---- modes ----

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Freeze (false) or unfreeze (true) every parameter below this module (fine-tuning). */
  requiresGrad_(on = true): this {
    for (const p of this.parameters()) p.requiresGrad = on;
    return this;
  }

  // ---- state ----

  /** Parameters and persistent buffers by state-dict name, in registration order (PyTorch's). */
  stateDict(): StateDict {
    const sd: StateDict = new Map();
    for (const [prefix, m] of this.namedModules()) {
      const at = (n: string) => (prefix ? `${prefix}.${n}` : n);
      for (const [n, p] of m._parameters) if (p) sd.set(at(n), p);
      for (const [n, b] of m._buffers) if (b && !m._nonPersistent.has(n)) sd.set(at(n), b);
    }
    return sd;
  }

  /** Copy values into this module's tensors. strict: every name must match both ways.
   *  Errors name the tensor and the shapes. Returns the names that were missing/unexpected. */
  loadStateDict(sd: Map<string, StateValue> | Record<string, StateValue>, opts: { strict?: boolean } = {}) {
    checkOptions(`${this.type}.loadStateDict`, opts, ["strict"]);
    if (!(sd instanceof Map) && (sd === null || typeof sd !== "object" || Array.isArray(sd)))
      badArgument(`${this.type}.loadStateDict`, "the state dict", "a Map or an object of name -> tensor", sd);
    const { strict = true } = opts;
    const src = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !src.has(k));
    const unexpected = [...src.keys()].filter((k) => !own.has(k));
    if (strict && (missing.length || unexpected.length)) {
      const parts: string[] = [];
      if (missing.length) parts.push(`missing ${list(missing)}`);
      if (unexpected.length) parts.push(`unexpected ${list(unexpected)}`);
      throw new Error(`loadStateDict (${this.type}): ${parts.join("; ")}`);
    }
    // check every shape before copying anything, so a failed load leaves the model unchanged
    for (const [k, t] of own) {
      const v = src.get(k);
      if (!v) continue;
      const shape = [...v.shape];
      const count = v instanceof Tensor ? v.size : v.data.length;
      const ok = shape.length === t.shape.length && shape.every((d, i) => d === t.shape[i]) && count === t.size;
      // a 0-d scalar and a 1-element vector are the same buffer (num_batches_tracked)
      const scalarOk = t.size === 1 && count === 1 && sizeOf(shape) === 1;
      if (!ok && !scalarOk) throw new Error(`loadStateDict (${this.type}): '${k}' has shape ${shapeStr(shape)} in the state dict but ${shapeStr(t.shape)} in the model`);
    }
    for (const [k, t] of own) {
      const v = src.get(k);
      if (!v) continue;
      setValues(t, v instanceof Tensor ? v.data : v.data);
    }
    return { missing, unexpected };
  }

  /** States of the random generators inside (dropout), by module path: for checkpoints. */
  rngStates(): Record<string, RngState> {
    const out: Record<string, RngState> = {};
    for (const [n, m] of this.namedModules()) if (m.rng) out[n] = m.rng.getState();
    return out;
  }

  setRngStates(states: Record<string, RngState>): void {
    for (const [n, m] of this.namedModules()) {
      if (!m.rng) continue;
      if (!states[n]) throw new Error(`setRngStates: no state for the generator of '${n || "(root)"}' (${m.type})`);
      m.rng.setState(states[n]);
    }
  }

  /** Moves every parameter and buffer (and gradient) to `device`, in place: the tensors keep
   *  their identity, so an optimiser made before still holds them (move its state with
   *  opt.to()). Moving to webgpu needs init({ webgpu: true }); moving back is asynchronous:
   *  await model.cpu(). Returns the module. */
  to(device: "cpu" | "webgpu"): this {
    if (device !== "cpu" && device !== "webgpu") throw new Error(`${this.type}.to: unknown device ${JSON.stringify(device)}; the devices are "cpu" and "webgpu"`);
    const all = [...this.parameters(), ...this.buffers()];
    if (device === "cpu") {
      if (all.some((t) => t.device !== "cpu")) throw new Error(`${this.type}.to: moving from webgpu to the CPU is asynchronous: use await model.cpu()`);
      return this;
    }
    for (const t of all) t._moveToGpuInPlace();
    return this;
  }

  /** Moves every parameter and buffer back to the CPU (in place, as to()). */
  async cpu(): Promise<this> {
    for (const t of [...this.parameters(), ...this.buffers()]) await t._moveInPlace("cpu");
    return this;
  }

  /** Where the parameters live ("cpu" for a module without any). */
  get device(): "cpu" | "webgpu" {
    const p = this.parameters()[0] ?? this.buffers()[0];
    return p ? p.device : "cpu";
  }

  /** Free every parameter and buffer (the module is unusable afterwards). */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
    for (const b of this.buffers()) b.dispose();
  }

  // ---- shapes, analysis, config ----

  /** Output shape for an input shape; throws (a plain message) when the input does not fit.
   *  Default: shape-preserving (activations, normalisation, dropout); a module of your own with
   *  children and its own forward() is run once on zeros instead (see traceFlow). */
  outputShape(input: number[]): number[] {
    if (this._modules.size > 0) return this.traceFlow({ shape: input, rf: [1, 1], jump: [1, 1] }, null, "").shape;
    return input;
  }

  /** One summary row per layer: shapes, parameters, multiply-adds, receptive field. Containers
   *  override this to walk their children. */
  summarize(flow: Flow, rows: SummaryRow[], name: string): Flow {
    // a module of your own with children (its forward() says how they connect): trace it
    if (this._modules.size > 0 && this.outputShape === Module.prototype.outputShape) return this.traceFlow(flow, rows, name);
    let out: number[];
    try {
      out = this.outputShape(flow.shape);
    } catch (e) {
      throw new ModuleError(this, flow.shape, e);
    }
    const next: Flow = { ...flow, ...this.receptiveField(flow, out), shape: out };
    const own = [...this._parameters.values()].filter((p): p is Tensor => !!p);
    const weight = this._parameters.get("weight");
    rows.push({
      name,
      layer: this.describe(),
      inputShape: flow.shape,
      outputShape: out,
      weightShape: weight ? [...weight.shape] : null,
      params: own.reduce((a, p) => a + p.size, 0),
      trainable: own.reduce((a, p) => a + (p.requiresGrad ? p.size : 0), 0),
      macs: this.macs(flow.shape, out),
      rf: next.rf,
    });
    return next;
  }

  /** The flow through a module whose children are connected by its own forward(): it runs
   *  once on zeros (eval mode, no gradients, everything it makes freed), and each child called
   *  on the way adds its rows, fed with the flow of the tensor it was given: exact shapes, and
   *  receptive fields along the path each tensor took (where the forward combines tensors with
   *  plain ops, e.g. add(a, b), the latest child's flow, with the real shape, stands in).
   *  Needs init(). */
  private traceFlow(flow: Flow, rows: SummaryRow[] | null, name: string): Flow {
    const flows = new Map<Tensor, Flow>();
    let last = flow;
    const token = {};
    const restore = [...this._modules].map(([n, m]) => {
      const own = Object.prototype.hasOwnProperty.call(m, "forward"), forward = m.forward;
      m.forward = (t: Tensor) => {
        const y = forward.call(m, t);
        if (tracing !== token) return y; // a trace inside this child's own summary: not ours
        const fin = flows.get(t) ?? { ...last, shape: [...t.shape] };
        const out = rows ? m.summarize(fin, rows, name ? `${name}.${n}` : n) : { ...fin, shape: [...y.shape] };
        flows.set(y, out);
        last = out;
        return y;
      };
      return () => (own ? (m.forward = forward) : delete (m as { forward?: unknown }).forward);
    });
    const modes = this.modules().map((m) => m.training), outer = tracing;
    try {
      this.eval();
      return noGrad(() =>
        tidy(() => {
          const x = zeros(flow.shape);
          flows.set(x, flow);
          tracing = token;
          const y = this.forward(x);
          return { ...(flows.get(y) ?? last), shape: [...y.shape] };
        }),
      );
    } catch (e) {
      throw e instanceof ModuleError ? e : new ModuleError(this, flow.shape, e);
    } finally {
      tracing = outer;
      restore.forEach((r) => r());
      this.modules().forEach((m, i) => (m.training = modes[i]));
    }
  }

  /** multiply-adds of one forward pass over the whole input (0 for layers without weights) */
  macs(_input: number[], _output: number[]): number {
    return 0;
  }

  /** How this layer changes the receptive field (default: it does not). */
  receptiveField(_flow: Flow, _out: number[]): Partial<Flow> {
    return {};
  }

  /** constructor arguments, for configs */
  protected args(): any[] {
    return [];
  }

  config(): ModuleConfig {
    const c: ModuleConfig = { type: this.type };
    const a = this.args();
    if (a.length) c.args = a;
    return c;
  }

  /** PyTorch-like one-line description, e.g. Conv2d(1, 20, kernel_size=5, padding=2). */
  describe(): string {
    return `${this.type}(${this.extraRepr()})`;
  }

  protected extraRepr(): string {
    return "";
  }

  toString(): string {
    const kids = [...this._modules];
    if (!kids.length) return this.describe();
    const inner = kids.map(([n, m]) => `  (${n}): ${m.toString().replace(/\n/g, "\n  ")}`).join("\n");
    return `${this.type}(\n${inner}\n)`;
  }
}

function list(names: string[]): string {
  const shown = names.slice(0, 8).map((n) => `'${n}'`).join(", ");
  return names.length > 8 ? `${shown} and ${names.length - 8} more` : shown;
}

/** Sliding-window receptive field rule (Araujo et al. 2019, "Computing receptive fields"):
 *  rf' = rf + (k_eff - 1) * jump, jump' = jump * stride. */
export function windowRF(flow: Flow, k: [number, number], s: [number, number], d: [number, number] = [1, 1]) {
  const rf: [number, number] = [0, 1].map((i) => flow.rf[i] + d[i] * (k[i] - 1) * flow.jump[i]) as [number, number];
  const jump: [number, number] = [flow.jump[0] * s[0], flow.jump[1] * s[1]];
  return { rf, jump };
}
