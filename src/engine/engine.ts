// The engine: one shared memory, the arena on it, the kernels and the worker pool.
import { Arena, ARENA_BASE, PAGE, MAX_PAGES, fmt } from "./arena.js";
import { detectFeatures, type Features } from "./features.js";
import { compileBuild, type Build } from "./wasm.js";
import { chooseBuild } from "./buildchoice.js";
import { Pool, MAX_THREADS } from "./pool.js";
import { measureThreads, settleThreads, MAX_CHECKED, type ThreadChoice } from "./threadchoice.js";
import { createGpuEngine, type GpuEngine, type WebgpuInfo, type WebgpuOptions } from "../webgpu/engine.js";
import { _setGpuEngine } from "../tensor.js";
import { checkOptions, keysOf } from "../options.js";
import { CONV3X3_CHOICES, CONV5X5_CHOICES, type Conv3x3, type Conv5x5 } from "../ops/winograd.js";

export interface InitOptions {
  /** Threads including the caller, always honoured (1 where memory cannot be shared; more
   *  than Engine.maxThreads is an error). Default: all cores, at most Engine.maxThreads; in a
   *  browser, where navigator.hardwareConcurrency may be rounded up (WebKit reports 4 on two
   *  cores), init() times that count against half of it at start and keeps only the threads
   *  that add speed (src/engine/threadchoice.ts); info.threadsReason says what it found. */
  threads?: number;
  /** Which kernel build: "auto" (default) times both where the runtime has relaxed SIMD and
   *  runs the faster (src/engine/buildchoice.ts); info.buildReason says why. */
  build?: Build | "auto";
  /** Guard bytes after every buffer, checked when it is freed (tests). */
  sentinels?: boolean;
  /** false: act as a page without cross-origin isolation (plain memory, one thread). */
  sharedMemory?: boolean;
  /** Work below which a kernel runs on the caller alone (default 32768; tests use 0 to split
   *  every kernel across the threads). */
  minParallelWork?: number;
  /** Run the main kernels a few times on every thread at start (default true): the first calls
   *  of a wasm function run unoptimised code until the engine tiers it up. */
  warmUp?: boolean;
  /** Also start the WebGPU engine (tensors and models move there with .to("webgpu")). Where
   *  there is no WebGPU, init still succeeds and info.webgpu says why. */
  webgpu?: boolean | WebgpuOptions;
  /** The most bytes the wasm memory may grow to (default and at most 4 GiB, the wasm32 limit;
   *  at least 2 MiB): a page can keep simdnet from taking more than its share. */
  maxMemory?: number;
  /** How 3x3 stride-1 convolutions run (docs/kernels.md): "auto" (default), "winograd" or
   *  "im2col" (the exact path). Also settable later as engine.conv3x3. */
  conv3x3?: Conv3x3;
  /** How 5x5 stride-1 convolutions run (docs/kernels.md): "auto" (default), "winograd"
   *  (F(2x2,5x5)) or "im2col" (the exact path). Also settable later as engine.conv5x5. */
  conv5x5?: Conv5x5;
  /** Fuse Conv2d -> BatchNorm2d (eval) [-> + shortcut] [-> ReLU] into one conv2d_fused op in
   *  inference (default true; src/nn/fusion.ts, docs/performance.md): same bits, fewer passes.
   *  Also settable later as engine.fuse. */
  fuse?: boolean;
}

const INIT_OPTIONS = keysOf<InitOptions>({ threads: true, build: true, sentinels: true, sharedMemory: true, minParallelWork: true, warmUp: true, webgpu: true, maxMemory: true, conv3x3: true, conv5x5: true, fuse: true });
const WEBGPU_OPTIONS = keysOf<WebgpuOptions>({ allowFallback: true, powerPreference: true });

function checkInitOptions(where: string, opts: InitOptions): void {
  checkOptions(where, opts, INIT_OPTIONS);
  if (opts.webgpu !== undefined && typeof opts.webgpu !== "boolean") checkOptions(where, opts.webgpu, WEBGPU_OPTIONS, { in: "webgpu" });
  if (opts.conv3x3 !== undefined) checkConv3x3("init", opts.conv3x3);
  if (opts.conv5x5 !== undefined) checkChoice("init", "conv5x5", opts.conv5x5, CONV5X5_CHOICES);
  if (opts.fuse !== undefined && typeof opts.fuse !== "boolean") throw new TypeError(`simdnet: init: fuse must be true or false, got ${JSON.stringify(opts.fuse)}`);
}

