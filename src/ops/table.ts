// The op table: every op is declared once, with its forward and its backward side by side
// (or the reason it has no gradient). The public functions (conv2d, relu, ...) are thin
// PyTorch-style wrappers over table entries; a test walks this table.
import { Tensor, shapeStr, empty, type Shape } from "../tensor.js";
import { isGradEnabled, needsGrad, type Node } from "../autograd.js";
import type { Engine } from "../engine/engine.js";
import { fmt } from "../engine/arena.js";
import type { GpuEngine } from "../webgpu/engine.js";
import { checkOptions, describe } from "../options.js";

export class OpError extends Error {}

export interface OpContext {
  /** the engine of the inputs: the wasm engine (CPU), or for an op's webgpu kernels a GpuEngine */
  engine: Engine;
  /** the GPU engine when the inputs live on webgpu (the same object as engine) */
  gpu: GpuEngine | null;
  /** anything forward wants to keep for backward */
  saved: any;
  /** output of forward (set after it returns) */
  out: Tensor;
}

export interface OpDef<A> {
  name: string;
  /** input names; a trailing "?" marks an optional input (null allowed); a last name ending in
   *  "..." takes all remaining inputs (variadic: cat) */
  inputs: string[];
  /** checks inputs and attributes, throws OpError naming the op and the shapes */
  check?: (inputs: (Tensor | null)[], attrs: A) => void;
  forward: (ctx: OpContext, inputs: (Tensor | null)[], attrs: A) => Tensor;
  /** gradients of the inputs, in order (null where needs[i] is false) */
  backward?: (ctx: OpContext, g: Tensor, inputs: (Tensor | null)[], attrs: A, needs: boolean[]) => (Tensor | null)[];
  /** why there is no backward (e.g. "a loss's target is data, not a parameter") */
  noGrad?: string;
  /** inputs through which no gradient flows (e.g. targets of a loss) */
  noGradInputs?: string[];
  /** why no fixture case can hold this op to PyTorch (e.g. dropout's random mask), and which
   *  tests check it instead */
  noFixture?: string;
  /** The op's WebGPU kernels (src/webgpu/ops/): the same contract as forward/backward above, on
   *  tensors that live on the GPU. Inputs have passed the same check(). */
  webgpu?: OpKernels<A>;
}

export interface OpKernels<A> {
  forward: OpDef<A>["forward"];
  backward?: OpDef<A>["backward"];
}

export interface OpEntry<A = any> extends OpDef<A> {
  /** the attributes the op takes (the keys of its defaults) */
  readonly attributes: readonly string[];
  /** the attributes' defaults (undefined for a required one), as apply() fills them in */
  readonly defaults: Readonly<Record<string, unknown>>;
  apply(inputs: (Tensor | null | undefined)[], attrs?: Partial<A>): Tensor;
}

export const opTable = new Map<string, OpEntry>();

/** The profiler's clock (src/profile.ts): null unless a profile runs, so that timing costs one
 *  null check per op when it is off. */
export interface OpClock {
  /** where an op applied now sits (the layers running), kept for its backward */
  where(): unknown;
  /** runs one forward or backward of op and times it; info: for a backward */
  time<T>(op: string, phase: "forward" | "backward", inputs: (Tensor | null)[], attrs: unknown, device: "cpu" | "webgpu", run: () => T,
    info?: { out: Tensor; needs: boolean[]; where: unknown }): T;
}
let opClock: OpClock | null = null;
export function _setOpClock(clock: OpClock | null): void {
  opClock = clock;
}

export function fail(op: string, msg: string): never {
  throw new OpError(`${op}: ${msg}`);
}

/** An op's attributes with their defaults: every attribute the op takes, undefined for those
 *  that have no default (a required one, such as reshape's shape). */
export type OpDefaults<A> = { [K in keyof Required<A>]: A[K] | undefined };

/** Declares an op. `defaults` lists every attribute the op takes (apply() rejects any other
 *  key, with a "did you mean"); an op without defaults takes no attributes. */
