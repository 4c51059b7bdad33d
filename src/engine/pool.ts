// The worker pool. Every worker holds its own instance of the one compiled module on the one
// shared memory. A job is published in a control block in low memory (kernel index, f64 args)
// and run as nth shares; the calling thread runs shares too and then blocks in Atomics.wait
// until every share is done. Kernel errors are caught and reported through the control block; a
// worker that exits marks itself dead, so a call never hangs.
//
// Shares. Share s of a job is the kernel called with (ith = s, nth). Whichever thread comes
// claims the next unclaimed share from a counter, the caller too, until none is left, and the
// job is done when all nth shares are. The kernels split their work by (ith, nth) alone
// (docs/kernels.md), so who runs a share changes no bit; and a worker the OS has not run for a
// while no longer holds the job back, the caller runs its share instead. (Kernels that take
// finer items from a second counter, `take` in assembly/common.ts, also balance the load
// between shares that run at once.) A worker reads the job only after claiming a share of it,
// and the caller writes the job before it resets the share counter: a worker that wakes up
// late either finds every share taken or claims a share of the job now published.

import { isNode, nodeWorkerThreads } from "../platform/index.js";

// Control block layout (byte offsets in low memory, below ARENA_BASE). It sits at the top of the
// reserved first 64 KiB: the kernels' static data (read-only tables, if any) starts at 1024 and
// is copied again by every worker's instantiation, so it must end below CTRL (checked on load).
export const CTRL = 57344; // Int32 words
const ARGS = CTRL + 1024; // Float64 args
const MAX_ARGS = 48;
const MSG = CTRL + 2048; // error message bytes
const MSG_LEN = 2048;
// word indices. W_GEN: job generation (what sleeping workers wait on); W_DONE: shares done;
// W_SHARE: the next unclaimed share; W_NEXT: the item counter of `take` (assembly/common.ts
// WORK_COUNTER = CTRL + 4*W_NEXT); W_NTH: the current job's share count (the pool's size, or
// fewer: Pool.run's nth); W_LIVE: the threads that stay (Pool.shrink retires the others)
const W_GEN = 0, W_DONE = 1, W_KERNEL = 2, W_NARGS = 3, W_ERR = 4, W_STOP = 5, W_ERR_THREAD = 6, W_NTH = 7, W_NEXT = 8, W_SHARE = 9, W_LIVE = 10;
const W_DEAD = 16; // one word per thread
const W_RETIRED = 80; // one word per thread: set by a worker that has left its loop for good (shrink)
export const MAX_THREADS = 64;
export const WORK_COUNTER = CTRL + 4 * W_NEXT;

/** Body of every worker, shipped as source text so the same code runs from a bundle, from the
 *  sources, in Node (worker_threads, eval) and in browsers (a Blob URL). Self-contained; the
 *  word indices are the ones above. */
