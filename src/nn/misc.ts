// Layers without weights that reshape or regularise: Dropout, Flatten, Upsample, Identity.
import { Tensor } from "../tensor.js";
import { Module, type Flow } from "./module.js";
import { expectRank, toPair, layerOptions, checkBool, describe, type Pair } from "./shapes.js";
import { defaultGenerator, Generator } from "../random.js";
import { flatten, interpolate, dropout } from "../ops/index.js";
import { checkOptions, keysOf, describeShown } from "../options.js";

/** Inverted dropout (training only). Each call draws the mask's seed from this layer's own
 *  generator (forked from the default one when built), so a run is reproducible and a
 *  checkpoint can save where it stands. */
export class Dropout extends Module {
  readonly type = "Dropout";
  rng: Generator;

  constructor(readonly p = 0.5) {
    super();
    if (typeof p !== "number" || !(p >= 0 && p < 1)) throw new Error(`Dropout: p must be a number in [0, 1) (new Dropout(0.5)), got ${describeShown(p)}`);
    this.rng = defaultGenerator.fork();
  }

  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    return dropout(x, { p: this.p, training: true, seed: this.rng.nextUint32() });
  }

  protected args() {
    return [this.p];
  }

  protected extraRepr() {
    return `p=${this.p}`;
  }
}

export class Flatten extends Module {
  readonly type = "Flatten";

  constructor(readonly startDim = 1) {
    super();
    if (!Number.isInteger(startDim) || startDim < 0) throw new Error(`Flatten: start_dim must be an integer >= 0, got ${describe(startDim)}`);
    // PyTorch's Flatten(start_dim, end_dim): only end_dim -1 (the last) is supported here
    if (arguments.length > 1 && arguments[1] !== -1)
      throw new Error(`Flatten: flattens from start_dim to the last dimension; end_dim ${describe(arguments[1])} (other than -1) is not supported`);
  }

  outputShape(i: number[]): number[] {
    if (this.startDim >= i.length) throw new Error(`start_dim ${this.startDim} is out of range for rank ${i.length}`);
    return [...i.slice(0, this.startDim), i.slice(this.startDim).reduce((a, b) => a * b, 1)];
  }

  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim);
  }

  /** remember the map size: the next Linear sees all of it */
  receptiveField(flow: Flow): Partial<Flow> {
    return flow.shape.length === 4 && this.startDim <= 1 ? { spatial: [flow.shape[2], flow.shape[3]] } : {};
  }

  protected args() {
    return this.startDim === 1 ? [] : [this.startDim];
  }

  protected extraRepr() {
    return `start_dim=${this.startDim}`;
  }
}

export interface UpsampleOptions {
  size?: number | number[];
  scaleFactor?: number | number[];
  /** "nearest" (PyTorch's default) or "bilinear" */
  mode?: "nearest" | "bilinear";
  alignCorners?: boolean;
}

export class Upsample extends Module {
  readonly type = "Upsample";
  readonly size: Pair | null;
  readonly scaleFactor: [number, number] | null;
  readonly mode: "nearest" | "bilinear";
  readonly alignCorners: boolean;

  constructor(options: UpsampleOptions = {}) {
    super();
    const { size, scaleFactor, mode = "nearest", alignCorners = false } = layerOptions<UpsampleOptions>("Upsample", options, ["size", "scaleFactor", "mode", "alignCorners"]);
    checkBool("Upsample: alignCorners", alignCorners);
    if ((size === undefined) === (scaleFactor === undefined)) throw new Error("Upsample: give exactly one of size and scaleFactor");
    if (mode !== "nearest" && mode !== "bilinear") throw new Error(`Upsample: mode ${describe(mode)} is not supported (nearest, bilinear)`);
    this.size = size === undefined ? null : toPair("Upsample: size", size, 1);
    const sf = scaleFactor === undefined ? null : Array.isArray(scaleFactor) ? scaleFactor : [scaleFactor, scaleFactor];
    if (sf && (sf.length !== 2 || sf.some((v) => typeof v !== "number" || !(v > 0) || !Number.isFinite(v))))
      throw new Error(`Upsample: scaleFactor must be a finite number > 0 or a pair of them, got ${describe(scaleFactor)}`);
    this.scaleFactor = sf as [number, number] | null;
    this.mode = mode;
    this.alignCorners = alignCorners;
  }

  outputShape(i: number[]): number[] {
    expectRank(i, [4]);
    const hw = this.size ?? [Math.floor(i[2] * this.scaleFactor![0]), Math.floor(i[3] * this.scaleFactor![1])];
    if (hw[0] < 1 || hw[1] < 1) throw new Error(`output would be ${hw[0]}x${hw[1]}`);
    return [i[0], i[1], hw[0], hw[1]];
  }

  forward(x: Tensor): Tensor {
    const attrs: any = { mode: this.mode };
    if (this.mode === "bilinear") attrs.align_corners = this.alignCorners;
    if (this.size) attrs.size = this.size;
    else attrs.scale_factor = this.scaleFactor;
    return interpolate(x, attrs);
  }

  /** positions move closer by the scale; bilinear also mixes a 2x2 neighbourhood */
  receptiveField(flow: Flow, out: number[]): Partial<Flow> {
    const s = [out[2] / flow.shape[2], out[3] / flow.shape[3]];
    const grow = this.mode === "bilinear" ? 1 : 0;
    return { rf: [flow.rf[0] + grow * flow.jump[0], flow.rf[1] + grow * flow.jump[1]], jump: [flow.jump[0] / s[0], flow.jump[1] / s[1]] };
  }

  protected args() {
    const o: UpsampleOptions = this.size ? { size: this.size } : { scaleFactor: this.scaleFactor! };
    return [{ ...o, mode: this.mode, alignCorners: this.alignCorners }];
  }

  protected extraRepr() {
    return `${this.size ? `size=${this.size}` : `scale_factor=${this.scaleFactor}`}, mode='${this.mode}'${this.mode === "bilinear" && this.alignCorners ? ", align_corners=True" : ""}`;
  }
}

export class Identity extends Module {
  readonly type = "Identity";
  forward(x: Tensor): Tensor {
    return x;
  }
}