function checkConv3x3(where: string, c: unknown): void {
  checkChoice(where, "conv3x3", c, CONV3X3_CHOICES);
}

function checkChoice(where: string, name: string, c: unknown, choices: readonly string[]): void {
  if (!choices.includes(c as string))
    throw new RangeError(`simdnet: ${where}: ${name} must be one of ${choices.map((c) => JSON.stringify(c)).join(", ")}, got ${JSON.stringify(c)}`);
}

export interface EngineInfo {
  threads: number;
  /** why this many threads: asked for, all cores (Node), or what the start-up timing of the
   *  browser's reported count found, e.g. "4 reported, 2 measured useful (2→4: 0.98x; 1→2:
   *  1.82x, 1.77x; ...)" */
  threadsReason: string;
  build: Build;
  /** why this build: asked for, the only one the runtime has, or what the start-up timing found */
  buildReason: string;
  simd: boolean;
  relaxedSimd: boolean;
  sharedMemory: boolean;
  crossOriginIsolated: boolean;
  env: Features["env"];
  /** why fewer threads than asked were started, if so */
  fallback?: string;
  /** what init({ webgpu: true }) found (absent when WebGPU was not asked for) */
  webgpu?: WebgpuInfo;
}

/** Work (in elements or multiply-adds) below which a kernel runs on the calling thread alone:
 *  waking the pool costs more than it saves. Same bits either way (kernels are split-invariant). */
const SMALL_WORK = 1 << 15;


let engineCount = 0;

/** The thread count timing's answers, by reported count (see Engine.create). */
const threadChoices = new Map<number, ThreadChoice>();

/** Why memory cannot be shared here, for info.fallback: each case has its own remedy. */
function whyNoSharedMemory(f: Features, opts: InitOptions): string {
  if (opts.sharedMemory === false) return "no shared memory (sharedMemory: false, as on a page without SharedArrayBuffer)";
  if (f.env !== "node" && !f.crossOriginIsolated) return "no SharedArrayBuffer (the page is not cross-origin isolated)";
  if (!f.sharedArrayBuffer) return "this browser has no SharedArrayBuffer, even on a cross-origin isolated page";
  return "SharedArrayBuffer exists but a shared WebAssembly.Memory could not be created";
}

export class Engine {
  /** The most threads an engine runs (the caller included). */
  static readonly maxThreads = MAX_THREADS;
  readonly id = ++engineCount;
  readonly device = "cpu" as const;
  readonly arena: Arena;
  readonly info: EngineInfo;
  disposed = false;
  private exports: Record<string, Function>;
  private index = new Map<string, number>();
  private names: string[];
  private scratchPtr = 0;
  private scratchBytes = 0;
  private f32View: Float32Array;
  minParallelWork = SMALL_WORK;
  /** Weight packs built so far (src/ops/packs.ts; a count for tests and benchmarks). */
  weightPacks = 0;
  private conv3x3Choice: Conv3x3 = "auto";
  /** How 3x3 stride-1 convolutions run (InitOptions.conv3x3); may be changed at any time. */
  get conv3x3(): Conv3x3 {
    return this.conv3x3Choice;
  }
  set conv3x3(c: Conv3x3) {
    checkConv3x3("engine.conv3x3", c);
    this.conv3x3Choice = c;
  }
  private conv5x5Choice: Conv5x5 = "auto";
  /** How 5x5 stride-1 convolutions run (InitOptions.conv5x5); may be changed at any time. */
  get conv5x5(): Conv5x5 {
    return this.conv5x5Choice;
  }
  set conv5x5(c: Conv5x5) {
    checkChoice("engine.conv5x5", "conv5x5", c, CONV5X5_CHOICES);
    this.conv5x5Choice = c;
  }
  /** Whether models fuse Conv2d -> BatchNorm2d (eval) [-> + shortcut] [-> ReLU] into one op in
   *  inference (InitOptions.fuse; src/nn/fusion.ts). May be changed at any time. */
  fuse = true;
  /** Output positions per image up to which a convolution lays the columns of several images
   *  side by side for one GEMM (src/ops/conv_small.ts; 3x3 maps and smaller by default); 0
   *  keeps every convolution on the per-image kernels. For benchmarks and tests. */
  smallMapPositions = 9;
  /** For tests: the caller runs every share of every kernel itself, as if no worker came in
   *  time (the results must have the same bits). */
  solo = false;