function workerMain(CTRL: number, ARGS: number, MSG: number, MSG_LEN: number, nodeRequire: any) {
  const g: any = globalThis;
  let post: (m: any) => void;
  const onMessage = (fn: (m: any) => void) => {
    if (nodeRequire) {
      const wt = nodeRequire("node:worker_threads");
      post = (m) => wt.parentPort.postMessage(m);
      wt.parentPort.once("message", fn);
    } else {
      post = (m) => g.postMessage(m);
      g.onmessage = (e: any) => fn(e.data);
    }
  };
  onMessage((init: any) => {
    const { module, memory, ith, names } = init;
    let exports: any;
    try {
      exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
    } catch (e) {
      post({ type: "error", message: String(e) });
      return;
    }
    const fns = names.map((n: string) => exports[n]);
    const ctrl = new Int32Array(memory.buffer, CTRL, 256);
    const args = new Float64Array(memory.buffer, ARGS, 48);
    const markDead = () => {
      Atomics.store(ctrl, 16 + ith, 1);
      Atomics.notify(ctrl, 1);
    };
    if (typeof process !== "undefined" && (process as any).on) (process as any).on("exit", markDead);
    post({ type: "ready" });
    const a: number[] = [];
    for (;;) {
      // the generation before the claim: if no share is left, sleep until it changes
      const gen = Atomics.load(ctrl, 0);
      if (Atomics.load(ctrl, 5)) break;
      // retired by Pool.shrink: say so and never touch the control block again (the pool then
      // terminates this worker; it can no longer be holding a share when it does)
      if (ith >= Atomics.load(ctrl, 10)) {
        Atomics.store(ctrl, 80 + ith, 1);
        Atomics.notify(ctrl, 80 + ith);
        return;
      }
      // a job split into fewer shares than the pool has threads (the start-up thread count
      // timing): the threads past its count sleep until the count changes (not woken by every
      // job: the timing of n threads is not to pay for the others' wake-ups). A stale read here
      // only costs fairness: the share count that matters is re-read after the claim below.
      const jobNth = Atomics.load(ctrl, 7);
      if (ith >= jobNth) {
        Atomics.wait(ctrl, 7, jobNth);
        continue;
      }
      const sh = Atomics.add(ctrl, 9, 1);
      // read after the claim: a claim of a share of the job now published also sees its count
      // (the caller writes it before it opens the shares)
      const nth = Atomics.load(ctrl, 7);
      if (sh >= nth) {
        // spin briefly (consecutive kernels follow each other closely; 20,000 spins are ~0.2 ms
        // on a 2.3 GHz Xeon), then sleep. Measured and not kept: spinning up to 1 ms by the
        // clock took the sleeps in a ResNet-18 batch-1 inference from 6-14 to 0-2 and gained
        // 0.7-1.6% with as many threads as cores, but cost 11-20% with 4 threads on 2 cores,
        // where the spinning workers take the caller's core (docs/performance.md)
        let spins = 0;
        while (Atomics.load(ctrl, 0) === gen && spins < 20000) spins++;
        Atomics.wait(ctrl, 0, gen);
        continue;
      }
      const k = ctrl[2], na = ctrl[3];
      if (names[k] === "__exit__") {
        // tests: a worker that dies mid-job
        markDead();
        if (typeof process !== "undefined" && (process as any).exit) (process as any).exit(1);
        else g.close();
        return;
      }
      a.length = 0;
      for (let i = 0; i < na; i++) a.push(args[i]);
      a.push(sh, nth);
      try {
        fns[k].apply(null, a);
      } catch (e) {
        if (Atomics.add(ctrl, 4, 1) === 0) {
          ctrl[6] = sh;
          const s = String(e && (e as any).stack ? (e as any).message || e : e);
          const bytes = new Uint8Array(memory.buffer, MSG, MSG_LEN);
          const n = Math.min(s.length, MSG_LEN - 1);
          for (let i = 0; i < n; i++) bytes[i] = s.charCodeAt(i) & 0x7f;
          bytes[n] = 0;
        }
      }
      if (Atomics.add(ctrl, 1, 1) === nth - 1) Atomics.notify(ctrl, 1);
    }
  });
}

/** The workers run the text of workerMain and supervisorMain. A bundle built with esbuild's
 *  keepNames (the browser build: identifiers minified, functions' names kept, tools/build.mjs)
 *  names their inner functions through a module-level helper, `h(fn, "name")` under whatever
 *  name the minifier gave it, which a worker does not have: this finds that name in a probe's
 *  own text and defines the helper for the worker (nothing where the text has no such call). */
