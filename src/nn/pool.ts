// Pooling layers: no parameters; they shrink the feature map and grow the receptive field.
import { Tensor } from "../tensor.js";
import { Module, windowRF, type Flow } from "./module.js";
import { toPair, pairStr, expectRank, windowOut, layerOptions, checkBool, type Pair } from "./shapes.js";
import { max_pool2d, avg_pool2d, adaptive_avg_pool2d, global_avg_pool2d } from "../ops/index.js";
import { checkOptions } from "../options.js";

export interface PoolOptions {
  /** default: the kernel size (non-overlapping) */
  stride?: number | number[];
  padding?: number | number[];
  ceilMode?: boolean;
}

abstract class Pool2d extends Module {
  readonly kernelSize: Pair;
  readonly stride: Pair;
  readonly padding: Pair;
  readonly ceilMode: boolean;
  dilation: Pair = [1, 1];

  constructor(type: string, kernelSize: number | number[], options: PoolOptions, known: string[]) {
    super();
    const { stride, padding = 0, ceilMode = false } = layerOptions<PoolOptions>(type, options, ["stride", "padding", "ceilMode", ...known]);
    checkBool(`${type}: ceilMode`, ceilMode);
    this.kernelSize = toPair(`${type}: kernel_size`, kernelSize, 1);
    this.stride = toPair(`${type}: stride`, stride ?? this.kernelSize, 1);
    this.padding = toPair(`${type}: padding`, padding, 0);
    this.ceilMode = ceilMode;
    // PyTorch's rule: padding larger than half the window would make windows of padding only
    if (this.padding[0] * 2 > this.kernelSize[0] || this.padding[1] * 2 > this.kernelSize[1])
      throw new Error(`${type}: padding ${pairStr(this.padding)} must be at most half the kernel size ${pairStr(this.kernelSize)}`);
  }

  outputShape(i: number[]): number[] {
    expectRank(i, [4]);
    const [k, s, p, d] = [this.kernelSize, this.stride, this.padding, this.dilation];
    return [i[0], i[1], windowOut(i[2], k[0], s[0], p[0], d[0], this.ceilMode, "height"), windowOut(i[3], k[1], s[1], p[1], d[1], this.ceilMode, "width")];
  }

  receptiveField(flow: Flow) {
    return windowRF(flow, this.kernelSize, this.stride, this.dilation);
  }

  protected attrs() {
    return { kernel_size: this.kernelSize, stride: this.stride, padding: this.padding, ceil_mode: this.ceilMode };
  }

  protected extraRepr() {
    let r = `kernel_size=${pairStr(this.kernelSize)}, stride=${pairStr(this.stride)}`;
    if (this.padding[0] || this.padding[1]) r += `, padding=${pairStr(this.padding)}`;
    if (this.dilation[0] !== 1 || this.dilation[1] !== 1) r += `, dilation=${pairStr(this.dilation)}`;
    if (this.ceilMode) r += ", ceil_mode=True";
    return r;
  }
}

export class MaxPool2d extends Pool2d {
  readonly type = "MaxPool2d";

  constructor(kernelSize: number | number[], options: PoolOptions & { dilation?: number | number[] } = {}) {
    super("MaxPool2d", kernelSize, options, ["dilation"]);
    this.dilation = toPair("MaxPool2d: dilation", options?.dilation ?? 1, 1);
  }

  forward(x: Tensor): Tensor {
    return max_pool2d(x, { ...this.attrs(), dilation: this.dilation });
  }

  protected args() {
    return [this.kernelSize, { stride: this.stride, padding: this.padding, dilation: this.dilation, ceilMode: this.ceilMode }];
  }
}

export class AvgPool2d extends Pool2d {
  readonly type = "AvgPool2d";
  readonly countIncludePad: boolean;

  constructor(kernelSize: number | number[], options: PoolOptions & { countIncludePad?: boolean } = {}) {
    super("AvgPool2d", kernelSize, options, ["countIncludePad"]);
    this.countIncludePad = checkBool("AvgPool2d: countIncludePad", options?.countIncludePad ?? true);
  }

  forward(x: Tensor): Tensor {
    return avg_pool2d(x, { ...this.attrs(), count_include_pad: this.countIncludePad });
  }

  protected args() {
    return [this.kernelSize, { stride: this.stride, padding: this.padding, ceilMode: this.ceilMode, countIncludePad: this.countIncludePad }];
  }
}

/** Average over adaptive windows so that the output is `outputSize` whatever the input. */
export class AdaptiveAvgPool2d extends Module {
  readonly type = "AdaptiveAvgPool2d";
  readonly outputSize: Pair;

  constructor(outputSize: number | number[]) {
    super();
    this.outputSize = toPair("AdaptiveAvgPool2d: output_size", outputSize, 1);
  }

  outputShape(i: number[]): number[] {
    expectRank(i, [4]);
    return [i[0], i[1], ...this.outputSize];
  }

  forward(x: Tensor): Tensor {
    return adaptive_avg_pool2d(x, this.outputSize);
  }

  /** PyTorch's windows are [floor(i*H/o), ceil((i+1)*H/o)): at most ceil(H/o) + 1 wide when
   *  H is not a multiple of o; the widest one bounds the receptive field */
  receptiveField(flow: Flow) {
    const H = [flow.shape[2], flow.shape[3]];
    const o = this.outputSize;
    const k = [0, 1].map((a) => {
      // (the bound itself for an output too large to walk: it is what the windows reach there)
      if (o[a] > 1 << 16) return H[a] % o[a] ? Math.ceil(H[a] / o[a]) + 1 : H[a] / o[a];
      let w = 0;
      for (let j = 0; j < o[a]; j++) w = Math.max(w, Math.ceil(((j + 1) * H[a]) / o[a]) - Math.floor((j * H[a]) / o[a]));
      return w;
    }) as Pair;
    const s = [0, 1].map((a) => Math.max(1, Math.floor(H[a] / o[a]))) as Pair;
    return windowRF(flow, k, s);
  }

  protected args() {
    return [this.outputSize];
  }

  protected extraRepr() {
    return `output_size=${pairStr(this.outputSize)}`;
  }
}

/** Average of each whole feature map: [N, C, H, W] -> [N, C, 1, 1] (GoogLeNet, ResNet heads). */
export class GlobalAvgPool2d extends Module {
  readonly type = "GlobalAvgPool2d";

  outputShape(i: number[]): number[] {
    expectRank(i, [4]);
    return [i[0], i[1], 1, 1];
  }

  forward(x: Tensor): Tensor {
    return global_avg_pool2d(x);
  }

  receptiveField(flow: Flow) {
    return windowRF(flow, [flow.shape[2], flow.shape[3]], [1, 1]);
  }
}
