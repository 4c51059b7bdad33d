// A data set in memory: images [N, C, H, W] as float32 and one integer class label each.
import { Generator } from "../random.js";
import { parseIdx, type IdxArray } from "./idx.js";

export class Dataset {
  readonly shape: [number, number, number, number];
  readonly classes: string[];

  /** x: N*C*H*W values, shape [N, C, H, W] (or [N, H, W] for one channel); y: N labels in
   *  [0, classes). classes: their names or their number (default: max label + 1). */
  constructor(readonly x: Float32Array, shape: readonly number[], readonly y: Int32Array, classes?: string[] | number) {
    if (!(x instanceof Float32Array)) throw new Error("Dataset: x must be a Float32Array");
    const s = shape.length === 3 ? [shape[0], 1, shape[1], shape[2]] : [...shape];
    if (s.length !== 4 || s.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`Dataset: shape must be [N, C, H, W] or [N, H, W], got [${shape}]`);
    this.shape = s as [number, number, number, number];
    const n = s[0];
    if (x.length !== s.reduce((a, b) => a * b, 1)) throw new Error(`Dataset: ${x.length} values do not fill shape [${s}]`);
    if (!(y instanceof Int32Array)) y = Int32Array.from(y as ArrayLike<number>);
    this.y = y;
    if (y.length !== n) throw new Error(`Dataset: ${n} images but ${y.length} labels`);
    let max = -1;
    for (let i = 0; i < n; i++) {
      if (y[i] < 0) throw new Error(`Dataset: label ${i} is ${y[i]}; labels must be class indices >= 0`);
      if (y[i] > max) max = y[i];
    }
    const k = typeof classes === "number" ? classes : classes ? classes.length : max + 1;
    if (max >= k) throw new Error(`Dataset: label ${max} is out of range for ${k} classes`);
    this.classes = Array.isArray(classes) ? [...classes] : Array.from({ length: k }, (_, i) => String(i));
  }

  get length(): number {
    return this.shape[0];
  }

  get numClasses(): number {
    return this.classes.length;
  }

  /** [C, H, W] of one sample */
  get sampleShape(): [number, number, number] {
    return [this.shape[1], this.shape[2], this.shape[3]];
  }

  get sampleSize(): number {
    return this.shape[1] * this.shape[2] * this.shape[3];
  }

  /** One image's values (a view) and label. */
  get(i: number): { x: Float32Array; y: number } {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new Error(`Dataset: index ${i} out of range [0, ${this.length})`);
    const k = this.sampleSize;
    return { x: this.x.subarray(i * k, (i + 1) * k), y: this.y[i] };
  }

  /** A new data set of the given samples (copied), in that order. */
  subset(indices: ArrayLike<number>): Dataset {
    const k = this.sampleSize;
    const x = new Float32Array(indices.length * k);
    const y = new Int32Array(indices.length);
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j];
      if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new Error(`Dataset.subset: index ${i} out of range [0, ${this.length})`);
      x.set(this.x.subarray(i * k, (i + 1) * k), j * k);
      y[j] = this.y[i];
    }
    return new Dataset(x, [indices.length, ...this.sampleShape], y, this.classes);
  }

  /** Samples [start, end). */
  slice(start = 0, end = this.length): Dataset {
    const a = Math.max(0, Math.min(start, this.length)), b = Math.max(a, Math.min(end, this.length));
    return this.subset(Array.from({ length: b - a }, (_, i) => a + i));
  }

  /** Two parts after a seeded shuffle: the first holds (1 - fraction) of the samples. */
  split(fraction: number, seed = 0): [Dataset, Dataset] {
    if (!(fraction > 0 && fraction < 1)) throw new Error(`Dataset.split: fraction must be in (0, 1), got ${fraction}`);
    const p = new Generator(seed).permutation(this.length);
    const cut = this.length - Math.round(this.length * fraction);
    return [this.subset(p.subarray(0, cut)), this.subset(p.subarray(cut))];
  }

  /** Per-channel mean and standard deviation (for normalisation). */
  channelStats(): { mean: number[]; std: number[] } {
    const [n, c, h, w] = this.shape;
    const mean: number[] = [], std: number[] = [];
    for (let ch = 0; ch < c; ch++) {
      let s = 0, s2 = 0;
      for (let i = 0; i < n; i++) {
        const base = (i * c + ch) * h * w;
        for (let j = 0; j < h * w; j++) {
          const v = this.x[base + j];
          s += v;
          s2 += v * v;
        }
      }
      const m = s / (n * h * w);
      mean.push(m);
      std.push(Math.sqrt(Math.max(0, s2 / (n * h * w) - m * m)));
    }
    return { mean, std };
  }

  /** From parsed IDX images [N, H, W] (or [N, C, H, W]) of bytes and IDX labels [N]; pixels
   *  scaled to [0, 1]. */
  static fromIdx(images: IdxArray, labels: IdxArray, { classes, what = "IDX" }: { classes?: string[]; what?: string } = {}): Dataset {
    if (images.shape.length !== 3 && images.shape.length !== 4)
      throw new Error(`${what}: images must be [N, H, W] or [N, C, H, W], got [${images.shape}] (labels file given as images?)`);
    if (labels.shape.length !== 1) throw new Error(`${what}: labels must be [N], got [${labels.shape}] (images file given as labels?)`);
    if (labels.shape[0] !== images.shape[0]) throw new Error(`${what}: ${images.shape[0]} images but ${labels.shape[0]} labels`);
    const scale = images.type === "u8" ? 1 / 255 : 1;
    const x = new Float32Array(images.data.length);
    for (let i = 0; i < x.length; i++) x[i] = images.data[i] * scale;
    return new Dataset(x, images.shape, Int32Array.from(labels.data), classes);
  }

  /** Parse IDX bytes (already gunzipped) for images and labels. */
  static fromIdxBytes(images: Uint8Array, labels: Uint8Array, opts: { classes?: string[]; what?: string } = {}): Dataset {
    const what = opts.what ?? "IDX";
    return Dataset.fromIdx(parseIdx(images, `${what} images`), parseIdx(labels, `${what} labels`), opts);
  }
}
