// Output-size arithmetic of sliding windows, as PyTorch computes it, with messages that say
// which dimension does not fit.
import { shapeStr } from "../tensor.js";

export type Pair = [number, number];

export function toPair(what: string, v: number | number[], min: number): Pair {
  const p = Array.isArray(v) ? v : [v, v];
  if (p.length !== 2 || p.some((x) => !Number.isInteger(x) || x < min))
    throw new Error(`${what} must be an integer >= ${min} or a pair [h, w] of them, got ${JSON.stringify(v)}`);
  return [p[0], p[1]];
}

/** Print a pair the way PyTorch's repr does: one number when both sides agree. */
export function pairStr(p: Pair): string {
  return p[0] === p[1] ? `${p[0]}` : `(${p[0]}, ${p[1]})`;
}

export function expectRank(input: number[], ranks: number[], what = "input"): void {
  if (!ranks.includes(input.length))
    throw new Error(`${what} must be rank ${ranks.join(" or ")} (${ranks.includes(4) ? "N,C,H,W" : "N,features"}), got rank ${input.length} ${shapeStr(input)}`);
}

/** floor((L + 2p - d(k-1) - 1) / s) + 1, or the ceil_mode variant (PyTorch's pooling_output_shape). */
export function windowOut(L: number, k: number, s: number, p: number, d: number, ceil: boolean, dim: string): number {
  const span = L + 2 * p - d * (k - 1) - 1;
  let out = (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
  // the last window must start inside the input or the left padding
  if (ceil && (out - 1) * s >= L + p) out--;
  if (span < 0 || out < 1)
    throw new Error(`${dim} ${L} with padding ${p} is smaller than the ${d > 1 ? "dilated " : ""}window ${d * (k - 1) + 1}`);
  return out;
}
