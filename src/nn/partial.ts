// A convolution with a connection table: output map j sees only the input maps table[j]
// (LeNet-5's C3, LeCun et al. 1998, table I). Built from grouped convolutions so that it has
// exactly the table's parameters: output maps that see k inputs form one group of a grouped
// Conv2d with k input channels per group, fed by a fixed 0/1 1x1 convolution that copies
// the right input maps into place (a copy: x*1 plus zeros is exact in float32).
import { Tensor, zeros, shapeStr } from "../tensor.js";
import { Module, ModuleError, windowRF, type Flow, type SummaryRow } from "./module.js";
import { Conv2d } from "./conv.js";
import { toPair, pairStr, layerOptions, describe, type Pair } from "./shapes.js";
import { conv2d, cat } from "../ops/index.js";
import { checkOptions, keysOf } from "../options.js";

export interface PartialConv2dOptions {
  stride?: number | number[];
  padding?: number | number[];
  bias?: boolean;
}

export class PartialConv2d extends Module {
  readonly type = "PartialConv2d";
  readonly kernelSize: Pair;
  readonly outChannels: number;
  private groups: { maps: number[]; select: Tensor; conv: Conv2d }[] = [];
  /** one-hot [out, out, 1, 1] putting the group outputs back in table order (null: already) */
  private order: Tensor | null = null;

  constructor(readonly inChannels: number, readonly table: number[][], kernelSize: number | number[], readonly options: PartialConv2dOptions = {}) {
    super();
    layerOptions<PartialConv2dOptions>("PartialConv2d", options, ["stride", "padding", "bias"]);
    if (!Number.isInteger(inChannels) || inChannels < 1) throw new Error(`PartialConv2d: in_channels must be a positive integer, got ${describe(inChannels)}`);
    this.kernelSize = toPair("PartialConv2d: kernel_size", kernelSize, 1);
    if (!Array.isArray(table) || !table.length) throw new Error("PartialConv2d: the connection table needs one row (list of input maps) per output map");
    table.forEach((row, j) => {
      if (!Array.isArray(row) || !row.length || row.some((i) => !Number.isInteger(i) || i < 0 || i >= inChannels) || new Set(row).size !== row.length)
        throw new Error(`PartialConv2d: table row ${j} must list distinct input maps in [0, ${inChannels}), got ${describe(row)}`);
    });
    this.outChannels = table.length;
    // group output maps by how many inputs they see, in order of first appearance
    const byCount = new Map<number, number[]>();
    table.forEach((row, j) => {
      if (!byCount.has(row.length)) byCount.set(row.length, []);
      byCount.get(row.length)!.push(j);
    });
    let g = 0;
    for (const [k, maps] of byCount) {
      const select = zeros([maps.length * k, inChannels, 1, 1]);
      const s = select.data;
      maps.forEach((j, m) => table[j].forEach((i, t) => (s[(m * k + t) * inChannels + i] = 1)));
      this.registerBuffer(`select${g}`, select, false);
      const conv = this.registerModule(String(g), new Conv2d(maps.length * k, maps.length, kernelSize, { ...options, groups: maps.length }));
      this.groups.push({ maps, select, conv });
      g++;
    }
    const produced = this.groups.flatMap((gr) => gr.maps);
    if (produced.some((j, p) => j !== p)) {
      const n = this.outChannels;
      this.order = zeros([n, n, 1, 1]);
      produced.forEach((j, p) => (this.order!.data[j * n + p] = 1));
      this.registerBuffer("order", this.order, false);
    }
  }

  get stride(): Pair {
    return this.groups[0].conv.stride;
  }

  outputShape(i: number[]): number[] {
    if (i.length !== 4) throw new Error(`expected rank 4 (N,C,H,W), got rank ${i.length} ${shapeStr(i)}`);
    if (i[1] !== this.inChannels) throw new Error(`expected ${this.inChannels} input channels, got ${i[1]}`);
    const o = this.groups[0].conv.outputShape([i[0], this.groups[0].select.shape[0], i[2], i[3]]);
    return [i[0], this.outChannels, o[2], o[3]];
  }

  forward(x: Tensor): Tensor {
    try {
      this.outputShape(x.shape as number[]);
    } catch (e) {
      throw new ModuleError(this, x.shape, e);
    }
    const outs = this.groups.map(({ select, conv }) => conv.call(conv2d(x, select, null, {})));
    const y = outs.length === 1 ? outs[0] : cat(outs, 1);
    return this.order ? conv2d(y, this.order, null, {}) : y;
  }

  /** One row, as a single layer: the table's weights and multiply-adds (not the copies). */
  summarize(flow: Flow, rows: SummaryRow[], name: string): Flow {
    let out: number[];
    try {
      out = this.outputShape(flow.shape);
    } catch (e) {
      throw new ModuleError(this, flow.shape, e);
    }
    const params = this.parameters();
    const k = this.kernelSize[0] * this.kernelSize[1];
    const links = this.table.reduce((a, r) => a + r.length, 0);
    rows.push({
      name,
      layer: this.describe(),
      inputShape: flow.shape,
      outputShape: out,
      weightShape: null,
      params: params.reduce((a, p) => a + p.size, 0),
      trainable: params.reduce((a, p) => a + (p.requiresGrad ? p.size : 0), 0),
      macs: out[0] * out[2] * out[3] * links * k,
      rf: windowRF(flow, this.kernelSize, this.stride).rf,
    });
    return { ...flow, ...windowRF(flow, this.kernelSize, this.stride), shape: out };
  }

  protected args() {
    return [this.inChannels, this.table, this.kernelSize, this.options];
  }

  protected extraRepr() {
    const links = this.table.reduce((a, r) => a + r.length, 0);
    return `${this.inChannels}, ${this.outChannels}, kernel_size=${pairStr(this.kernelSize)}, connections=${links}/${this.inChannels * this.outChannels}`;
  }
}
