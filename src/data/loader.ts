// Mini-batches from a Dataset: a new seeded shuffle each epoch, augmentation per sample (with
// its class map, for per-pixel targets), normalisation, and two tensors per batch shape that
// are reused batch after batch (so the training loop allocates nothing for its inputs). A
// batch's tensors are valid until the next batch; copy them to keep them.
import { Tensor, empty, keep } from "../tensor.js";
import { engine } from "../engine/engine.js";
import { Generator, type RngState } from "../random.js";
import type { Dataset } from "./dataset.js";
import type { Transform, Image } from "./augment.js";
import { checkOptions, keysOf } from "../options.js";

export interface DataLoaderOptions {
  batchSize?: number;
  /** a new order each epoch (default true) */
  shuffle?: boolean;
  /** seed of the loader's generator (shuffling and augmentation), default 0 */
  seed?: number;
  /** drop the last batch if it is smaller than batchSize */
  dropLast?: boolean;
  /** applied in order to each sample before normalisation; for per-pixel targets each image
   *  carries its class map as `mask` (and the data set's ignoreIndex), which the geometric
   *  transforms move with it */
  augment?: Transform[];
  /** (x - mean[c]) / std[c] per channel; one number for all channels */
  normalize?: { mean: number | number[]; std: number | number[] };
}

const LOADER_OPTIONS = keysOf<DataLoaderOptions>({ batchSize: true, shuffle: true, seed: true, dropLast: true, augment: true, normalize: true });

export interface Batch {
  /** [B, C, H, W] */
  x: Tensor;
  /** [B] class indices as float32 (what cross_entropy takes); for per-pixel targets [B, H, W]
   *  class maps (ignoreIndex where unlabelled) */
  y: Tensor;
  /** the labels as integers (B of them, or B*H*W for per-pixel targets) */
  labels: Int32Array;
  /** dataset indices of the samples */
  indices: Int32Array;
  size: number;
}

export class DataLoader implements Iterable<Batch> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly rng: Generator;
  private augment: Transform[];
  private mean: Float32Array;
  private invStd: Float32Array;
  private buffers = new Map<number, { x: Tensor; y: Tensor }>();

  constructor(readonly dataset: Dataset, options: DataLoaderOptions = {}) {
    checkOptions("DataLoader", options, LOADER_OPTIONS);
    const { batchSize = 32, shuffle = true, seed = 0, dropLast = false, augment = [], normalize } = options;
    if (normalize !== undefined) checkOptions("DataLoader", normalize, ["mean", "std"], { in: "normalize" });
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`DataLoader: batchSize must be a positive integer, got ${batchSize}`);
    if (!dataset || typeof dataset.get !== "function") throw new Error("DataLoader: the first argument must be a Dataset");
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.dropLast = dropLast;
    this.rng = new Generator(seed);
    this.augment = augment;
    const c = dataset.shape[1];
    const per = (v: number | number[], what: string) => {
      const a = Array.isArray(v) ? v : new Array(c).fill(v);
      if (a.length !== c) throw new Error(`DataLoader: normalize.${what} has ${a.length} values for ${c} channels`);
      return Float32Array.from(a);
    };
    this.mean = per(normalize?.mean ?? 0, "mean");
    const std = per(normalize?.std ?? 1, "std");
    if (std.some((s) => !(s > 0))) throw new Error(`DataLoader: normalize.std must be > 0, got [${std}]`);
    this.invStd = std.map((s) => 1 / s);
  }

  /** batches per epoch */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** One epoch. Each call draws a new order from the loader's generator. */
  *[Symbol.iterator](): Iterator<Batch> {
    const n = this.dataset.length;
    const order = this.shuffle ? this.rng.permutation(n) : Int32Array.from({ length: n }, (_, i) => i);
    for (let b = 0; b < this.length; b++) {
      const idx = order.subarray(b * this.batchSize, Math.min(n, (b + 1) * this.batchSize));
      yield this.makeBatch(idx);
    }
  }

  private tensors(size: number) {
    let t = this.buffers.get(size);
    if (!t || t.x.disposed || t.x.engine !== engine()) {
      const [, c, h, w] = this.dataset.shape;
      t = { x: keep(empty([size, c, h, w])), y: keep(empty(this.dataset.targets === "pixels" ? [size, h, w] : [size])) };
      this.buffers.set(size, t);
    }
    return t;
  }

  /** The batch of the given dataset indices (augmented and normalised). */
  makeBatch(indices: Int32Array): Batch {
    const size = indices.length;
    const ds = this.dataset;
    const [, c, h, w] = ds.shape;
    const k = c * h * w;
    const pixels = ds.targets === "pixels", hw = h * w;
    const { x, y } = this.tensors(size);
    const xs = new Float32Array(size * k);
    const labels = new Int32Array(pixels ? size * hw : size);
    for (let j = 0; j < size; j++) {
      const s = ds.get(indices[j]);
      let img: Image = pixels ? { data: s.x, c, h, w, mask: s.mask, ignoreIndex: ds.ignoreIndex } : { data: s.x, c, h, w };
      for (const t of this.augment) {
        img = t(img, this.rng);
        if (pixels && !(img?.mask instanceof Int32Array))
          throw new Error("DataLoader: an augmentation returned an image without its mask (the data set has per-pixel targets): a transform must move img.mask as it moves the pixels, or pass it on ({ ...img, data })");
      }
      if (img.c !== c || img.h !== h || img.w !== w) throw new Error(`DataLoader: augmentation changed the image from ${c}x${h}x${w} to ${img.c}x${img.h}x${img.w}`);
      if (pixels && img.mask!.length !== hw) throw new Error(`DataLoader: augmentation left a mask of ${img.mask!.length} values for a ${h}x${w} image`);
      const dst = xs.subarray(j * k, (j + 1) * k);
      for (let ch = 0; ch < c; ch++) {
        const m = this.mean[ch], is = this.invStd[ch];
        for (let p = ch * h * w; p < (ch + 1) * h * w; p++) dst[p] = (img.data[p] - m) * is;
      }
      if (pixels) labels.set(img.mask!, j * hw);
      else labels[j] = s.y;
    }
    x.data.set(xs);
    y.data.set(labels);
    return { x, y, labels, indices: indices.slice(), size };
  }

  getState(): RngState {
    return this.rng.getState();
  }

  setState(s: RngState): void {
    this.rng.setState(s);
  }

  /** Free the batch tensors. */
  dispose(): void {
    for (const { x, y } of this.buffers.values()) {
      x.dispose();
      y.dispose();
    }
    this.buffers.clear();
  }
}
