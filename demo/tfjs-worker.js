// The benchmark tab's TF.js side (optional): TensorFlow.js's wasm backend (XNNPACK inside), loaded
// from the server's node_modules when it is there, on the same cases. One worker per thread count:
// TF.js fixes its thread count when the backend starts. Its UMD scripts set globalThis.tf, and a
// module worker has no importScripts, so they are evaluated at global scope (indirect eval).
import { timeIt, CASES } from "./bench-cases.js";

const ROOT = new URL("../node_modules/@tensorflow/", import.meta.url);

async function loadScript(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url.pathname}: HTTP ${r.status} (TF.js is not installed next to the demo)`);
  (0, eval)(await r.text());
}

function seeded(n, seed) {
  // a small LCG: the values only need to be the same every run, not the same as ours
  let s = seed * 2654435761 >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  return a;
}

/** The call to time, in TF.js's own layout (NHWC activations, HWIO filters); reading the result
 *  back (dataSync) is part of it, as a user's call would be. null: not comparable. */
function setup(tf, c) {
  if (c.kind === "matmul") {
    const a = tf.tensor(seeded(c.M * c.K, 1), [c.M, c.K]), b = tf.tensor(seeded(c.K * c.N, 2), [c.K, c.N]);
    return () => tf.tidy(() => void tf.matMul(a, b).dataSync());
  }
  if (c.kind === "conv2d") {
    const x = tf.tensor(seeded(c.N * c.H * c.W * c.C, 1), [c.N, c.H, c.W, c.C]);
    const w = tf.tensor(seeded(c.k * c.k * c.C * c.O, 2), [c.k, c.k, c.C, c.O]);
    const pad = c.pad === (c.k - 1) / 2 ? "same" : [[0, 0], [c.pad, c.pad], [c.pad, c.pad], [0, 0]];
    return () => tf.tidy(() => void tf.conv2d(x, w, 1, pad).dataSync());
  }
  return null;
}

const NOT_COMPARABLE = {
  "conv2d-backward": "TF.js's wasm backend has no Conv2DBackpropFilter kernel",
  "lenet-step": "see bench/train_tfjs_lenet.mjs (needs hand-written gradients on TF.js wasm)",
};

self.onmessage = async (e) => {
  const { threads } = e.data;
  try {
    // TF.js's wasm backend caps its threads at half of navigator.hardwareConcurrency (it assumes
    // two hardware threads per core), so on a 2-core machine it would never run 2. To compare at
    // equal thread counts this worker reports enough cores for the count asked; the row says
    // how many TF.js really ran.
    if ((navigator.hardwareConcurrency || 1) < 2 * threads) Object.defineProperty(navigator, "hardwareConcurrency", { value: 2 * threads });
    await loadScript(new URL("tfjs-core/dist/tf-core.min.js", ROOT));
    await loadScript(new URL("tfjs-backend-wasm/dist/tf-backend-wasm.min.js", ROOT));
    const tf = self.tf;
    tf.wasm.setWasmPaths(new URL("tfjs-backend-wasm/dist/", ROOT).href);
    tf.wasm.setThreadsCount(threads);
    if (!(await tf.setBackend("wasm"))) throw new Error("TF.js: the wasm backend did not start");
    const got = tf.wasm.getThreadsCount();
    for (const c of CASES) {
      const run = setup(tf, c);
      if (!run) {
        self.postMessage({ type: "row", runtime: "tfjs", case: c.name, asked: threads, threads: got, ms: null, note: NOT_COMPARABLE[c.kind] });
        continue;
      }
      self.postMessage({ type: "row", runtime: "tfjs", case: c.name, asked: threads, threads: got, ms: await timeIt(run) });
    }
    self.postMessage({ type: "done" });
  } catch (err) {
    self.postMessage({ type: "error", message: err?.message ?? String(err) });
  }
};
