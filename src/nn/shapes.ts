// Output-size arithmetic of sliding windows, as PyTorch computes it, with messages that say
// which dimension does not fit.
import { shapeStr } from "../tensor.js";
import { checkOptions } from "../options.js";

export type Pair = [number, number];

export function toPair(what: string, v: number | number[], min: number): Pair {
  const p = Array.isArray(v) ? v : [v, v];
  if (p.length !== 2 || p.some((x) => !Number.isInteger(x) || x < min || x > 2 ** 31 - 1))
    throw new Error(`${what} must be an integer >= ${min} or a pair [h, w] of them, got ${describe(v)}`);
  return [p[0], p[1]];
}

/** Print a pair the way PyTorch's repr does: one number when both sides agree. */
export function pairStr(p: Pair): string {
  return p[0] === p[1] ? `${p[0]}` : `(${p[0]}, ${p[1]})`;
}

export function expectRank(input: number[], ranks: number[], what = "input"): void {
  if (!Array.isArray(input)) throw new Error(`${what} must be a shape (an array of sizes), got ${describe(input)}`);
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

// describe(): a value in an error message (src/options.ts)
import { describe } from "../options.js";
export { describe };

/** A layer's options argument: undefined (all defaults) or a plain object of known keys only (a
 *  misspelt option is an error, not silently the default). */
export function layerOptions<T extends object>(type: string, o: unknown, known: readonly string[]): T {
  if (o === undefined) return {} as T;
  // unknown keys with "did you mean" (src/options.ts)
  checkOptions(type, o, known);
  return o as T;
}

export function checkBool(what: string, v: unknown): boolean {
  if (typeof v !== "boolean") throw new Error(`${what} must be true or false, got ${describe(v)}`);
  return v;
}

/** A finite number that passes `ok` (described by `range`, e.g. "> 0"). */
export function checkNumber(what: string, v: unknown, ok: (v: number) => boolean = () => true, range = ""): number {
  if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) throw new Error(`${what} must be a finite number${range ? " " + range : ""}, got ${describe(v)}`);
  return v;
}
