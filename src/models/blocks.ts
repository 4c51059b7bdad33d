// Pieces shared by the zoo models: option checks, the residual block with torchvision's child
// names (conv1, bn1, ..., downsample), and the parameter-free "option A" shortcut.
import { Tensor, shapeStr, zeros } from "../tensor.js";
import { Module, ModuleError, checkNamedChildren, type Flow, type SummaryRow, type ModuleConfig } from "../nn/module.js";
import { ReLU } from "../nn/activation.js";
import { registerModuleType } from "../nn/config.js";
import { add, conv2d } from "../ops/index.js";
import { checkOptions as check } from "../options.js";
import { describe, layerOptions } from "../nn/shapes.js";
import { runChain } from "../nn/fusion.js";

export function checkInt(model: string, what: string, v: unknown, min: number): asserts v is number {
  if (!Number.isInteger(v) || (v as number) < min) throw new Error(`${model}: ${what} must be an integer >= ${min}, got ${describe(v)}`);
}

/** A misspelt option (`clases: 10`) would otherwise be ignored and give a silently different
 *  model: name it, the option it is probably a slip for, and the options there are. */
export function checkOptions(model: string, options: unknown, known: readonly string[]): void {
  check(model, options, known);
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** A block of He et al. 2016 ("Deep Residual Learning for Image Recognition"): the body's
 *  layers in order, plus the shortcut (identity, or the `downsample` module), then ReLU:
 *  relu(body(x) + shortcut(x)). With residual = false it is the "plain" twin of section 4.1,
 *  relu(body(x)), with the same layers and names. Children keep torchvision's names (conv1,
 *  bn1, ..., downsample) so that its state dicts load unchanged. */
export class ResidualBlock extends Module {
  readonly type = "ResidualBlock";
  readonly body: [string, Module][];
  readonly downsample: Module | null;
  readonly residual: boolean;
  private readonly act: Module;

  constructor(body: [string, Module][], options: { downsample?: Module | null; residual?: boolean } = {}) {
    super();
    checkNamedChildren("ResidualBlock", body);
    check("ResidualBlock", options, ["downsample", "residual"]);
    const { downsample = null, residual = true } = options;
    if (!body.length) throw new Error("ResidualBlock: the body needs at least one layer");
    if (typeof residual !== "boolean") throw new Error(`ResidualBlock: residual must be true or false, got ${describe(residual)}`);
    if (downsample && !residual) throw new Error("ResidualBlock: a plain block (residual: false) has no shortcut, so no downsample");
    this.body = body.map(([n, m]) => [n, this.registerModule(n, m)]);
    this.downsample = downsample ? this.registerModule("downsample", downsample) : null;
    this.residual = residual;
    this.act = this.registerModule("relu", new ReLU());
  }

  replaceModule(name: string, m: Module): Module {
    const old = super.replaceModule(name, m);
    for (const e of this.body) if (e[0] === name) e[1] = m;
    if (name === "downsample") (this as { downsample: Module | null }).downsample = m;
    if (name === "relu") (this as unknown as { act: Module }).act = m;
    return old;
  }

  forward(x: Tensor): Tensor {
    // In eval mode the body's Conv2d -> BatchNorm2d [-> ReLU] pairs, and its last pair with the
    // shortcut's add and the ReLU, run as fused ops (src/nn/fusion.ts); same bits either way.
    const shortcut = (yShape: readonly number[]) => {
      const s = this.downsample ? this.downsample.call(x) : x;
      if (!sameShape(yShape, s.shape)) throw new ModuleError(this, x.shape, new Error(this.mismatch(yShape, s.shape)));
      return s;
    };
    const run = runChain(this.body.map(([, m]) => m), x, { shortcut: this.residual ? shortcut : null, relu: this.act });
    if (run.done) return run.y;
    let y = run.y;
    if (this.residual) {
      const s = this.downsample ? this.downsample.call(x) : x;
      if (!sameShape(y.shape, s.shape)) throw new ModuleError(this, x.shape, new Error(this.mismatch(y.shape, s.shape)));
      y = add(y, s);
    }
    return this.act.call(y);
  }

  private mismatch(y: readonly number[], s: readonly number[]) {
    return `the body gives ${shapeStr(y)} but the shortcut gives ${shapeStr(s)}${this.downsample ? "" : "; a block that changes the shape needs a downsample (projection) shortcut"}`;
  }

