// Options objects are checked against the keys they may hold: a misspelt key (`{ epoch: 2 }`,
// `{ pading: 1 }`) would otherwise be ignored and the call would silently do something else.
// One helper for every public entry point (the command line's --options use `distance` too).

/** Edit distance for "did you mean": insertions, deletions, substitutions and swaps of two
 *  neighbouring letters (sdt -> std) count one each. */
export function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i ? (j ? 0 : i) : j)));
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.length][b.length];
}

/** The known key closest to `key`, if it is close enough to be a slip: at most 2 edits (and at
 *  most half the key's length), case, "_" and "-" aside (batch_size -> batchSize,
 *  weightDecay -> weight_decay). */
export function closest(key: string, known: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[_-]/g, "");
  const k = norm(key);
  let best: string | undefined, bestD = Infinity;
  for (const o of known) {
    const d = distance(k, norm(o));
    if (d < bestD) (best = o), (bestD = d);
  }
  return best !== undefined && bestD <= Math.min(2, Math.floor(k.length / 2)) ? best : undefined;
}

export interface CheckOptionsExtra {
  /** which part of the call the options are (nested objects: "earlyStopping", "parameter group 0") */
  in?: string;
  /** what takes the known keys, in the message (default: `in`, else `where`) */
  whose?: string;
  /** "option" (default) or "attribute" (ops) */
  noun?: string;
  /** the error's class (default Error) */
  error?: new (message: string) => Error;
}

/**
 * Throws unless `opts` is undefined or an object whose keys are all in `known` (a key whose value
 * is undefined counts as not given). The message names the function, the key, the known key it
 * is probably a slip for, and every key there is:
 *
 *   fit: unknown option 'epoch' (did you mean 'epochs'?); fit takes epochs, batchSize, ...
 */
export function checkOptions(where: string, opts: unknown, known: readonly string[], extra: CheckOptionsExtra = {}): void {
  if (typeof where !== "string" || !Array.isArray(known)) badArgument("checkOptions", "(where, opts, known)", "a name, the options and the list of known keys", [where, opts, known]);
  if (opts === undefined) return;
  const noun = extra.noun ?? "option";
  const Err = extra.error ?? Error;
  const whose = extra.whose ?? extra.in ?? where;
  // a tensor, a typed array or a Map where the options belong (cross_entropy(x, y, weight)) is
  // not an options object with unknown keys ('storage', 'shape', ...): say what it is
  const notOptions = (o: object) => ArrayBuffer.isView(o) || o instanceof Map || o instanceof Set || (Array.isArray((o as any).shape) && typeof (o as any).device === "string");
  if (opts === null || typeof opts !== "object" || Array.isArray(opts) || notOptions(opts)) {
    const got = opts === null ? "null" : Array.isArray(opts) ? "an array" : typeof opts === "function" ? "a function" : typeof opts === "object" ? describe(opts) : `${typeof opts} ${String(opts)}`;
    const shape = known.length ? `{ ${known.slice(0, 3).join(", ")}${known.length > 3 ? ", ..." : ""} }` : "{}";
    throw new Err(`${where}: ${extra.in ?? `the ${noun}s`} must be an object ${shape}, got ${got}`);
  }
  const bad = Object.keys(opts).filter((k) => (opts as Record<string, unknown>)[k] !== undefined && !known.includes(k));
  if (!bad.length) return;
  const each = bad.map((k) => {
    const near = closest(k, known);
    return `'${k}'${near ? ` (did you mean '${near}'?)` : ""}`;
  });
  const takes = known.length ? `takes ${known.join(", ")}` : `takes no ${noun}s`;
  throw new Err(`${where}: unknown ${noun}${bad.length > 1 ? "s" : ""} ${each.join(", ")}${extra.in ? ` in ${extra.in}` : ""}; ${whose} ${takes}`);
}

/** The keys of an options type, listed once and checked by the compiler against the type: a key
 *  the type has but the list lacks, or one the type does not have, is a type error. */
export function keysOf<T>(keys: { [K in keyof Required<T>]: true }): readonly string[] {
  return Object.keys(keys);
}

/** An argument of the wrong kind, said plainly before anything is done with it (instead of
 *  whatever reading a property of it would throw). */
export function badArgument(where: string, what: string, expected: string, v: unknown): never {
  throw new Error(`${where}: ${what} must be ${expected}, got ${describe(v)}`);
}

/** describe(), but a small plain object as its JSON: what a misplaced options object held
 *  (`horizontalFlip({ p: 0.3 })`); anything else (a tensor, a module) never serialised. */
export function describeShown(v: unknown): string {
  if (v !== null && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype)
    try {
      const s = JSON.stringify(v);
      if (s.length <= 80) return s;
    } catch {
      // a cycle: described below
    }
  return describe(v);
}

/** A value in an error message: short, and safe for anything (cycles, deep nesting, a tensor
 *  where a number belongs: never serialised). */
export function describe(v: unknown): string {
  if (v === null || v === undefined || typeof v === "number" || typeof v === "boolean") return String(v);
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "..." : v);
  if (Array.isArray(v)) return v.length <= 8 && v.every((x) => typeof x === "number") ? `[${v.join(", ")}]` : `an array of ${v.length}`;
  if (typeof v === "object" && Array.isArray((v as any).shape) && typeof (v as any).device === "string") return `a tensor [${(v as any).shape.join(", ")}] on ${(v as any).device}`;
  return typeof v === "object" ? "an object" : typeof v === "function" ? "a function" : typeof v;
}
