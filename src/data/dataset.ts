// A data set in memory: images [N, C, H, W] as float32 and integer targets: one class label
// per image (classification), or a class index per pixel [N, H, W] (segmentation).
import { Generator } from "../random.js";
import { parseIdx, idxLabels, type IdxArray } from "./idx.js";
import { checkOptions, badArgument } from "../options.js";

export interface DatasetOptions {
  /** "labels": y holds one class per image (N values); "pixels": a class map per image, a class
   *  index per pixel (N*H*W values, [N, H, W] in row-major order). Default: whichever y's length
   *  fits. */
  targets?: "labels" | "pixels";
  /** per-pixel targets: the value of unlabelled pixels, which the default loss and the metrics
   *  skip (cross_entropy's ignore_index; -100 by default, 255 in VOC-style masks) */
  ignoreIndex?: number;
}

export class Dataset {
  readonly shape: [number, number, number, number];
  readonly classes: string[];
  /** "labels" (one class per image) or "pixels" (a class map per image) */
  readonly targets: "labels" | "pixels";
  /** per-pixel targets: the value of unlabelled pixels (-100 unless given) */
  readonly ignoreIndex: number;

  /** x: N*C*H*W values, shape [N, C, H, W] (or [N, H, W] for one channel); y: N labels in
   *  [0, classes), or N*H*W per-pixel classes in [0, classes) or ignoreIndex (see
   *  DatasetOptions). classes: their names or their number (default: max label + 1). */
  constructor(readonly x: Float32Array, shape: readonly number[], readonly y: Int32Array, classes?: string[] | number, opts: DatasetOptions = {}) {
    if (!(x instanceof Float32Array)) throw new Error("Dataset: x must be a Float32Array");
    const s = shape.length === 3 ? [shape[0], 1, shape[1], shape[2]] : [...shape];
    if (s.length !== 4 || s.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`Dataset: shape must be [N, C, H, W] or [N, H, W], got [${shape}]`);
    this.shape = s as [number, number, number, number];
    const [n, , h, w] = s;
    if (x.length !== s.reduce((a, b) => a * b, 1)) throw new Error(`Dataset: ${x.length} values do not fill shape [${s}]`);
    checkOptions("Dataset", opts, ["targets", "ignoreIndex"]);
    const { targets, ignoreIndex } = opts;
    if (targets !== undefined && targets !== "labels" && targets !== "pixels") throw new Error(`Dataset: targets must be "labels" or "pixels", got ${JSON.stringify(targets)}`);
    if (y == null || typeof (y as ArrayLike<number>).length !== "number") throw new Error("Dataset: y must be an Int32Array (or array) of class indices");
    const len = y.length, hw = h * w;
    const kind = targets ?? (len === n ? "labels" : len === n * hw ? "pixels" : undefined);
    if (kind === undefined) throw new Error(`Dataset: ${n} images but ${len} labels: give one class per image (${n} values) or a class per pixel (${n * hw} values, ${n}x${h}x${w})`);
    if (kind === "labels" && len !== n) throw new Error(`Dataset: ${n} images but ${len} labels`);
    if (kind === "pixels" && len !== n * hw) throw new Error(`Dataset: per-pixel targets for ${n} images of ${h}x${w} need ${n * hw} values (${n}x${h}x${w}), got ${len}`);
    if (ignoreIndex !== undefined && kind === "labels") throw new Error("Dataset: ignoreIndex is for per-pixel targets (targets: \"pixels\")");
    const ignore = ignoreIndex ?? -100;
    if (!Number.isInteger(ignore)) throw new Error(`Dataset: ignoreIndex must be an integer, got ${JSON.stringify(ignoreIndex)}`);
    this.targets = kind;
    this.ignoreIndex = ignore;
    const where = (i: number) => (kind === "labels" ? `label ${i}` : `mask value at image ${Math.floor(i / hw)}, row ${Math.floor((i % hw) / w)}, column ${i % w}`);
    if (!(y instanceof Int32Array)) {
      if (kind === "pixels")
        for (let i = 0; i < len; i++) if (!Number.isInteger(y[i])) throw new Error(`Dataset: ${where(i)} is ${y[i]}; class indices must be integers`);
      y = Int32Array.from(y as ArrayLike<number>);
    }
    this.y = y;
    let max = -1, at = -1;
    for (let i = 0; i < len; i++) {
      const v = y[i];
      if (kind === "pixels" && v === ignore) continue;
      if (v < 0) throw new Error(kind === "labels" ? `Dataset: label ${i} is ${v}; labels must be class indices >= 0` : `Dataset: ${where(i)} is ${v}; mask values must be class indices >= 0 or the ignore index ${ignore}`);
      if (v > max) (max = v), (at = i);
    }
    if (classes != null && typeof classes !== "number" && !Array.isArray(classes)) throw new Error(`Dataset: classes must be a number or a list of names, got ${JSON.stringify(classes)}`);
    const k = typeof classes === "number" ? classes : classes ? classes.length : max + 1;
    if (max >= k)
      throw new Error(kind === "labels" ? `Dataset: label ${max} is out of range for ${k} classes` : `Dataset: ${where(at)} is ${max}, out of range for ${k} classes (nor the ignore index ${ignore})`);
    this.classes = Array.isArray(classes) ? [...classes] : Array.from({ length: k }, (_, i) => String(i));
  }

