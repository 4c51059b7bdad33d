// Containers: Sequential (a chain) and the two branch forms that Inception, ResNet and U-Net
// need: Residual (body(x) + shortcut(x)) and Concat (branches joined on the channel axis).
import { Tensor, shapeStr } from "../tensor.js";
import { Module, ModuleError, checkNamedChildren, type Flow, type SummaryRow, type ModuleConfig } from "./module.js";
import { add, cat } from "../ops/index.js";
import { runChain } from "./fusion.js";

/** Children run in order. Built from modules (named "0", "1", ...) or from an object of named
 *  modules, as PyTorch's Sequential(OrderedDict(...)). */
export class Sequential extends Module {
  readonly type = "Sequential";

  constructor(...layers: Module[] | [Record<string, Module>] | [[string, Module][]]) {
    super();
    const first = layers[0] as any;
    if (layers.length === 1 && Array.isArray(first)) {
      checkNamedChildren("Sequential", first);
      for (const [n, m] of first) this.registerModule(n, m);
    }
    else if (layers.length === 1 && first && !(first instanceof Module) && typeof first === "object")
      for (const [n, m] of Object.entries<Module>(first)) this.registerModule(n, m);
    else (layers as Module[]).forEach((m, i) => this.registerModule(String(i), m));
  }

  /** Append a layer (named by its index unless a name is given). */
  add(m: Module, name = String(this._modules.size)): this {
    this.registerModule(name, m);
    return this;
  }

  get length(): number {
    return this._modules.size;
  }

  /** A child by index or name. */
  at(i: number | string): Module {
    const m = typeof i === "number" ? [...this._modules.values()][i < 0 ? this._modules.size + i : i] : this._modules.get(i);
    if (!m) throw new Error(`Sequential: no layer ${JSON.stringify(i)} (has ${[...this._modules.keys()].join(", ")})`);
    return m;
  }

  forward(x: Tensor): Tensor {
    // in order; in eval mode Conv2d -> BatchNorm2d [-> ReLU] runs as one fused op (src/nn/fusion.ts)
    return runChain([...this._modules.values()], x).y;
  }

  outputShape(i: number[]): number[] {
    for (const m of this._modules.values()) i = m.outputShape(i);
    return i;
  }

  summarize(flow: Flow, rows: SummaryRow[], name: string): Flow {
    for (const [n, m] of this._modules) flow = m.summarize(flow, rows, name ? `${name}.${n}` : n);
    return flow;
  }

  config(): ModuleConfig {
    return { type: this.type, children: [...this._modules].map(([n, m]) => [n, m.config()]) };
  }
}

/** body(x) + shortcut(x), the ResNet block's sum; no shortcut module means the identity.
 *  Follow it with a ReLU in a Sequential for the "add then ReLU" of the paper. */
export class Residual extends Module {
  readonly type = "Residual";
  readonly body: Module;
  readonly shortcut: Module | null;

  constructor(body: Module, shortcut: Module | null = null) {
    super();
    this.body = this.registerModule("body", body);
    this.shortcut = shortcut ? this.registerModule("shortcut", shortcut) : null;
  }

  replaceModule(name: string, m: Module): Module {
    const old = super.replaceModule(name, m);
    if (name === "body") (this as { body: Module }).body = m;
    else (this as { shortcut: Module | null }).shortcut = m;
    return old;
  }

  forward(x: Tensor): Tensor {
    const y = this.body.call(x);
    const s = this.shortcut ? this.shortcut.call(x) : x;
    if (!sameShape(y.shape, s.shape))
      throw new ModuleError(this, x.shape, new Error(`body gives ${shapeStr(y.shape)} but the shortcut gives ${shapeStr(s.shape)}; use a projection shortcut (1x1 conv with stride) to match`));
    return add(y, s);
  }

