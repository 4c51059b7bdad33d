// Classification metrics from a batch of scores [N, K] and class indices.

/** How many rows have their target among the k highest scores (ties count against: a class
 *  tied with the target is ranked above it, so a constant output scores 0, not 100%). */
export function topkCorrect(scores: Float32Array, n: number, k: number, labels: ArrayLike<number>, ks: number[]): number[] {
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

/** Running sums over an epoch. */
export class MetricSums {
  n = 0;
  loss = 0;
  top1 = 0;
  top5 = 0;

  add(batchLoss: number, n: number, hits?: number[]) {
    this.n += n;
    this.loss += batchLoss * n;
    if (hits) {
      this.top1 += hits[0];
      this.top5 += hits[1];
    }
  }

  result() {
    return { loss: this.loss / this.n, top1: this.top1 / this.n, top5: this.top5 / this.n };
  }
}