  /** Images x [N, C, H, W] (or [N, H, W]) with a class map each: masks holds N*H*W class
   *  indices (row-major [N, H, W]) in [0, classes) or ignoreIndex (default -100). */
  static segmentation(x: Float32Array, shape: readonly number[], masks: Int32Array | ArrayLike<number>, classes?: string[] | number, opts: { ignoreIndex?: number } = {}): Dataset {
    checkOptions("Dataset.segmentation", opts, ["ignoreIndex"]);
    const { ignoreIndex } = opts;
    return new Dataset(x, shape, masks as Int32Array, classes, { targets: "pixels", ignoreIndex });
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

  /** One image's values (a view) and label; for per-pixel targets, its class map (a view,
   *  H*W values) as `mask` and NaN as `y`. */
  get(i: number): { x: Float32Array; y: number; mask?: Int32Array } {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new Error(`Dataset: index ${i} out of range [0, ${this.length})`);
    const k = this.sampleSize;
    const x = this.x.subarray(i * k, (i + 1) * k);
    if (this.targets === "labels") return { x, y: this.y[i] };
    const p = this.shape[2] * this.shape[3];
    return { x, y: NaN, mask: this.y.subarray(i * p, (i + 1) * p) };
  }

  /** A new data set of the given samples (copied), in that order. */
  subset(indices: ArrayLike<number>): Dataset {
    if (indices === null || typeof indices !== "object" || typeof indices.length !== "number") badArgument("Dataset.subset", "the indices", "an array of sample indices", indices);
    const k = this.sampleSize;
    const p = this.targets === "pixels" ? this.shape[2] * this.shape[3] : 1;
    const x = new Float32Array(indices.length * k);
    const y = new Int32Array(indices.length * p);
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j];
      if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new Error(`Dataset.subset: index ${i} out of range [0, ${this.length})`);
      x.set(this.x.subarray(i * k, (i + 1) * k), j * k);
      if (p === 1) y[j] = this.y[i];
      else y.set(this.y.subarray(i * p, (i + 1) * p), j * p);
    }
    const opts: DatasetOptions = this.targets === "pixels" ? { targets: "pixels", ignoreIndex: this.ignoreIndex } : { targets: "labels" };
    return new Dataset(x, [indices.length, ...this.sampleShape], y, this.classes, opts);
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
  static fromIdx(images: IdxArray, labels: IdxArray, opts: { classes?: string[]; what?: string } = {}): Dataset {
    checkOptions("Dataset.fromIdx", opts, ["classes", "what"]);
    const { classes, what = "IDX" } = opts;
    if (images.shape.length !== 3 && images.shape.length !== 4)
      throw new Error(`${what}: images must be [N, H, W] or [N, C, H, W], got [${images.shape}] (labels file given as images?)`);
    if (labels.shape.length !== 1) throw new Error(`${what}: labels must be [N], got [${labels.shape}] (images file given as labels?)`);
    if (labels.shape[0] !== images.shape[0]) throw new Error(`${what}: ${images.shape[0]} images but ${labels.shape[0]} labels`);
    const scale = images.type === "u8" ? 1 / 255 : 1;
    const x = new Float32Array(images.data.length);
    for (let i = 0; i < x.length; i++) x[i] = images.data[i] * scale;
    // labels must be small non-negative integers (a float label, NaN or 1e10 is an error naming
    // the file and the index, not a truncation or a huge class count)
    return new Dataset(x, images.shape, idxLabels(labels, `${what} labels`), classes);
  }

  /** Parse IDX bytes (already gunzipped) for images and labels. */
  static fromIdxBytes(images: Uint8Array, labels: Uint8Array, opts: { classes?: string[]; what?: string } = {}): Dataset {
    checkOptions("Dataset.fromIdxBytes", opts, ["classes", "what"]);
    const what = opts.what ?? "IDX";
    return Dataset.fromIdx(parseIdx(images, `${what} images`), parseIdx(labels, `${what} labels`), opts);
  }
}
