// profile(fn): where the time of fn goes, per op and per layer. Every op application (the op
// table's apply) and every backward step of one is timed with the clock, which on the CPU is
// the kernels' time: the engine runs them synchronously. Each op's time is its own (an op that
// applies another, as a backward may, does not count the other's time twice). Layers are timed
// around their forward (Module.call) and get the backward time of the ops they applied. FLOPs
// come from the shapes; the peak they are held against is a measured SGEMM.
//
// The clocks in the op table and in Module are null unless a profile runs: one null check per
// op and per layer call is all profiling costs when it is off.
import { _setOpClock, type OpClock } from "./ops/table.js";
import { _setLayerClock, Module } from "./nn/module.js";
import { Tensor, tensor, tidy } from "./tensor.js";
import { noGrad } from "./autograd.js";
import { engine, type Engine } from "./engine/engine.js";
import { matmul } from "./ops/linalg.js";
import { checkOptions, badArgument } from "./options.js";

export interface ProfileOptions {
  /** The GFLOP/s that "% of peak" divides by: true (default) measures it once per engine (an
   *  SGEMM, see measurePeak); a number uses that; false leaves "% of peak" out. */
  peak?: boolean | number;
}

export interface OpProfile {
  op: string;
  /** "forward", or "backward" (an op applied inside another's backward counts as backward) */
  phase: "forward" | "backward";
  /** the kernel path ("im2col", "depthwise", "gemm", ...): what a kernel driver reported with
   *  notePath(), else what the CPU drivers select for the shapes (kernelPath); "" for an op
   *  with one path, and on webgpu unless its kernel notes one */
  path: string;
  device: "cpu" | "webgpu";
  calls: number;
  /** time in this op's own work. On webgpu, the time to encode and queue it, not GPU time */
  ms: number;
  /** floating-point operations (multiply and add count one each); 0 where not counted */
  flops: number;
  /** flops / ms; null where flops are not counted and on webgpu (no GPU clock) */
  gflops: number | null;
  /** gflops as a fraction of the peak (0.5 = 50%); null without either */
  ofPeak: number | null;
}

export interface LayerProfile {
  /** dotted name in the model (state-dict prefix, "features.0"); "(model)" for a root */
  name: string;
  /** the layer's one-line description, "Conv2d(1, 20, kernel_size=5, padding=2)" */
  layer: string;
  calls: number;
  /** wall time of its forward calls, children included */
  forwardMs: number;
  /** time of the backward steps of the ops it (or its children) applied */
  backwardMs: number;
  /** FLOPs of its ops, forward and backward */
  flops: number;
  gflops: number | null;
  ofPeak: number | null;
  /** the kernel paths of its ops that have one, in first-use order ("im2col", "gemm") */
  paths: string[];
}

export interface Profile<T = unknown> {
  /** what fn returned (awaited) */
  value: T;
  /** wall time of fn */
  totalMs: number;
  /** time inside ops (the sum of ops[].ms); the rest is outside them: optimiser steps, data,
   *  JavaScript between the ops */
  opsMs: number;
  /** the measured (or given) peak in GFLOP/s; null with peak: false */
  peakGflops: number | null;
  /** how the peak was obtained */
  peakSource: string;
  threads: number;
  /** by time, largest first; one row per op, phase, kernel path and device */
  ops: OpProfile[];
  /** in the order of their first call (parents before children) */
  layers: LayerProfile[];
  toString(): string;
}

// ---- the kernel-path hook ----

/** The op being timed (innermost), or null when no profile runs. */
let current: OpFrame | null = null;

/**
 * For kernel drivers: says which path an op took ("winograd", "fused"). A no-op unless a
 * profile runs; otherwise it names the path of the op being timed, overriding what kernelPath
 * derives from the shapes. Call it from the op's CPU or GPU forward/backward (or a driver they
 * call), e.g. `notePath("winograd")` where a convolution takes the fast 3x3 path.
 */
export function notePath(path: string): void {
  if (current) current.noted = path;
}

/** notePath for a second kernel of the same op call (a backward's weight gradient after its
 *  input gradient): "dx path + dW path"; the path alone where nothing was noted yet. */
export function notePathAlso(path: string): void {
  if (current) current.noted = current.noted ? `${current.noted} + ${path}` : path;
}

/** The path the CPU kernel drivers select today for these shapes (what notePath can override).
 *  out: the op's output (the forward's, for a backward). */