  outputShape(i: number[]): number[] {
    const y = this.body.outputShape(i);
    const s = this.shortcut ? this.shortcut.outputShape(i) : i;
    if (!sameShape(y, s)) throw new Error(`body gives ${shapeStr(y)} but the shortcut gives ${shapeStr(s)}`);
    return y;
  }

  summarize(flow: Flow, rows: SummaryRow[], name: string): Flow {
    const at = (n: string) => (name ? `${name}.${n}` : n);
    const y = this.body.summarize(flow, rows, at("body"));
    const s = this.shortcut ? this.shortcut.summarize(flow, rows, at("shortcut")) : flow;
    if (!sameShape(y.shape, s.shape))
      throw new ModuleError(this, flow.shape, new Error(`body gives ${shapeStr(y.shape)} but the shortcut gives ${shapeStr(s.shape)}`));
    const out = merge([y, s]);
    rows.push(joinRow(name, "Add(body, shortcut)", flow.shape, out));
    return out;
  }

  config(): ModuleConfig {
    const children: [string, ModuleConfig][] = [["body", this.body.config()]];
    if (this.shortcut) children.push(["shortcut", this.shortcut.config()]);
    return { type: this.type, children };
  }
}

/** Branches on the same input, outputs concatenated on the channel axis (Inception, U-Net). */
export class Concat extends Module {
  readonly type = "Concat";

  constructor(branches: Module[] | [string, Module][]) {
    super();
    if (!Array.isArray(branches) || !branches.length) throw new Error("Concat: needs at least one branch");
    branches.forEach((b, i) => (Array.isArray(b) ? this.registerModule(b[0], b[1]) : this.registerModule(String(i), b)));
  }

  forward(x: Tensor): Tensor {
    const outs = [...this._modules.values()].map((m) => m.call(x));
    try {
      this.joinShape(outs.map((t) => t.shape as number[]));
    } catch (e) {
      throw new ModuleError(this, x.shape, e);
    }
    return outs.length === 1 ? outs[0] : cat(outs, 1);
  }

  private joinShape(shapes: number[][]): number[] {
    const [f] = shapes;
    for (const s of shapes)
      if (s.length !== f.length || s.some((d, i) => i !== 1 && d !== f[i]))
        throw new Error(`branch outputs ${shapes.map(shapeStr).join(", ")} differ outside the channel axis`);
    return [f[0], shapes.reduce((a, s) => a + s[1], 0), ...f.slice(2)];
  }

  outputShape(i: number[]): number[] {
    return this.joinShape([...this._modules.values()].map((m) => m.outputShape(i)));
  }

  summarize(flow: Flow, rows: SummaryRow[], name: string): Flow {
    const outs = [...this._modules].map(([n, m]) => m.summarize(flow, rows, name ? `${name}.${n}` : n));
    let shape: number[];
    try {
      shape = this.joinShape(outs.map((f) => f.shape));
    } catch (e) {
      throw new ModuleError(this, flow.shape, e);
    }
    const out = { ...merge(outs), shape };
    rows.push(joinRow(name, `Concat(dim=1)`, flow.shape, out));
    return out;
  }

  config(): ModuleConfig {
    return { type: this.type, children: [...this._modules].map(([n, m]) => [n, m.config()]) };
  }
}

function sameShape(a: readonly number[], b: readonly number[]) {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** branches meeting: the widest receptive field counts */
function merge(flows: Flow[]): Flow {
  const f = flows[0];
  return {
    ...f,
    rf: [Math.max(...flows.map((g) => g.rf[0])), Math.max(...flows.map((g) => g.rf[1]))],
    jump: [Math.max(...flows.map((g) => g.jump[0])), Math.max(...flows.map((g) => g.jump[1]))],
  };
}

function joinRow(name: string, layer: string, input: number[], out: Flow): SummaryRow {
  return { name, layer, inputShape: input, outputShape: out.shape, weightShape: null, params: 0, trainable: 0, macs: 0, rf: out.rf };
}