function namePrelude(): string {
  const probe = () => {
    const inner = () => 0;
    return inner;
  };
  // (an app's minifier may requote the string: "inner", 'inner' or `inner`)
  const m = /([A-Za-z_$][\w$]*)\(\s*\(\)\s*=>\s*0\s*,\s*["'`]inner["'`]\s*\)/.exec(probe.toString());
  return m ? `var ${m[1]}=(f,n)=>Object.defineProperty(f,"name",{value:n,configurable:true});` : "";
}

/** Node: the supervisor's body (see Pool.startNode), shipped as text like workerMain. It starts
 *  the compute workers, reports when all are ready, and marks any that exits dead. */
function supervisorMain(CTRL: number, nodeRequire: any) {
  const { parentPort, Worker } = nodeRequire("node:worker_threads");
  const workers: any[] = [];
  parentPort.on("message", (m: any) => {
    if (m.type === "start") {
      const ctrl = new Int32Array(m.memory.buffer, CTRL, 256);
      let pending = m.nth - 1;
      for (let ith = 1; ith < m.nth; ith++) {
        const w = new Worker(m.src, { eval: true });
        workers[ith] = w;
        let ready = false;
        w.on("message", (d: any) => {
          if (d.type === "ready") {
            ready = true;
            if (--pending === 0) parentPort.postMessage({ type: "ready" });
          } else parentPort.postMessage({ type: "error", ith, message: d.message });
        });
        w.on("error", (e: any) => {
          if (!ready) parentPort.postMessage({ type: "error", ith, message: String(e && e.message ? e.message : e) });
        });
        w.on("exit", () => {
          Atomics.store(ctrl, 16 + ith, 1);
          Atomics.notify(ctrl, 1);
          if (!ready) parentPort.postMessage({ type: "error", ith, message: "it exited" });
        });
        w.postMessage({ module: m.module, memory: m.memory, ith, names: m.names });
      }
    } else if (m.type === "retire") {
      // Pool.shrink: these workers have left their loops; end them
      for (let ith = m.from; ith < workers.length; ith++) if (workers[ith]) workers[ith].terminate();
      workers.length = Math.min(workers.length, m.from);
    } else if (m.type === "kill") {
      setTimeout(() => workers[m.ith] && workers[m.ith].terminate(), m.afterMs);
    }
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: any;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WorkerError(message)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** How long a worker may take to report ready before init() fails (a page must never wait
 *  forever; a normal start takes well under a second). */
export const START_TIMEOUT_MS = 20000;

export class WorkerError extends Error {}

interface AnyWorker {
  postMessage(m: any): void;
  terminate(): any;
}

export class Pool {
  /** threads, the caller included (fewer after shrink) */
  nth: number;
  private workers: AnyWorker[] = [];
  private ctrl: Int32Array;
  private args: Float64Array;
  private broken: string | null = null;
  /** Node: the worker that owns the compute workers (see startNode) */
  private supervisor: any = null;

  private constructor(private memory: WebAssembly.Memory, nth: number, private names: string[]) {
    this.nth = nth;
    this.ctrl = new Int32Array(memory.buffer, CTRL, 256);
    this.args = new Float64Array(memory.buffer, ARGS, MAX_ARGS);
    this.ctrl.fill(0);
    this.ctrl[W_NTH] = nth;
    this.ctrl[W_LIVE] = nth;
    this.ctrl[W_SHARE] = nth; // no job: no share to claim
  }

  static async start(module: WebAssembly.Module, memory: WebAssembly.Memory, nth: number, names: string[], startTimeoutMs = START_TIMEOUT_MS): Promise<Pool> {
    if (nth > MAX_THREADS) throw new RangeError(`simdnet: at most ${MAX_THREADS} threads (asked for ${nth})`);
    const pool = new Pool(memory, nth, names);
    // `require` is passed in from the worker's own scope (text the bundler does not rewrite)
    const src = `${namePrelude()}(${workerMain.toString()})(${CTRL}, ${ARGS}, ${MSG}, ${MSG_LEN}, typeof require === "function" ? require : null);`;
    try {
      if (isNode) await pool.startNode(module, src, startTimeoutMs);
      else await pool.startBrowser(module, src, startTimeoutMs);
    } catch (e) {
      pool.dispose();
      throw e;
    }
    return pool;
  }

  /** Node: the compute workers are children of a supervisor worker. The caller blocks in
   *  Atomics.wait while a kernel runs, so it cannot receive a worker's 'exit' event; the
   *  supervisor's event loop is free, and it marks a worker that exits for any reason
   *  (terminate(), process.exit, an uncaught error, a memory limit) dead in the control block
   *  and wakes the caller, without the dying worker's cooperation. */
  private async startNode(module: WebAssembly.Module, src: string, timeoutMs: number) {
    const { Worker } = await nodeWorkerThreads();
    const sup = `${namePrelude()}(${supervisorMain.toString()})(${CTRL}, require);`;
    // the workers' code is CommonJS text (it uses require): a parent started with
    // --input-type=module (node -e with ESM) must not pass that on, or eval would take it as ESM
    // (execArgv given at all is checked flag by flag: --expose-gc, say, is refused; so only then)
    const esm = process.execArgv.some((a) => a.startsWith("--input-type"));
    const w: any = new Worker(sup, esm ? { eval: true, execArgv: [] } : { eval: true });
    this.supervisor = w;
    w.postMessage({ type: "start", module, memory: this.memory, nth: this.nth, names: this.names, src });
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        w.on("message", (d: any) => {
          if (d.type === "ready") resolve();
          else if (d.type === "error") reject(new WorkerError(`simdnet: worker ${d.ith} failed to start: ${d.message}`));
        });
        w.once("error", (e: any) => reject(new WorkerError(`simdnet: the worker supervisor failed: ${e?.message ?? e}`)));
        w.once("exit", () => reject(new WorkerError("simdnet: the worker supervisor exited while starting")));
      }),
      timeoutMs,
      `simdnet: the ${this.nth - 1} worker thread(s) did not start within ${timeoutMs / 1000} s`,
    );
    // idle workers must not keep a Node process alive
    w.unref();
  }

  /** Browsers: workers from a Blob URL; a worker that does not report ready in bounded time
   *  fails the start with a clear error instead of leaving init() pending forever. */
  private async startBrowser(module: WebAssembly.Module, src: string, timeoutMs: number) {
    const blobUrl = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
    const ready: Promise<void>[] = [];
    try {
      for (let ith = 1; ith < this.nth; ith++) {
        const w: any = new Worker(blobUrl);
        this.workers.push(w);
        const started = new Promise<void>((resolve, reject) => {
          w.onmessage = (m: any) => {
            if (m.data.type === "ready") resolve();
            else reject(new WorkerError(`simdnet: worker ${ith} failed to start: ${m.data.message}`));
          };
          w.onerror = (e: any) => reject(new WorkerError(`simdnet: worker ${ith} failed to start: ${e?.message ?? e}`));
        });
        ready.push(withTimeout(started, timeoutMs, `simdnet: worker ${ith} did not start within ${timeoutMs / 1000} s`));
        w.postMessage({ module, memory: this.memory, ith, names: this.names });
      }
      await Promise.all(ready);
      // after the start, a worker that dies (an uncaught error) is marked dead: a later call
      // runs its shares on the caller or throws instead of waiting for it
      this.workers.forEach((w: any, i) => {
        w.onerror = () => {
          Atomics.store(this.ctrl, W_DEAD + i + 1, 1);
          Atomics.notify(this.ctrl, W_DONE);
        };
      });
    } finally {
      URL.revokeObjectURL(blobUrl);
    }
  }

  /** Runs kernel `k` as nth shares (see the top of the file); the caller runs shares too.
   *  `solo`: no worker is woken, so the caller runs the shares (tests: as if no worker came in
   *  time). `nth`: fewer shares than the pool has threads (the start-up timing of thread
   *  counts, src/engine/threadchoice.ts): the workers past that count sleep through the job.
   *  Throws if a share failed, naming its index as the thread. */
  run(k: number, args: ArrayLike<number>, self: (ith: number, nth: number) => void, solo = false, nth = this.nth): void {
    if (this.broken) throw new WorkerError(this.broken);
    const c = this.ctrl;
    if (!(nth >= 1 && nth <= this.nth)) throw new RangeError(`simdnet: a job of ${nth} shares on a pool of ${this.nth} threads`);
    if (args.length > MAX_ARGS) throw new Error(`simdnet: too many kernel arguments (${args.length})`);
    for (let i = 0; i < args.length; i++) this.args[i] = args[i];
    if (c[W_NTH] !== nth) {
      // (wakes the workers that sat out a job of fewer shares)
      Atomics.store(c, W_NTH, nth);
      Atomics.notify(c, W_NTH);
    }
    c[W_KERNEL] = k;
    c[W_NARGS] = args.length;
    c[W_ERR] = 0;
    c[W_NEXT] = 0;
    c[W_DONE] = 0;
    // the test hook of a worker that dies mid-job: its share must be left to a worker
    const exit = this.names[k] === "__exit__";
    // opening the shares publishes the job (the fields above are written before)
    Atomics.store(c, W_SHARE, solo ? 0 : exit ? 1 : 0);
    if (!solo) {
      Atomics.add(c, W_GEN, 1);
      Atomics.notify(c, W_GEN);
    }
    let ownError: unknown = null, ownShare = 0, own = exit ? 1 : 0;
    if (!exit)
      for (let sh = Atomics.add(c, W_SHARE, 1); sh < nth; sh = Atomics.add(c, W_SHARE, 1)) {
        try {
          self(sh, nth);
        } catch (e) {
          if (!ownError) {
            ownError = e;
            ownShare = sh;
          }
        }
        own++;
      }
    // the shares the caller ran count as done; wait for the ones workers run (even when solo: a
    // worker between two claims may have caught one)
    if (Atomics.add(c, W_DONE, own) + own !== nth) {
      let spins = 0;
      for (;;) {
        const d = Atomics.load(c, W_DONE);
        if (d === nth) break;
        if (spins < 100000) {
          spins++;
          continue;
        }
        Atomics.wait(c, W_DONE, d, 100);
        // (any live worker may have claimed a share, not only those below nth)
        for (let t = 1; t < this.nth; t++)
          if (Atomics.load(c, W_DEAD + t)) {
            this.broken = `simdnet: worker ${t} died while running ${this.names[k]}; dispose the engine and call init() again`;
            throw new WorkerError(this.broken);
          }
      }
    }
    if (ownError) throw new WorkerError(`simdnet: kernel ${this.names[k]} failed on thread ${ownShare}: ${(ownError as Error).message ?? ownError}`);
    if (c[W_ERR]) {
      const bytes = new Uint8Array(this.memory.buffer, MSG, MSG_LEN);
      let s = "";
      for (let i = 0; i < MSG_LEN && bytes[i]; i++) s += String.fromCharCode(bytes[i]);
      throw new WorkerError(`simdnet: kernel ${this.names[k]} failed on thread ${c[W_ERR_THREAD]}: ${s}`);
    }
  }

  /** Ends the workers from `nth` on, leaving a pool of nth threads (the caller included), when
   *  the start-up timing found the extra threads add no speed. Called between jobs. Each
   *  retiring worker first leaves its loop and says so (it sleeps between jobs, so this takes
   *  a wake-up), and only then is terminated: a worker terminated while it could still claim
   *  a share would leave a later job waiting for that share. Returns the ms it took. */
  shrink(nth: number, timeoutMs = 5000): number {
    if (this.broken) throw new WorkerError(this.broken);
    if (!(Number.isInteger(nth) && nth >= 1 && nth <= this.nth)) throw new RangeError(`simdnet: cannot shrink a pool of ${this.nth} threads to ${nth}`);
    if (nth === this.nth) return 0;
    const c = this.ctrl, t0 = performance.now();
    Atomics.store(c, W_LIVE, nth);
    Atomics.store(c, W_NTH, nth);
    // wake every worker, wherever it sleeps (between jobs, or sitting out a smaller job)
    Atomics.add(c, W_GEN, 1);
    Atomics.notify(c, W_GEN);
    Atomics.notify(c, W_NTH);
    for (let t = nth; t < this.nth; t++)
      while (!Atomics.load(c, W_RETIRED + t) && !Atomics.load(c, W_DEAD + t)) {
        // again each time: a worker that read the share count just before it was stored (the
        // same value) and only then went to sleep on it missed the first wake-up
        Atomics.notify(c, W_NTH);
        Atomics.notify(c, W_GEN);
        if (performance.now() - t0 > timeoutMs) {
          this.broken = `simdnet: worker ${t} did not stop within ${timeoutMs / 1000} s when the pool shrank; dispose the engine and call init() again`;
          throw new WorkerError(this.broken);
        }
        Atomics.wait(c, W_RETIRED + t, 0, 20);
      }
    if (this.supervisor) this.supervisor.postMessage({ type: "retire", from: nth });
    for (const w of this.workers.splice(nth - 1)) w.terminate();
    this.nth = nth;
    return performance.now() - t0;
  }

  /** For tests: make worker `ith` exit as if it crashed. With `afterMs`, it is terminated
   *  that many ms later from another thread, wherever it is (mid-kernel included), and nothing
   *  marks it dead but the pool's own watch (Node only). */
  killWorker(ith: number, afterMs?: number): void {
    if (ith < 1 || ith >= this.nth) return;
    if (afterMs === undefined) Atomics.store(this.ctrl, W_DEAD + ith, 1);
    if (this.supervisor) this.supervisor.postMessage({ type: "kill", ith, afterMs: afterMs ?? 0 });
    else this.workers[ith - 1]?.terminate();
  }

  dispose(): void {
    Atomics.store(this.ctrl, W_STOP, 1);
    Atomics.add(this.ctrl, W_GEN, 1);
    Atomics.notify(this.ctrl, W_GEN);
    Atomics.notify(this.ctrl, W_NTH);
    for (const w of this.workers) w.terminate();
    this.workers = [];
    // terminating the supervisor terminates the workers it started
    this.supervisor?.terminate();
    this.supervisor = null;
    this.broken = "simdnet: the engine was disposed";
  }
}
