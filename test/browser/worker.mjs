// A module worker that drives simdnet (a worker may block in Atomics.wait, a page may not).
import * as sn from "../../dist/index.js";
import { runCases } from "./cases.mjs";
import { runGpuCases } from "./gpu_cases.mjs";

// trace: tell the page when the pool calls new Worker(), when that returns, and when a worker
// reports ready: where a start that hangs is stuck (runner.html's watchdog, stress_start.mjs)
const RealWorker = self.Worker;
class TracedWorker extends RealWorker {
  constructor(...args) {
    self.postMessage({ trace: "new Worker() called" });
    super(...args);
    self.postMessage({ trace: "new Worker() returned" });
    this.addEventListener("message", (m) => m.data?.type && self.postMessage({ trace: `worker says ${m.data.type}` }));
  }
  terminate() {
    self.postMessage({ trace: "terminate() called" });
    super.terminate();
  }
}

self.onmessage = async (e) => {
  const { cmd, threads, files } = e.data;
  if (e.data.trace) self.Worker = TracedWorker;
  // a browser that rounds its core count (WebKit reports 4 on two cores): the engine reads it
  // in this worker, the thread that calls init() (the pool's workers never read it)
  if (e.data.reported) Object.defineProperty(navigator, "hardwareConcurrency", { value: e.data.reported, configurable: true });
  try {
    if (cmd === "cases") {
      const info = await sn.init({ threads, minParallelWork: 0 });
      const loaded = [];
      for (const name of files) loaded.push({ name, bytes: new Uint8Array(await (await fetch(`/test/fixtures/${name}`)).arrayBuffer()) });
      const result = runCases(sn, loaded);
      // again: a second init() like the first (the thread count timing is not repeated)
      const again = e.data.again ? await sn.init({ threads, minParallelWork: 0 }) : undefined;
      self.postMessage({ ok: true, info, result, again });
    } else if (cmd === "gpucases") {
      const info = await sn.init({ threads: 1, webgpu: true });
      if (!info.webgpu.available) return self.postMessage({ ok: true, info, result: null });
      const loaded = [];
      for (const name of files) loaded.push({ name, bytes: new Uint8Array(await (await fetch(`/test/fixtures/${name}`)).arrayBuffer()) });
      self.postMessage({ ok: true, info, result: await runGpuCases(sn, loaded) });
    } else if (cmd === "init") {
      const t0 = performance.now();
      const info = await sn.init({ threads });
      self.postMessage({ ok: true, info, ms: performance.now() - t0 });
    } else if (cmd === "hang") {
      // The pool's workers never report ready (their script is empty): init() must fail with a
      // clear error in bounded time, and the next init() with working workers must succeed.
      // The pool's 20 s start timeout is shortened here by scaling this worker's timers.
      const Before = self.Worker, realSetTimeout = self.setTimeout;
      const silent = URL.createObjectURL(new Blob([""], { type: "text/javascript" }));
      self.Worker = class extends Before {
        constructor() {
          super(silent);
        }
      };
      self.setTimeout = (f, ms, ...rest) => realSetTimeout(f, ms >= 10000 ? ms / 40 : ms, ...rest);
      const t0 = performance.now();
      let message = null;
      try {
        await sn.init({ threads });
      } catch (err) {
        message = err.message;
      } finally {
        self.Worker = Before;
        self.setTimeout = realSetTimeout;
      }
      const failedAfterMs = performance.now() - t0;
      const info = await sn.init({ threads });
      self.postMessage({ ok: true, message, failedAfterMs, info });
    } else if (cmd === "trap") {
      const info = await sn.init({ threads });
      let message = null;
      try {
        sn.engine().runAll("debug_trap_on", [e.data.thread ?? 1]);
      } catch (err) {
        message = err.message;
      }
      let deadMessage = null;
      try {
        sn.engine().runAll("__exit__", []);
      } catch (err) {
        deadMessage = err.message;
      }
      self.postMessage({ ok: true, info, message, deadMessage });
    }
  } catch (err) {
    // JavaScriptCore's stacks have no message line: send both
    self.postMessage({ ok: false, error: err && err.stack ? `${err.message}\n${err.stack}` : String(err) });
  }
};