  private constructor(
    readonly memory: WebAssembly.Memory,
    instance: WebAssembly.Instance,
    private pool: Pool | null,
    info: EngineInfo,
    sentinels: boolean,
    maxBytes: number,
  ) {
    this.exports = instance.exports as any;
    this.names = Object.keys(this.exports).filter((n) => typeof this.exports[n] === "function");
    this.names.push("__exit__");
    this.names.forEach((n, i) => this.index.set(n, i));
    this.arena = new Arena(memory, sentinels, maxBytes);
    this.info = info;
    this.f32View = new Float32Array(memory.buffer);
  }

  static async create(opts: InitOptions = {}): Promise<Engine> {
    checkInitOptions("Engine.create", opts);
    const features = await detectFeatures();
    if (opts.sharedMemory === false) features.sharedMemory = false;
    if (opts.build !== undefined && !["auto", "relaxed", "simd"].includes(opts.build as string))
      throw new RangeError(`simdnet: init: build must be "auto", "relaxed" or "simd", got ${JSON.stringify(opts.build)}`);
    if (opts.build === "relaxed" && !features.relaxedSimd) throw new Error("simdnet: relaxed SIMD was asked for but this runtime does not validate it");
    let fallback: string | undefined;
    let threads: number;
    let threadsReason: string;
    if (opts.threads === undefined) {
      // all cores, up to the pool's limit: a machine with more cores still gets an engine
      threads = Math.max(1, Math.min(features.cores, MAX_THREADS));
      if (features.cores > MAX_THREADS) fallback = `${features.cores} cores, but the engine runs at most ${MAX_THREADS} threads`;
      threadsReason =
        features.env === "node"
          ? `all ${features.cores} cores (os.availableParallelism(): exact, not timed)`
          : `${features.cores} reported by navigator.hardwareConcurrency`;
    } else {
      threads = opts.threads;
      threadsReason = `init({ threads: ${threads} }) asked for it`;
      if (Number.isInteger(threads) && threads > MAX_THREADS)
        throw new RangeError(`simdnet: init: threads ${threads} is above the engine's maximum of ${MAX_THREADS} threads`);
      if (!Number.isInteger(threads) || threads < 1)
        throw new RangeError(`simdnet: init: threads must be an integer from 1 to ${MAX_THREADS}, got ${opts.threads}`);
    }
    if (threads > 1 && !features.sharedMemory) {
      fallback = `${whyNoSharedMemory(features, opts)}: running on one thread`;
      threads = 1;
      threadsReason = "one thread: no shared memory (info.fallback)";
    } else if (threads > 1 && !features.canBlock) {
      fallback = "a browser main thread may not block: running on one thread (drive simdnet from a worker for threads)";
      threads = 1;
      threadsReason = "one thread: a browser main thread (info.fallback)";
    }
    // the browser's count is timed (src/engine/threadchoice.ts; not in Node, whose count is
    // exact); an explicit count never is. Once per reported count and process, like the build
    // choice: a later init() starts the count kept then, with no timing and no extra workers.
    // Not at 2: the roundings that report more cores than there are report 4 or more (WebKit:
    // 4 or 8), and timing 2 against 1 on a busy moment would keep one thread for the page's life
    let timeThreads = opts.threads === undefined && features.env !== "node" && threads > 2 && threads <= MAX_CHECKED;
    if (opts.threads === undefined && features.env !== "node" && threads === 2) threadsReason += " (not timed: no rounding reports 2 for more or fewer cores)";
    const before = timeThreads ? threadChoices.get(threads) : undefined;
    if (before) {
      threads = before.threads;
      threadsReason = `${before.reason}, timed at an earlier init()`;
      timeThreads = false;
    }
    if (opts.threads === undefined && features.env !== "node" && threads > MAX_CHECKED) threadsReason += ` (not timed above ${MAX_CHECKED})`;

    const maxMemory = opts.maxMemory ?? MAX_PAGES * PAGE;
    if (typeof maxMemory !== "number" || !Number.isInteger(maxMemory) || maxMemory < 2 * 2 ** 20 || maxMemory > MAX_PAGES * PAGE)
      throw new RangeError(`simdnet: init: maxMemory must be a whole number of bytes from 2 MiB to 4 GiB, got ${JSON.stringify(opts.maxMemory)}`);
    const maxPages = Math.floor(maxMemory / PAGE);
    const initial = Math.min(maxPages, Math.ceil((ARENA_BASE + 16 * 2 ** 20) / PAGE));
    // Where memory cannot be shared (a page that is not cross-origin isolated) the .single build
    // imports a plain memory: same source, same flags otherwise, so the same bits.
    const shared = features.sharedMemory;
    const { build, reason: buildReason } =
      !opts.build || opts.build === "auto" ? await chooseBuild(features, shared) : { build: opts.build, reason: `init({ build: "${opts.build}" }) asked for it` };
    const module = await compileBuild(build, shared);
    const memory = new WebAssembly.Memory({ initial, maximum: maxPages, shared } as any);
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    const info: EngineInfo = {
      threads,
      threadsReason,
      build,
      buildReason,
      simd: features.simd,
      relaxedSimd: features.relaxedSimd,
      sharedMemory: features.sharedMemory,
      crossOriginIsolated: features.crossOriginIsolated,
      env: features.env,
      fallback,
    };
    const names = Object.keys(instance.exports).filter((n) => typeof (instance.exports as any)[n] === "function");
    names.push("__exit__");
    const pool = threads > 1 ? await Pool.start(module, memory, threads, names) : null;
    const e = new Engine(memory, instance, pool, info, !!opts.sentinels, maxPages * PAGE);
    if (opts.minParallelWork !== undefined) e.minParallelWork = opts.minParallelWork;
    if (opts.conv3x3 !== undefined) e.conv3x3 = opts.conv3x3;
    if (opts.conv5x5 !== undefined) e.conv5x5 = opts.conv5x5;
    if (opts.fuse !== undefined) e.fuse = opts.fuse;
    if (timeThreads) {
      try {
        threadChoices.set(threads, e._settleThreads());
      } catch (err) {
        e.dispose();
        throw err;
      }
    }
    return e;
  }

