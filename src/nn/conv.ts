// Convolutions and fully connected layers: the layers with weights.
import { Tensor, empty } from "../tensor.js";
import { Module, windowRF, type Flow } from "./module.js";
import { toPair, pairStr, expectRank, windowOut, layerOptions, checkBool, describe, type Pair } from "./shapes.js";
import { defaultLayerInit } from "./init.js";
import { conv2d, conv_transpose2d, linear } from "../ops/index.js";
import { checkOptions, keysOf } from "../options.js";

export interface Conv2dOptions {
  stride?: number | number[];
  padding?: number | number[];
  dilation?: number | number[];
  groups?: number;
  /** add a learnable bias (default true) */
  bias?: boolean;
}

const CONV2D_OPTIONS = keysOf<Conv2dOptions>({ stride: true, padding: true, dilation: true, groups: true, bias: true });

function checkChannels(type: string, inC: number, outC: number, groups: number) {
  for (const [what, v] of [["in_channels", inC], ["out_channels", outC], ["groups", groups]] as const)
    if (!Number.isInteger(v) || v < 1) throw new Error(`${type}: ${what} must be a positive integer, got ${describe(v)}`);
  if (inC % groups || outC % groups) throw new Error(`${type}: in_channels ${inC} and out_channels ${outC} must both be divisible by groups ${groups}`);
}

function convRepr(inC: number, outC: number, k: Pair, s: Pair, p: Pair, d: Pair, groups: number, bias: boolean, extra = "") {
  let r = `${inC}, ${outC}, kernel_size=${pairStr(k)}`;
  if (s[0] !== 1 || s[1] !== 1) r += `, stride=${pairStr(s)}`;
  if (p[0] || p[1]) r += `, padding=${pairStr(p)}`;
  if (d[0] !== 1 || d[1] !== 1) r += `, dilation=${pairStr(d)}`;
  if (groups !== 1) r += `, groups=${groups}`;
  if (!bias) r += ", bias=False";
  return r + extra;
}

export class Conv2d extends Module {
  readonly type: string = "Conv2d";
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernelSize: Pair;
  readonly stride: Pair;
  readonly padding: Pair;
  readonly dilation: Pair;
  readonly groups: number;

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: number | number[], readonly options: Conv2dOptions = {}) {
    super();
    const { stride = 1, padding = 0, dilation = 1, groups = 1, bias = true } = layerOptions<Conv2dOptions>("Conv2d", options, ["stride", "padding", "dilation", "groups", "bias"]);
    checkChannels("Conv2d", inChannels, outChannels, groups);
    checkBool("Conv2d: bias", bias);
    this.kernelSize = toPair("Conv2d: kernel_size", kernelSize, 1);
    this.stride = toPair("Conv2d: stride", stride, 1);
    this.padding = toPair("Conv2d: padding", padding, 0);
    this.dilation = toPair("Conv2d: dilation", dilation, 1);
    this.groups = groups;
    this.weight = this.registerParameter("weight", empty([outChannels, inChannels / groups, ...this.kernelSize]))!;
    this.bias = bias ? this.registerParameter("bias", empty([outChannels])) : null;
    defaultLayerInit(this.weight, this.bias);
  }

  outputShape(i: number[]): number[] {
    expectRank(i, [4]);
    if (i[1] !== this.inChannels) throw new Error(`expected ${this.inChannels} input channels, got ${i[1]}`);
    const [k, s, p, d] = [this.kernelSize, this.stride, this.padding, this.dilation];
    return [i[0], this.outChannels, windowOut(i[2], k[0], s[0], p[0], d[0], false, "height"), windowOut(i[3], k[1], s[1], p[1], d[1], false, "width")];
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }

  /** each output value is a dot product over (in_channels / groups) x kh x kw inputs */
  macs(_i: number[], o: number[]): number {
    return o[0] * o[1] * o[2] * o[3] * (this.inChannels / this.groups) * this.kernelSize[0] * this.kernelSize[1];
  }

  receptiveField(flow: Flow) {
    return windowRF(flow, this.kernelSize, this.stride, this.dilation);
  }

  protected args() {
    return [this.inChannels, this.outChannels, this.kernelSize, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups, bias: !!this.bias }];
  }

  protected extraRepr() {
    return convRepr(this.inChannels, this.outChannels, this.kernelSize, this.stride, this.padding, this.dilation, this.groups, !!this.bias);
  }
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  outputPadding?: number | number[];
}

const CONV_TRANSPOSE2D_OPTIONS = keysOf<ConvTranspose2dOptions>({ stride: true, padding: true, outputPadding: true, dilation: true, groups: true, bias: true });

/** The "fractionally strided" convolution (FCN / U-Net upsampler): the gradient of a Conv2d with
 *  respect to its input. Weight [in, out/groups, kh, kw] as in PyTorch. */