export function kernelPath(op: string, phase: "forward" | "backward", inputs: readonly (Tensor | null)[], attrs: any, out: Tensor): string {
  if (op === "linear" || op === "matmul" || op === "gemm") return "gemm";
  // conv2d_fused's forward names its path ("fused ..."); its backward is conv2d's
  if (op !== "conv2d" && op !== "conv_transpose2d" && !(op === "conv2d_fused" && phase === "backward")) return "";
  // src/ops/conv.ts, depthwisePlane(): a conv2d forward with one input and one output channel
  // per group, stride at most 2 along rows and a padded plane of at most 2^20 floats runs the
  // depthwise kernel (assembly/conv_dw.ts); every other convolution is a blocked im2col GEMM
  // (assembly/conv2d.ts). Drivers that pick another path name it with notePath (Winograd, small
  // maps side by side, the depthwise gradients)
  if (op === "conv2d" && phase === "forward") {
    const [x, w] = inputs as Tensor[];
    const pair = (v: number | number[]) => (Array.isArray(v) ? v : [v, v]);
    const [SH, SW] = pair(attrs.stride), [, PW] = pair(attrs.padding), [DH] = pair(attrs.dilation);
    const [, C, , W] = x.shape, [O, , KH] = w.shape, [, , HO, WO] = out.shape;
    const plane = ((HO - 1) * SH + (KH - 1) * DH + 1) * (W + 2 * PW) + 16;
    if (attrs.groups === C && O === C && SW <= 2 && HO * WO > 0 && plane <= 1 << 20) return "depthwise";
  }
  return "im2col";
}

/** FLOPs of one forward (multiply-adds count two), from the shapes; 0 for ops not counted. */
export function forwardFlops(op: string, inputs: readonly (Tensor | null)[], out: Tensor, attrs: any): number {
  const [a, b] = inputs as Tensor[];
  switch (op) {
    case "conv2d":
    case "conv2d_fused": {
      // 2 * N * O * HO * WO * (C / G) * KH * KW (the fused op's epilogue is not counted: a few
      // operations per output against C/G * KH * KW multiply-adds)
      const [, Cg, KH, KW] = b.shape;
      return 2 * out.size * Cg * KH * KW;
    }
    case "conv_transpose2d": {
      // the convolution it transposes: input gradient of a conv whose output is this input
      const [, Cog, KH, KW] = b.shape;
      return 2 * a.size * Cog * KH * KW;
    }
    case "linear":
      return 2 * out.size * a.shape[1];
    case "matmul":
    case "gemm":
      return 2 * out.size * (attrs.transA ? a.shape[0] : a.shape[1]);
  }
  return 0;
}

/** Backward FLOPs: each input gradient of a product costs one more forward (its bias none). */
function backwardFlops(op: string, fwd: number, needs: boolean[]): number {
  if (!fwd) return 0;
  const products = op === "gemm" || op === "matmul" || op === "linear" || op === "conv2d" || op === "conv2d_fused" || op === "conv_transpose2d";
  return products ? fwd * ((needs[0] ? 1 : 0) + (needs[1] ? 1 : 0)) : 0;
}

// ---- the session ----

interface OpFrame {
  phase: "forward" | "backward";
  /** time spent in ops applied inside this one */
  inner: number;
  noted: string | null;
  /** the layers this op's time and FLOPs go to */
  layers: LayerRecord[];
}

/** Where an op was applied: kept with its autograd node, so that its backward finds its layers. */
interface Where {
  session: Session;
  layers: LayerRecord[];
}

interface LayerRecord extends Omit<LayerProfile, "gflops" | "ofPeak" | "paths"> {
  paths: Set<string>;
}

class Session {
  readonly ops = new Map<string, OpProfile>();
  readonly layers = new Map<Module, LayerRecord>();
  /** the layers whose forward is running, outermost first */
  readonly layerStack: LayerRecord[] = [];

  /** the OpClock the op table calls while this session runs */
  readonly opClock: OpClock = {
    where: (): Where => ({ session: this, layers: [...this.layerStack] }),
    time: (op, phase, inputs, attrs, device, run, info) => {
      const outer = current;
      // ops applied inside a backward are part of it (and of its layers); a backward goes to the
      // layers its forward ran in, if that forward ran in this profile
      const inBackward = outer?.phase === "backward";
      const where = info?.where as Where | undefined;
      const forwardLayers = where?.session === this ? where.layers : [];
      const frame: OpFrame = {
        phase: inBackward ? "backward" : phase,
        inner: 0,
        noted: null,
        layers: inBackward ? outer!.layers : phase === "backward" ? forwardLayers : [...this.layerStack],
      };
      current = frame;
      const t0 = performance.now();
      try {
        const out = run();
        const ms = performance.now() - t0;
        const own = ms - frame.inner;
        if (outer) outer.inner += ms;
        const forwardOut = phase === "forward" ? (out as Tensor) : info!.out;
        const fwd = forwardFlops(op, inputs, forwardOut, attrs);
        const flops = phase === "forward" ? fwd : backwardFlops(op, fwd, info!.needs);
        // the derived paths are the CPU drivers' choices; a GPU kernel names its own with notePath
        const path = frame.noted ?? (device === "cpu" ? kernelPath(op, phase, inputs, attrs, forwardOut) : "");
        this.record(op, frame, path, device, own, flops);
        return out;
      } finally {
        current = outer;
      }
    },
  };