  /** The start-up timing of thread counts (src/engine/threadchoice.ts): times the pool's
   *  count against halves of it and retires the workers that add no speed; info.threads and
   *  info.threadsReason then say what was kept. Internal: create() calls it in a browser when
   *  init() was not given threads; tests also call it in Node, and with fake timings
   *  (`fakeTimePair`, as settleThreads takes them) to shrink the pool to a known count.
   *  Results are the same bits on any count, so this changes only speed. */
  _settleThreads(fakeTimePair?: (more: number, fewer: number) => { more: number; fewer: number }): ThreadChoice {
    this.assertAlive();
    const choice = fakeTimePair ? settleThreads(this.info.threads, fakeTimePair) : measureThreads(this, this.info.threads);
    if (choice.threads < this.info.threads && this.pool) {
      if (choice.threads === 1) {
        // no worker left: the kernels are called directly, as on a one-thread engine
        this.pool.dispose();
        this.pool = null;
      } else this.pool.shrink(choice.threads);
    }
    const info = this.info as EngineInfo;
    info.threads = choice.threads;
    info.threadsReason = choice.reason;
    return choice;
  }

  /** A kernel as `nth` shares on that many of the pool's threads (the thread count timing);
   *  one share is a direct call, as on a one-thread engine. */
  runShares(name: string, args: number[], nth: number): void {
    this.assertAlive();
    const k = this.index.get(name);
    if (k === undefined) throw new Error(`simdnet: no kernel named ${name}`);
    const f = this.exports[name];
    if (!this.pool || nth === 1) f(...args, 0, 1);
    else this.pool.run(k, args, (ith, n) => f(...args, ith, n), false, nth);
  }

  get threads(): number {
    return this.info.threads;
  }

  /** A Float32Array over the whole memory (rebuilt after the memory grows). */
  get heapF32(): Float32Array {
    if (this.f32View.buffer.byteLength !== this.memory.buffer.byteLength) this.f32View = new Float32Array(this.memory.buffer);
    return this.f32View;
  }

  /** Called before every allocation while set (a checked model build charges each one against
   *  what the weight file holds, and throws to refuse it). */
  allocGuard: ((bytes: number, what: string) => void) | null = null;