export class ConvTranspose2d extends Module {
  readonly type: string = "ConvTranspose2d";
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernelSize: Pair;
  readonly stride: Pair;
  readonly padding: Pair;
  readonly outputPadding: Pair;
  readonly dilation: Pair;
  readonly groups: number;

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: number | number[], options: ConvTranspose2dOptions = {}) {
    super();
    const { stride = 1, padding = 0, outputPadding = 0, dilation = 1, groups = 1, bias = true } = layerOptions<ConvTranspose2dOptions>("ConvTranspose2d", options, ["stride", "padding", "outputPadding", "dilation", "groups", "bias"]);
    checkChannels("ConvTranspose2d", inChannels, outChannels, groups);
    checkBool("ConvTranspose2d: bias", bias);
    this.kernelSize = toPair("ConvTranspose2d: kernel_size", kernelSize, 1);
    this.stride = toPair("ConvTranspose2d: stride", stride, 1);
    this.padding = toPair("ConvTranspose2d: padding", padding, 0);
    this.outputPadding = toPair("ConvTranspose2d: output_padding", outputPadding, 0);
    this.dilation = toPair("ConvTranspose2d: dilation", dilation, 1);
    this.groups = groups;
    for (let i = 0; i < 2; i++)
      if (this.outputPadding[i] >= Math.max(this.stride[i], this.dilation[i]))
        throw new Error(`ConvTranspose2d: output_padding ${pairStr(this.outputPadding)} must be smaller than stride or dilation`);
    this.weight = this.registerParameter("weight", empty([inChannels, outChannels / groups, ...this.kernelSize]))!;
    this.bias = bias ? this.registerParameter("bias", empty([outChannels])) : null;
    defaultLayerInit(this.weight, this.bias);
  }

  outputShape(i: number[]): number[] {
    expectRank(i, [4]);
    if (i[1] !== this.inChannels) throw new Error(`expected ${this.inChannels} input channels, got ${i[1]}`);
    const o = [0, 1].map((a) => (i[2 + a] - 1) * this.stride[a] - 2 * this.padding[a] + this.dilation[a] * (this.kernelSize[a] - 1) + this.outputPadding[a] + 1);
    if (o.some((v) => v < 1)) throw new Error(`output would be ${o.join("x")}: padding ${pairStr(this.padding)} is too large`);
    return [i[0], this.outChannels, o[0], o[1]];
  }

  forward(x: Tensor): Tensor {
    return conv_transpose2d(x, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      output_padding: this.outputPadding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }

  /** every input value is scattered through (out_channels / groups) x kh x kw weights */
  macs(i: number[]): number {
    return i[0] * i[1] * i[2] * i[3] * (this.outChannels / this.groups) * this.kernelSize[0] * this.kernelSize[1];
  }

  /** an output pixel sees ceil(k / s) input pixels along each axis; its spacing shrinks by s */
  receptiveField(flow: Flow) {
    const rf = [0, 1].map((a) => flow.rf[a] + (Math.ceil((this.dilation[a] * (this.kernelSize[a] - 1) + 1) / this.stride[a]) - 1) * flow.jump[a]) as Pair;
    const jump = [0, 1].map((a) => flow.jump[a] / this.stride[a]) as Pair;
    return { rf, jump };
  }

  protected args() {
    return [this.inChannels, this.outChannels, this.kernelSize, { stride: this.stride, padding: this.padding, outputPadding: this.outputPadding, dilation: this.dilation, groups: this.groups, bias: !!this.bias }];
  }

  protected extraRepr() {
    const op = this.outputPadding[0] || this.outputPadding[1] ? `, output_padding=${pairStr(this.outputPadding)}` : "";
    return convRepr(this.inChannels, this.outChannels, this.kernelSize, this.stride, this.padding, this.dilation, this.groups, !!this.bias, op);
  }
}

export class Linear extends Module {
  readonly type: string = "Linear";
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, options: { bias?: boolean } = {}) {
    super();
    for (const [what, v] of [["in_features", inFeatures], ["out_features", outFeatures]] as const)
      if (!Number.isInteger(v) || v < 1) throw new Error(`Linear: ${what} must be a positive integer, got ${describe(v)}`);
    const { bias = true } = layerOptions<{ bias?: boolean }>("Linear", options, ["bias"]);
    checkBool("Linear: bias", bias);
    this.weight = this.registerParameter("weight", empty([outFeatures, inFeatures]))!;
    this.bias = bias ? this.registerParameter("bias", empty([outFeatures])) : null;
    defaultLayerInit(this.weight, this.bias);
  }

  outputShape(i: number[]): number[] {
    if (!Array.isArray(i)) throw new Error(`input must be a shape (an array of sizes), got ${describe(i)}`);
    if (i.length !== 2) throw new Error(`expected [N, ${this.inFeatures}] (put a Flatten before a Linear after convolutions), got rank ${i.length} [${i}]`);
    if (i[1] !== this.inFeatures) throw new Error(`expected ${this.inFeatures} input features, got ${i[1]}`);
    return [i[0], this.outFeatures];
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }

  macs(i: number[]): number {
    return i[0] * this.inFeatures * this.outFeatures;
  }

  /** after a Flatten, every output sees the whole feature map */
  receptiveField(flow: Flow): Partial<Flow> {
    if (!flow.spatial) return {};
    const rf = [0, 1].map((a) => flow.rf[a] + (flow.spatial![a] - 1) * flow.jump[a]) as Pair;
    return { rf, spatial: undefined };
  }

  protected args() {
    return [this.inFeatures, this.outFeatures, { bias: !!this.bias }];
  }

  protected extraRepr() {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}${this.bias ? "" : ", bias=False"}`;
  }
}