  readonly layerClock = <T>(m: Module, run: () => T): T => {
    let rec = this.layers.get(m);
    if (!rec) {
      rec = { name: m.path() || "(model)", layer: m.describe(), calls: 0, forwardMs: 0, backwardMs: 0, flops: 0, paths: new Set() };
      this.layers.set(m, rec);
    }
    rec.calls++;
    this.layerStack.push(rec);
    const t0 = performance.now();
    try {
      return run();
    } finally {
      rec.forwardMs += performance.now() - t0;
      this.layerStack.pop();
    }
  };

  private record(op: string, frame: OpFrame, path: string, device: "cpu" | "webgpu", ms: number, flops: number) {
    const key = `${op}\0${frame.phase}\0${path}\0${device}`;
    let row = this.ops.get(key);
    if (!row) {
      row = { op, phase: frame.phase, path, device, calls: 0, ms: 0, flops: 0, gflops: null, ofPeak: null };
      this.ops.set(key, row);
    }
    row.calls++;
    row.ms += ms;
    row.flops += flops;
    for (const l of frame.layers) {
      if (frame.phase === "backward") l.backwardMs += ms;
      l.flops += flops;
      if (path) l.paths.add(path);
    }
  }
}

let active: Session | null = null;

// ---- the peak ----

const peaks = new WeakMap<Engine, number>();
const PEAK_N = 1024;

/** The engine's SGEMM rate in GFLOP/s at its thread count: the best of 5 products of two
 *  1024x1024 matrices after one to warm up (about 2.1 GFLOP each). Measured once per engine
 *  (init() makes a new one), then cached. */
export function measurePeak(eng: Engine = engine()): number {
  const known = peaks.get(eng);
  if (known !== undefined) return known;
  if (active) throw new Error("profile: the peak is measured before a profile starts, not inside one");
  const n = PEAK_N;
  const fill = (seed: number) => Float32Array.from({ length: n * n }, (_, i) => (((i * 7919 + seed) % 1000) / 500 - 1));
  let best = Infinity;
  noGrad(() =>
    tidy(() => {
      const a = tensor(fill(1), [n, n], eng), b = tensor(fill(2), [n, n], eng);
      for (let i = 0; i < 6; i++) {
        const t0 = performance.now();
        matmul(a, b).dispose();
        const ms = performance.now() - t0;
        if (i > 0) best = Math.min(best, ms);
      }
    }),
  );
  const gflops = (2 * n ** 3) / best / 1e6;
  peaks.set(eng, gflops);
  return gflops;
}

// ---- profile() ----

const OPTIONS = ["peak"];

/**
 * Runs fn (sync or async) and reports where its time went: per op (calls, ms, GFLOP/s, % of the
 * peak, kernel path) and per layer (by dotted name). Returns { value, ops, layers, totalMs,
 * opsMs, peakGflops, ... } (a Promise of it when fn returns a promise); String(result) is a
 * table. Profiles do not nest. Anything else that applies ops while an async fn is pending is
 * counted too.
 *
 *   const p = await sn.profile(() => fit(model, data, { epochs: 1 }));
 *   console.log(String(p));
 */
export function profile<T>(fn: () => Promise<T>, opts?: ProfileOptions): Promise<Profile<T>>;
export function profile<T>(fn: () => T, opts?: ProfileOptions): Profile<T>;
export function profile<T>(fn: () => T | Promise<T>, opts: ProfileOptions = {}): Profile<T> | Promise<Profile<T>> {
  checkOptions("profile", opts, OPTIONS);
  if (typeof fn !== "function") throw new Error(`profile: the first argument must be a function to run, got ${fn === null ? "null" : typeof fn}`);
  if (active) throw new Error("profile: a profile is already running; profile() calls do not nest (profile the outer call only)");
  const peak = opts.peak ?? true;
  if (typeof peak !== "boolean" && !(typeof peak === "number" && peak > 0 && Number.isFinite(peak)))
    throw new Error(`profile: peak must be true (measure it), false or a positive number of GFLOP/s, got ${JSON.stringify(peak)}`);
  const eng = engine();
  const peakGflops = peak === false ? null : peak === true ? measurePeak(eng) : peak;
  const peakSource = peak === false ? "not measured" : peak === true ? `SGEMM ${PEAK_N}x${PEAK_N}x${PEAK_N}, best of 5, ${eng.threads} thread${eng.threads > 1 ? "s" : ""}` : "given";
  const session = new Session();
  active = session;
  _setOpClock(session.opClock);
  _setLayerClock(session.layerClock);
  const stop = () => {
    active = null;
    current = null;
    _setOpClock(null);
    _setLayerClock(null);
  };
  const t0 = performance.now();
  const finish = (value: T): Profile<T> => {
    const totalMs = performance.now() - t0;
    stop();
    return report(session, value, totalMs, peakGflops, peakSource, eng.threads);
  };
  let value: T | Promise<T>;
  try {
    value = fn();
  } catch (e) {
    stop();
    throw e;
  }
  if (value && typeof (value as any).then === "function")
    return Promise.resolve(value).then(finish, (e) => {
      stop();
      throw e;
    });
  return finish(value as T);
}

