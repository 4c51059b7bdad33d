// Classification metrics from a batch of scores [N, K] and class indices, and segmentation
// metrics from score maps [N, K, H, W] and class maps (pixel accuracy, IoU per class).
import { badArgument } from "../options.js";

/** How many rows have their target among the k highest scores (ties count against: a class
 *  tied with the target is ranked above it, so a constant output scores 0, not 100%). */
export function topkCorrect(scores: Float32Array, n: number, k: number, labels: ArrayLike<number>, ks: number[]): number[] {
  if (!(scores instanceof Float32Array) || !Number.isInteger(n) || !Number.isInteger(k) || labels == null || typeof labels.length !== "number" || !Array.isArray(ks) || n * k > scores.length || n > labels.length)
    badArgument("topkCorrect", "(scores, n, k, labels, ks)", "n x k scores, n labels and a list of k", [scores, n, k, labels, ks]);
  const hits = ks.map(() => 0);
  for (let i = 0; i < n; i++) {
    const row = i * k;
    const t = labels[i];
    const s = scores[row + t];
    let rank = 0;
    for (let j = 0; j < k; j++) if (j !== t && !(scores[row + j] < s)) rank++;
    ks.forEach((kk, m) => {
      if (rank < kk) hits[m]++;
    });
  }
  return hits;
}

/** Counts over the labelled pixels of a batch of score maps. */
export interface PixelCounts {
  /** pixels whose target is not the ignore index */
  count: number;
  /** of those, how many have their target as the (strictly) highest score / among the 5 highest */
  top1: number;
  top5: number;
  /** per class: labelled pixels predicted as it (a strict maximum: a pixel whose highest score
   *  is tied predicts no class), pixels of it, and pixels both */
  pred: Float64Array;
  truth: Float64Array;
  tp: Float64Array;
}

/** How many pixels of the class maps `labels` (N*P values, P = H*W) are not `ignoreIndex`. */
export function labelledPixels(labels: Int32Array, ignoreIndex: number): number {
  let c = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] !== ignoreIndex) c++;
  return c;
}

/** Throws unless every label is a class in [0, k) or, for per-pixel targets, the ignore index:
 *  where the targets sit on the GPU the loss reports a bad one only at the next read, steps
 *  later (a device-side check), so fit and evaluate check the batch's labels on the CPU, where
 *  they are anyway, and name the batch. */
export function checkTargets(where: string, labels: Int32Array, k: number, ignoreIndex?: number): void {
  for (let i = 0; i < labels.length; i++) {
    const t = labels[i];
    if (t === ignoreIndex || (t >= 0 && t < k)) continue;
    throw new Error(
      ignoreIndex === undefined
        ? `${where}: label ${t} (image ${i} of the batch) is out of range for ${k} classes`
        : `${where}: pixel class ${t} is out of range for score maps of ${k} classes (and is not the ignore index ${ignoreIndex})`,
    );
  }
}

/** Per-pixel counts from score maps [n, k, P] and class maps [n, P] (P = H*W): pixels with
 *  `ignoreIndex` count nowhere; ties count against the target as in topkCorrect. */
export function pixelCounts(scores: Float32Array, n: number, k: number, P: number, labels: Int32Array, ignoreIndex: number): PixelCounts {
  const r: PixelCounts = { count: 0, top1: 0, top5: 0, pred: new Float64Array(k), truth: new Float64Array(k), tp: new Float64Array(k) };
  const tgt = new Float32Array(P), best = new Float32Array(P), rank = new Int32Array(P), arg = new Int32Array(P);
  for (let i = 0; i < n; i++) {
    const lab = labels.subarray(i * P, (i + 1) * P);
    for (let p = 0; p < P; p++) {
      const t = lab[p];
      if (t === ignoreIndex) {
        tgt[p] = NaN;
        continue;
      }
      if (!(t >= 0 && t < k)) throw new Error(`metrics: pixel class ${t} is out of range for score maps of ${k} classes (and is not the ignore index ${ignoreIndex})`);
      tgt[p] = scores[(i * k + t) * P + p];
    }
    rank.fill(0);
    best.fill(-Infinity);
    arg.fill(-1);
    for (let j = 0; j < k; j++) {
      const base = (i * k + j) * P;
      for (let p = 0; p < P; p++) {
        const v = scores[base + p];
        if (j !== lab[p] && !(v < tgt[p])) rank[p]++;
        if (v > best[p]) (best[p] = v), (arg[p] = j);
        else if (v === best[p]) arg[p] = -1;
      }
    }
    for (let p = 0; p < P; p++) {
      const t = lab[p];
      if (t === ignoreIndex) continue;
      r.count++;
      if (rank[p] < 1) r.top1++;
      if (rank[p] < 5) r.top5++;
      r.truth[t]++;
      const a = arg[p];
      if (a >= 0) {
        r.pred[a]++;
        if (a === t) r.tp[t]++;
      }
    }
  }
  return r;
}

/** Running sums over an epoch. */
export class MetricSums {
  /** images */
  n = 0;
  /** the loss's weight: images, or labelled pixels for per-pixel targets */
  weight = 0;
  loss = 0;
  /** what the accuracies count: images, or labelled pixels */
  count = 0;
  top1 = 0;
  top5 = 0;
  pred?: Float64Array;
  truth?: Float64Array;
  tp?: Float64Array;

  /** hits: [top-1, top-5] of n images, or a batch's PixelCounts; weight: the loss's (n unless
   *  given; a batch of weight 0 adds no loss) */
  add(batchLoss: number, n: number, hits?: number[] | PixelCounts, weight = n) {
    this.n += n;
    this.weight += weight;
    if (weight > 0) this.loss += batchLoss * weight;
    if (Array.isArray(hits)) {
      this.count += n;
      this.top1 += hits[0];
      this.top5 += hits[1];
    } else if (hits) {
      this.count += hits.count;
      this.top1 += hits.top1;
      this.top5 += hits.top5;
      const k = hits.pred.length;
      if (!this.pred || this.pred.length < k) {
        const grow = (a: Float64Array | undefined) => {
          const g = new Float64Array(k);
          if (a) g.set(a);
          return g;
        };
        this.pred = grow(this.pred);
        this.truth = grow(this.truth);
        this.tp = grow(this.tp);
      }
      for (let c = 0; c < k; c++) {
        this.pred[c] += hits.pred[c];
        this.truth![c] += hits.truth[c];
        this.tp![c] += hits.tp[c];
      }
    }
  }

  /** IoU per class (NaN for a class neither predicted nor present) */
  iou(): number[] {
    if (!this.tp) return [];
    return Array.from(this.tp, (tp, c) => {
      const union = this.pred![c] + this.truth![c] - tp;
      return union > 0 ? tp / union : NaN;
    });
  }

  result() {
    return { loss: this.loss / this.weight, top1: this.top1 / this.count, top5: this.top5 / this.count };
  }

  /** mean IoU over the classes predicted or present (NaN if none) */
  meanIoU(): number {
    const v = this.iou().filter((x) => !Number.isNaN(x));
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
  }
}
