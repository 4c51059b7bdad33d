// The optimiser base: parameter groups, per-parameter state in engine buffers, zeroGrad and
// state dicts. The update itself is one fused kernel per parameter (assembly/optim.ts).
import { Tensor, zeros, keep, shapeStr, fillTensor, setValues } from "../tensor.js";
import { checkOptions } from "../options.js";
import { gpuOptimBegin, gpuOptimEnd } from "../webgpu/optim.js";

/** Options shared by every optimiser: the learning rate (schedulers change it per group). */
export interface BaseOptions {
  lr: number;
}

/** A parameter group: its tensors and its own values of the optimiser's options. */
export type ParamGroup<O> = O & { params: Tensor[]; initial_lr?: number };

/** Either a list of parameters or groups that override some options ({ params, lr, ... }). */
export type ParamsArg<O> = Tensor[] | ({ params: Tensor[] } & Partial<O>)[];

/** Per-parameter state: the step count and named buffers (torch's names: exp_avg, ...). */
export interface ParamState {
  step: number;
  buffers: Record<string, Tensor>;
}

/** A plain object for checkpoints, shaped like torch's state_dict(): state keyed by the index
 *  of the parameter across all groups; param_groups with their options and parameter indices. */
export interface OptimStateDict {
  state: Record<number, { step?: number } & Record<string, number | Float32Array | undefined>>;
  param_groups: ({ params: number[] } & Record<string, unknown>)[];
}

export class OptimError extends Error {}

/** A value in an error message: short, and safe for anything a damaged state dict may hold
 *  (a tensor is named, not serialised with the engine behind it; cycles and deep nesting do not
 *  throw). Primitives read as JSON ("yes", null for NaN). */
export function show(v: unknown): string {
  if (v instanceof Tensor) return `a tensor ${shapeStr(v.shape)}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name} of ${(v as unknown as ArrayLike<number>).length}`;
  try {
    const s = JSON.stringify(v, (_k, x) => (x instanceof Tensor ? `<tensor ${shapeStr(x.shape)}>` : ArrayBuffer.isView(x) ? `<${x.constructor.name}>` : x));
    if (s === undefined) return String(v);
    return s.length > 120 ? s.slice(0, 120) + "..." : s;
  } catch {
    return Array.isArray(v) ? `an array of ${v.length}` : typeof v;
  }
}

export abstract class Optimizer<O extends BaseOptions> {
  readonly paramGroups: ParamGroup<O>[];
  protected state = new Map<Tensor, ParamState>();
  /** whether the state dict stores a step count (torch's SGD has none) */
  protected hasStep = true;

  constructor(readonly name: string, params: ParamsArg<O>, private defaults: O, opts: Partial<O>) {
    this.checkKeys(undefined, opts, defaults);
    const base = { ...defaults, ...opts } as O;
    this.validate(base);
    if (!Array.isArray(params) || params.length === 0) this.fail("got an empty parameter list");
    const groups = params[0] instanceof Tensor ? [{ params: params as Tensor[] }] : (params as ({ params: Tensor[] } & Partial<O>)[]);
    const seen = new Set<Tensor>();
    this.paramGroups = groups.map((g, gi) => {
      if (!g || typeof g !== "object" || !Array.isArray(g.params))
        this.fail(`parameter group ${gi} must be { params: Tensor[], ...options }, got ${g instanceof Tensor ? "a Tensor mixed with groups" : typeof g}`);
      const { params: ps, ...over } = g;
      this.checkKeys(`parameter group ${gi}`, over, defaults);
      const group = { ...base, ...over, params: [...ps] } as ParamGroup<O>;
      this.validate(group, `parameter group ${gi}: `);
      ps.forEach((p, i) => {
        if (!(p instanceof Tensor)) this.fail(`parameter ${i} of group ${gi} is not a Tensor (${typeof p})`);
        if (p.node) this.fail(`parameter ${i} of group ${gi} ${shapeStr(p.shape)} is not a leaf (it was computed by ${p.node.op}); optimise the tensor it came from`);
        if (seen.has(p)) this.fail(`parameter ${i} of group ${gi} ${shapeStr(p.shape)} appears more than once`);
        seen.add(p);
      });
      return group;
    });
  }

  /** Checks one set of options (throws OptimError naming the optimiser and the option). */
  protected abstract validate(o: O, where?: string): void;

  /** Updates one parameter whose gradient is present. */
  protected abstract update(p: Tensor, g: Tensor, group: ParamGroup<O>, st: ParamState): void;

  /** Buffer names in the state dict, for this group's options. */
  protected abstract bufferNames(group: ParamGroup<O>): string[];

  protected fail(msg: string): never {
    throw new OptimError(`${this.name}: ${msg}`);
  }