function report<T>(s: Session, value: T, totalMs: number, peak: number | null, peakSource: string, threads: number): Profile<T> {
  const rate = (flops: number, ms: number, cpu = true) => (flops > 0 && ms > 0 && cpu ? flops / ms / 1e6 : null);
  const ops = [...s.ops.values()]
    .map((r) => {
      const gflops = rate(r.flops, r.ms, r.device === "cpu");
      return { ...r, gflops, ofPeak: gflops !== null && peak ? gflops / peak : null };
    })
    .sort((a, b) => b.ms - a.ms);
  const layers = [...s.layers.values()].map((l) => {
    const gflops = rate(l.flops, l.forwardMs + l.backwardMs);
    return { ...l, paths: [...l.paths], gflops, ofPeak: gflops !== null && peak ? gflops / peak : null };
  });
  const p: Profile<T> = {
    value,
    totalMs,
    opsMs: ops.reduce((a, r) => a + r.ms, 0),
    peakGflops: peak,
    peakSource,
    threads,
    ops,
    layers,
    toString: () => formatProfile(p),
  };
  return p;
}

// ---- the table ----

const ms = (v: number) => v.toFixed(v < 10 ? 2 : 1);
const rate = (v: number | null) => (v === null ? "-" : v.toFixed(1));
const share = (v: number | null) => (v === null ? "-" : `${(100 * v).toFixed(0)}%`);

function table(head: string[], rows: string[][], right: boolean[]): string[] {
  const all = [head, ...rows];
  const w = head.map((_, c) => Math.max(...all.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((v, c) => (right[c] ? v.padStart(w[c]) : v.padEnd(w[c]))).join("  ").trimEnd();
  const rule = "-".repeat(w.reduce((a, b) => a + b + 2, -2));
  return [rule, line(head), rule, ...rows.map(line), rule];
}

/** The profile as text: a header, the ops table (largest first) and the layers table. */
export function formatProfile(p: Profile): string {
  if (p === null || typeof p !== "object" || !Array.isArray(p.ops) || !Array.isArray(p.layers)) badArgument("formatProfile", "its argument", "what profile() returns", p);
  const peak = p.peakGflops === null ? "no peak measured" : `peak ${p.peakGflops.toFixed(1)} GFLOP/s (${p.peakSource})`;
  const out = [`Profile: ${ms(p.totalMs)} ms in all, ${ms(p.opsMs)} ms in ops (${share(p.totalMs > 0 ? p.opsMs / p.totalMs : null)}); ${p.threads} thread${p.threads > 1 ? "s" : ""}; ${peak}`];
  const opRows = p.ops.map((r) => [r.op, r.phase, r.path || "-", r.device, String(r.calls), ms(r.ms), share(p.totalMs > 0 ? r.ms / p.totalMs : null), rate(r.gflops), share(r.ofPeak)]);
  opRows.push(["(outside ops)", "", "", "", "", ms(Math.max(0, p.totalMs - p.opsMs)), share(p.totalMs > 0 ? Math.max(0, p.totalMs - p.opsMs) / p.totalMs : null), "", ""]);
  out.push(...table(["Op", "Phase", "Path", "Device", "Calls", "ms", "% time", "GFLOP/s", "% peak"], opRows, [false, false, false, false, true, true, true, true, true]));
  if (p.ops.some((r) => r.device === "webgpu")) out.push("webgpu rows: the time to encode and queue the work, not GPU time");
  out.push("(outside ops): optimiser steps, data, JavaScript between the ops");
  if (p.layers.length) {
    const rows = p.layers.map((l) => [l.name, l.layer, String(l.calls), ms(l.forwardMs), ms(l.backwardMs), rate(l.gflops), share(l.ofPeak), l.paths.join(", ") || "-"]);
    out.push("", ...table(["Layer", "Type", "Calls", "Fwd ms", "Bwd ms", "GFLOP/s", "% peak", "Path"], rows, [false, false, true, true, true, true, true, false]));
    out.push("Fwd ms: wall time of the layer's forward, children included; Bwd ms: its ops' backward");
  }
  return out.join("\n");
}