  outputShape(i: number[]): number[] {
    let y = i;
    for (const [, m] of this.body) y = m.outputShape(y);
    if (this.residual) {
      const s = this.downsample ? this.downsample.outputShape(i) : i;
      if (!sameShape(y, s)) throw new Error(this.mismatch(y, s));
    }
    return y;
  }

  summarize(flow: Flow, rows: SummaryRow[], name: string): Flow {
    const at = (n: string) => (name ? `${name}.${n}` : n);
    let f = flow;
    for (const [n, m] of this.body) f = m.summarize(f, rows, at(n));
    if (this.residual) {
      const s = this.downsample ? this.downsample.summarize(flow, rows, at("downsample")) : flow;
      if (!sameShape(f.shape, s.shape)) throw new ModuleError(this, flow.shape, new Error(this.mismatch(f.shape, s.shape)));
      // the wider receptive field of the two paths counts
      f = { ...f, rf: [Math.max(f.rf[0], s.rf[0]), Math.max(f.rf[1], s.rf[1])], jump: [Math.max(f.jump[0], s.jump[0]), Math.max(f.jump[1], s.jump[1])] };
      rows.push({ name: at("add"), layer: "Add(body, shortcut)", inputShape: flow.shape, outputShape: f.shape, weightShape: null, params: 0, trainable: 0, macs: 0, rf: f.rf });
    }
    return this.act.summarize(f, rows, at("relu"));
  }

  config(): ModuleConfig {
    return { type: this.type, args: [{ residual: this.residual }], children: [...this.namedChildren()].map(([n, m]) => [n, m.config()]) };
  }

  protected extraRepr() {
    return this.residual ? "" : "residual=False";
  }
}
registerModuleType("ResidualBlock", (a, kids, names) => {
  const body = names.map((n, i) => [n, kids[i]] as [string, Module]).filter(([n]) => n !== "downsample" && n !== "relu");
  const ds = names.indexOf("downsample");
  const o = layerOptions<{ residual?: boolean }>("ResidualBlock", a[0], ["residual"]);
  return new ResidualBlock(body, { downsample: ds >= 0 ? kids[ds] : null, residual: o.residual ?? true });
});

/** Option A of He et al. 2016 (section 3.3, used for CIFAR-10 in section 4.2): the shortcut is
 *  still the identity, taken with stride 2 where the block halves the map, and the extra
 *  channels are zeros ("this option introduces no extra parameter"); as fb.resnet.torch does,
 *  the input fills the first channels and the zeros follow. Computed as a 1x1 convolution whose
 *  fixed weight selects input channel c for output channel c: 1 * x + 0 * ... is x exactly, and
 *  the conv op gives the stride and the backward. The weight is a non-persistent buffer, so it
 *  is neither a parameter nor in the state dict. */
export class ZeroPadShortcut extends Module {
  readonly type = "ZeroPadShortcut";
  private readonly select: Tensor;

  constructor(readonly inChannels: number, readonly outChannels: number, readonly stride = 1) {
    super();
    checkInt("ZeroPadShortcut", "in_channels", inChannels, 1);
    checkInt("ZeroPadShortcut", "stride", stride, 1);
    if (!Number.isInteger(outChannels) || outChannels < inChannels) throw new Error(`ZeroPadShortcut: out_channels must be an integer >= in_channels ${inChannels}, got ${describe(outChannels)}`);
    // in the engine's memory from the start: its size is checked there before anything is built
    const w = zeros([outChannels, inChannels, 1, 1]);
    for (let c = 0; c < inChannels; c++) w.data[c * inChannels + c] = 1;
    this.select = this.registerBuffer("select", w, false)!;
  }

  outputShape(i: number[]): number[] {
    if (i.length !== 4) throw new Error(`input must be rank 4 (N,C,H,W), got rank ${i.length} ${shapeStr(i)}`);
    if (i[1] !== this.inChannels) throw new Error(`expected ${this.inChannels} input channels, got ${i[1]}`);
    const s = this.stride;
    return [i[0], this.outChannels, Math.floor((i[2] - 1) / s) + 1, Math.floor((i[3] - 1) / s) + 1];
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.select, null, { stride: this.stride });
  }

  receptiveField(flow: Flow) {
    return { jump: [flow.jump[0] * this.stride, flow.jump[1] * this.stride] as [number, number] };
  }

  protected args() {
    return [this.inChannels, this.outChannels, this.stride];
  }

  protected extraRepr() {
    return `${this.inChannels}, ${this.outChannels}, stride=${this.stride}`;
  }
}
registerModuleType("ZeroPadShortcut", (a) => new ZeroPadShortcut(a[0], a[1], a[2]));