  /** where: the parameter group (undefined: the options argument) */
  private checkKeys(where: string | undefined, o: unknown, defaults: O) {
    // initial_lr: the lr a scheduler started from (torch's name), kept in each group
    checkOptions(this.name, o, [...Object.keys(defaults), "initial_lr"], { in: where, whose: where && "a parameter group", error: OptimError });
  }

  protected checkNonNeg(o: Record<string, unknown>, key: string, where: string) {
    const v = o[key];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) this.fail(`${where}invalid ${key} ${show(v)}: must be a finite number >= 0`);
  }

  /** A zeroed buffer kept alive across tidy() scopes. */
  protected buffer(p: Tensor): Tensor {
    return keep(zeros(p.shape, p.engine));
  }

  /** One update of every parameter that has a gradient (parameters without one are skipped, and
   *  their state is left as it was, as torch does). Frozen parameters (requiresGrad false, e.g.
   *  after module.requiresGrad_(false)) are skipped too, even with a gradient left from before
   *  they were frozen: otherwise momentum and weight decay would go on moving them. */
  step(): void {
    // parameters on webgpu: every update of the step goes out in one dispatch (webgpu/optim.ts)
    gpuOptimBegin();
    try {
      this.stepEach();
    } finally {
      gpuOptimEnd();
    }
  }

  private stepEach(): void {
    this.paramGroups.forEach((group, gi) => {
      this.validate(group, `parameter group ${gi}: `);
      for (const p of group.params) {
        if (!p.grad || !p.requiresGrad) continue;
        p.assertUsable(`${this.name}.step`);
        p.grad.assertUsable(`${this.name}.step (gradient)`);
        if (p.grad.size !== p.size) this.fail(`gradient ${shapeStr(p.grad.shape)} does not match parameter ${shapeStr(p.shape)}`);
        let st = this.state.get(p);
        if (!st) this.state.set(p, (st = { step: 0, buffers: {} }));
        p.markWritten();
        this.update(p, p.grad, group, st);
      }
    });
  }

  /** Sets every gradient to zero (torch 1.13's default), or drops it (setToNone). A frozen
   *  parameter's gradient is always dropped: backward no longer writes it. */
  zeroGrad(setToNone = false): void {
    for (const group of this.paramGroups)
      for (const p of group.params) {
        if (!p.grad) continue;
        if (setToNone || !p.requiresGrad) {
          p.grad.dispose();
          p.grad = null;
        } else fillTensor(p.grad, 0);
      }
  }

  private indexed(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** The state as plain data (the buffers copied to Float32Arrays). For state on webgpu use
   *  stateDictAsync(). */
  stateDict(): OptimStateDict {
    return this.stateDictWith((t) => t.toArray());
  }

  /** stateDict() for state on any device (awaits GPU reads). */
  async stateDictAsync(): Promise<OptimStateDict> {
    const reads = new Map<Tensor, Float32Array>();
    for (const st of this.state.values()) for (const t of Object.values(st.buffers)) reads.set(t, await t.read());
    return this.stateDictWith((t) => reads.get(t)!);
  }

  /** Moves the state buffers to `device` (model.to() moves the parameters; call this after it,
   *  as in PyTorch, where optimiser state follows its parameters). */
  to(device: "cpu" | "webgpu"): this {
    if (device === "cpu" && [...this.state.values()].some((st) => Object.values(st.buffers).some((t) => t.device !== "cpu")))
      throw new OptimError(`${this.name}.to: moving state from webgpu to the CPU is asynchronous: use await opt.cpu()`);
    for (const st of this.state.values())
      for (const [k, t] of Object.entries(st.buffers)) {
        const moved = keep(t.to(device));
        if (moved !== t) t.dispose();
        st.buffers[k] = moved;
      }
    return this;
  }

  /** Moves the state buffers back to the CPU. */
  async cpu(): Promise<this> {
    for (const st of this.state.values())
      for (const [k, t] of Object.entries(st.buffers)) {
        const moved = keep(await t.cpu());
        if (moved !== t) t.dispose();
        st.buffers[k] = moved;
      }
    return this;
  }

  private stateDictWith(values: (t: Tensor) => Float32Array): OptimStateDict {
    const all = this.indexed();
    const state: OptimStateDict["state"] = {};
    all.forEach((p, i) => {
      const st = this.state.get(p);
      if (!st) return;
      const e: OptimStateDict["state"][number] = {};
      if (this.hasStep) e.step = st.step;
      for (const [k, t] of Object.entries(st.buffers)) e[k] = values(t);
      state[i] = e;
    });
    let next = 0;
    const param_groups = this.paramGroups.map((g) => {
      const { params, ...opts } = g;
      return { ...structuredClone(opts), params: params.map(() => next++) };
    });
    return { state, param_groups };
  }

  /** Restores state and group options saved by stateDict() for the same parameter layout. */
  loadStateDict(sd: OptimStateDict): void {
    if (!sd || typeof sd !== "object" || !sd.state || typeof sd.state !== "object" || Array.isArray(sd.state) || !Array.isArray(sd.param_groups))
      this.fail("loadStateDict: expected { state, param_groups }");
    for (const k of Object.keys(sd)) if (k !== "state" && k !== "param_groups") this.fail(`loadStateDict: unexpected key '${k}' (expected { state, param_groups })`);
    if (sd.param_groups.length !== this.paramGroups.length)
      this.fail(`loadStateDict: the state dict has ${sd.param_groups.length} parameter groups, this optimiser ${this.paramGroups.length}`);
    // parameter ids (torch's: any unique ids, matched to this optimiser's parameters in order)
    const ids = new Set<number>();
    sd.param_groups.forEach((sg, gi) => {
      if (!sg || typeof sg !== "object" || Array.isArray(sg)) this.fail(`loadStateDict: group ${gi} must be an object, got ${show(sg)}`);
      if (!Array.isArray(sg.params) || sg.params.length !== this.paramGroups[gi].params.length)
        this.fail(`loadStateDict: group ${gi} has ${sg.params?.length} parameters in the state dict, ${this.paramGroups[gi].params.length} here`);
      for (const id of sg.params) {
        if (typeof id !== "number" || !Number.isInteger(id) || id < 0) this.fail(`loadStateDict: group ${gi}: parameter id ${show(id)} is not an integer >= 0`);
        if (ids.has(id)) this.fail(`loadStateDict: parameter id ${id} appears twice`);
        ids.add(id);
      }
      // known options only, and every one of them, so that none is silently left as it is here
      const { params: _ids, ...opts } = sg;
      this.checkKeys(`loadStateDict: group ${gi}`, opts, this.defaults);
      for (const k of Object.keys(this.defaults)) if (!(k in sg)) this.fail(`loadStateDict: group ${gi} has no '${k}'`);
      if ("initial_lr" in sg) {
        const v = (sg as any).initial_lr;
        if (typeof v !== "number" || !Number.isFinite(v) || v < 0) this.fail(`loadStateDict: group ${gi}: initial_lr must be a finite number >= 0, got ${show(v ?? null)}`);
      }
    });
    for (const k of Object.keys(sd.state))
      if (!/^(0|[1-9]\d*)$/.test(k) || !ids.has(Number(k))) this.fail(`loadStateDict: state for parameter id ${show(k)}, which no group lists`);
    // check everything before changing anything
    const staged = new Map<Tensor, ParamState>();
    try {
      sd.param_groups.forEach((sg, gi) => {
        const { params, ...opts } = sg;
        this.checkKeys(`loadStateDict: group ${gi}`, opts, this.defaults);
        const merged = { ...this.paramGroups[gi], ...opts } as ParamGroup<O>;
        this.validate(merged, `loadStateDict: group ${gi}: `);
        params.forEach((idx, k) => {
          const p = this.paramGroups[gi].params[k];
          const e = sd.state[idx];
          if (e === undefined) return;
          if (!e || typeof e !== "object" || Array.isArray(e)) this.fail(`loadStateDict: parameter ${idx}: the state must be an object, got ${show(e)}`);
          if (this.hasStep ? typeof e.step !== "number" || !Number.isInteger(e.step) || e.step < 0 : e.step !== undefined)
            this.fail(`loadStateDict: parameter ${idx}: bad step ${show(e.step ?? null)}${this.hasStep ? " (an integer >= 0)" : ` (${this.name} keeps no step)`}`);
          const st: ParamState = { step: this.hasStep ? (e.step as number) : 0, buffers: {} };
          staged.set(p, st);
          for (const [key, v] of Object.entries(e)) {
            if (key === "step") continue;
            if (!this.bufferNames(merged).includes(key)) this.fail(`loadStateDict: parameter ${idx}: unexpected buffer '${key}'`);
            if (!(v instanceof Float32Array) || v.length !== p.size)
              this.fail(`loadStateDict: parameter ${idx}: buffer '${key}' must be a Float32Array of ${p.size} values for ${shapeStr(p.shape)}, got ${v instanceof Float32Array ? v.length + " values" : typeof v}`);
            const t = this.buffer(p);
            setValues(t, v);
            st.buffers[key] = t;
          }
        });
      });
    } catch (e) {
      for (const st of staged.values()) for (const t of Object.values(st.buffers)) t.dispose();
      throw e;
    }
    for (const st of this.state.values()) for (const t of Object.values(st.buffers)) t.dispose();
    this.state = staged;
    sd.param_groups.forEach((sg, gi) => {
      const { params, ...opts } = sg;
      Object.assign(this.paramGroups[gi], structuredClone(opts));
    });
  }

  /** Frees the state buffers. */
  dispose(): void {
    for (const st of this.state.values()) for (const t of Object.values(st.buffers)) t.dispose();
    this.state.clear();
  }
}
