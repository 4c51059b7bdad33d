// The public ops the layers call. Looked up by name so that a build without an op group gives a
// clear message instead of "undefined is not a function".
import * as ops from "../ops/index.js";

export function op(name: string): (...args: any[]) => any {
  const f = (ops as any)[name];
  if (typeof f !== "function") throw new Error(`op ${name} is not available in this build`);
  return f;
}