export function defineOp<A extends Record<string, never>>(def: OpDef<A>): OpEntry<A>;
export function defineOp<A>(def: OpDef<A>, defaults: OpDefaults<A>): OpEntry<A>;
export function defineOp<A>(def: OpDef<A>, defaults?: OpDefaults<A>): OpEntry<A> {
  if (opTable.has(def.name)) throw new Error(`op ${def.name} defined twice`);
  const known = Object.keys(defaults ?? {});
  const entry: OpEntry<A> = {
    ...def,
    attributes: known,
    defaults: Object.freeze({ ...(defaults ?? {}) }),
    apply(rawInputs, rawAttrs) {
      const name = def.name;
      checkOptions(name, rawAttrs, known, { noun: "attribute", error: OpError });
      const inputs: (Tensor | null)[] = [];
      const last = def.inputs[def.inputs.length - 1];
      const variadic = !!last && last.endsWith("...");
      // one name per input: a variadic last name repeats for every remaining input
      const names = variadic
        ? [...def.inputs.slice(0, -1), ...Array.from({ length: Math.max(0, rawInputs.length - def.inputs.length + 1) }, () => last)]
        : def.inputs;
      names.forEach((iname, i) => {
        const t = rawInputs[i] ?? null;
        const optional = iname.endsWith("?");
        if (t === null) {
          if (!optional) fail(name, `input '${iname}' is required`);
        } else if (!(t instanceof Tensor)) fail(name, `input '${iname.replace("?", "")}' must be a Tensor, got ${typeof t}`);
        else t.assertUsable(name);
        inputs.push(t);
      });
      if (!variadic && rawInputs.length > def.inputs.length) fail(name, `takes ${def.inputs.length} inputs, got ${rawInputs.length}`);
      const present = inputs.filter((t): t is Tensor => !!t);
      const eng = present[0]?.engine;
      for (const t of present)
        if (t.engine !== eng) {
          // nothing moves by itself (as in PyTorch): name both devices
          const devs = present.map((x) => x.device);
          if (t.device !== present[0].device)
            fail(name, `inputs are on different devices (${devs.join(", ")} for ${present.map((x) => shapeStr(x.shape)).join(", ")}); move them to one with .to()`);
          fail(name, "inputs belong to different engines");
        }
      const attrs = { ...(defaults as any), ...(rawAttrs as any) } as A;
      def.check?.(inputs, attrs);
      const onGpu = present[0]?.device === "webgpu";
      if (onGpu && !entry.webgpu) fail(name, "has no WebGPU kernel yet: move the inputs to the CPU (await t.cpu()) for this op");
      const impl = onGpu ? entry.webgpu! : def;
      const ctx: OpContext = { engine: eng as any, gpu: onGpu ? (eng as any) : null, saved: null, out: null as any };
      const device = onGpu ? "webgpu" : "cpu";
      const clock = opClock;
      const out = clock ? clock.time(name, "forward", inputs, attrs, device, () => impl.forward(ctx, inputs, attrs)) : impl.forward(ctx, inputs, attrs);
      ctx.out = out;
      if (isGradEnabled() && def.backward) {
        const flows = inputs.map((t, i) => !!t && !def.noGradInputs?.includes(names[i].replace("?", "")) && needsGrad(t));
        if (flows.some(Boolean)) {
          const where = clock?.where();
          const node: Node = {
            op: name,
            inputs: inputs.map((t, i) => (flows[i] ? t : null)),
            backward: (g, needs) => {
              if (!impl.backward) fail(name, "has no WebGPU backward kernel yet");
              const run = () => impl.backward!(ctx, g, inputs, attrs, needs);
              const c = opClock; // a profile may have started or ended since the forward
              return c ? c.time(name, "backward", inputs, attrs, device, run, { out, needs, where }) : run();
            },
          };
          out.node = node;
        }
      }
      return out;
    },
  };
  opTable.set(def.name, entry);
  return entry;
}

// ---- helpers shared by op files ----

export function checkRank(op: string, what: string, t: Tensor, rank: number | number[]) {
  const ok = Array.isArray(rank) ? rank.includes(t.rank) : t.rank === rank;
  if (!ok) fail(op, `${what} must be rank ${Array.isArray(rank) ? rank.join(" or ") : rank}, got rank ${t.rank} ${shapeStr(t.shape)}`);
}

/** The largest size-like attribute (kernel sizes, strides, padding, output sizes): the kernels
 *  take them as 32-bit integers. */
export const MAX_INT_ATTR = 2 ** 31 - 1;

export function checkInt(op: string, what: string, v: unknown, min: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min)
    fail(op, `${what} must be an integer >= ${min}, got ${describe(v)}`);
  if ((v as number) > MAX_INT_ATTR) fail(op, `${what} ${v} is too large (at most 2^31 - 1)`);
  return v as number;
}

/** Checks, before anything is built for it (window tables, the output tensor), that an output of
 *  `shape` could be held in the engine's memory at all. `why` says where the size came from. */
export function checkOutputSize(op: string, shape: readonly number[], eng: unknown, why: string, tableBytes = 0): void {
  let n = 4;
  for (const d of shape) n *= d;
  const limit: number = (eng as any)?.arena?.limit ?? 2 ** 32;
  if (n + tableBytes > limit)
    fail(op, `the output ${shapeStr(shape)} would need ${fmt(n)}${tableBytes > n / 8 ? ` and its index tables ${fmt(tableBytes)}` : ""}, more than the engine's memory can hold (${fmt(limit)}) (${why})`);
}

/** An int or a pair of ints ([h, w]). */
export function pair(op: string, what: string, v: unknown, min: number): [number, number] {
  const p = Array.isArray(v) ? v : [v, v];
  if (p.length !== 2) fail(op, `${what} must be an int or a pair [h, w], got ${describe(v)}`);
  return [checkInt(op, what, p[0], min), checkInt(op, what, p[1], min)];
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function out(ctx: OpContext, shape: Shape): Tensor {
  return empty(shape, ctx.engine as any);
}