  alloc(bytes: number, what?: string): number {
    this.assertAlive();
    if (this.allocGuard) this.allocGuard(bytes, what ?? "a buffer");
    return this.arena.alloc(bytes, what);
  }

  release(ptr: number): void {
    if (!this.disposed) this.arena.release(ptr);
  }

  /** Per-thread scratch of at least `bytesPerThread`; kernels use scratch + ith * bytesPerThread.
   *  Kept between calls and grown when a bigger one is asked for. */
  scratch(bytesPerThread: number): number {
    const need = Math.ceil(bytesPerThread / 64) * 64 * this.threads;
    if (need > this.scratchBytes) {
      if (this.scratchPtr) this.arena.release(this.scratchPtr);
      this.scratchPtr = 0;
      this.scratchBytes = 0;
      this.scratchPtr = this.arena.alloc(need, "kernel scratch");
      this.scratchBytes = need;
    }
    return this.scratchPtr;
  }

  /** Run a kernel on all threads (or on the caller alone for small work). Args are the
   *  kernel's own; (ith, nth) are appended. */
  run(name: string, args: number[], work = Infinity): void {
    this.assertAlive();
    const k = this.index.get(name);
    if (k === undefined) throw new Error(`simdnet: no kernel named ${name}`);
    const f = this.exports[name];
    if (!this.pool || work < this.minParallelWork) {
      try {
        f(...args, 0, 1);
      } catch (e) {
        throw new Error(`simdnet: kernel ${name} failed: ${(e as Error).message}`);
      }
      return;
    }
    this.pool.run(k, args, (ith, nth) => f(...args, ith, nth), this.solo);
  }

  /** For tests: run a kernel on every thread even when the work is small. */
  runAll(name: string, args: number[]): void {
    this.run(name, args, Infinity);
  }

  /** For tests: make worker `ith` die; with `afterMs`, terminated from another thread that many
   *  ms later, wherever it is (Node). */
  killWorker(ith: number, afterMs?: number): void {
    this.pool?.killWorker(ith, afterMs);
  }

  memoryStats() {
    return { live: this.arena.liveBytes, reserved: this.arena.bytesReserved, wasmMemory: this.memory.buffer.byteLength, limit: this.arena.limit, human: fmt(this.arena.liveBytes) };
  }

  assertAlive(): void {
    if (this.disposed) throw new Error("simdnet: this engine was disposed; call init() again");
  }

  dispose(): void {
    if (this.disposed) return;
    this.pool?.dispose();
    this.pool = null;
    this.disposed = true;
  }
}

let current: Engine | null = null;

/** Set by the ops layer: a few small calls of the hot kernels (GEMM, conv forward/backward). */
let warmUpHook: ((e: Engine) => void) | null = null;
export function _setWarmUp(f: (e: Engine) => void): void {
  warmUpHook = f;
}

/** Start the engine (compile the kernels, start the worker pool). Returns what it got. */
export async function init(opts: InitOptions = {}): Promise<EngineInfo> {
  checkInitOptions("init", opts);
  if (current && !current.disposed) current.dispose();
  currentGpu?.dispose();
  currentGpu = null;
  current = await Engine.create(opts);
  if (opts.webgpu) {
    const { engine: g, info } = await createGpuEngine(opts.webgpu === true ? {} : opts.webgpu);
    currentGpu = g;
    (current.info as EngineInfo).webgpu = info;
  }
  if (opts.warmUp !== false && warmUpHook) {
    const keep = current.minParallelWork;
    current.minParallelWork = 0; // every thread warms up
    try {
      warmUpHook(current);
    } finally {
      current.minParallelWork = keep;
    }
  }
  return current.info;
}

export function engine(): Engine {
  if (!current || current.disposed) throw new Error("simdnet: no engine: call `await init()` first");
  return current;
}

export function dispose(): void {
  current?.dispose();
  current = null;
  currentGpu?.dispose();
  currentGpu = null;
}

let currentGpu: GpuEngine | null = null;

/** The WebGPU engine started by init({ webgpu: true }). */
export function gpuEngine(): GpuEngine {
  if (!currentGpu) throw new Error("simdnet: no WebGPU engine: call `await init({ webgpu: true })` first and check info.webgpu.available");
  currentGpu.assertAlive();
  return currentGpu;
}
_setGpuEngine(gpuEngine);
