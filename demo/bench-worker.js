// The benchmark tab's worker for simdnet (a module worker of its own, so its engine is not the
// training one): times each case with the thread counts asked for and reports row by row.
import * as sn from "../dist/index.js";
import { timeIt, CASES } from "./bench-cases.js";

function seeded(n, seed) {
  const g = new sn.Generator(seed), a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = g.uniform(-1, 1);
  return a;
}
const rand = (shape, seed) => sn.keep(sn.tensor(seeded(shape.reduce((a, b) => a * b, 1), seed), shape));

/** Make a case's inputs once (kept), and return the call to time; each call frees what it made. */
function setup(c) {
  if (c.kind === "matmul") {
    const a = rand([c.M, c.K], 1), b = rand([c.K, c.N], 2);
    return () => sn.tidy(() => void sn.matmul(a, b));
  }
  if (c.kind === "lenet-step") {
    sn.manualSeed(0);
    const model = sn.models.lenet();
    const opt = new sn.SGD(model.parameters(), { lr: 0.01 });
    const xb = rand([c.N, 1, 28, 28], 4), yb = sn.keep(sn.tensor(Float32Array.from({ length: c.N }, (_, i) => i % 10), [c.N]));
    return () =>
      sn.tidy(() => {
        opt.zeroGrad();
        sn.cross_entropy(model.forward(xb), yb).backward();
        opt.step();
      });
  }
  const { N, C, H, W, O, k, pad } = c;
  const x = rand([N, C, H, W], 1);
  const w = sn.keep(sn.tensor(seeded(O * C * k * k, 2).map((v) => v / Math.sqrt(C * k * k)), [O, C, k, k]));
  if (c.kind === "conv2d") return () => sn.tidy(() => void sn.conv2d(x, w, null, { padding: pad }));
  if (c.kind === "conv2d-backward") {
    const dy = rand([N, O, H + 2 * pad - k + 1, W + 2 * pad - k + 1], 3);
    return () =>
      sn.tidy(() => {
        sn.conv2d_input([N, C, H, W], w, dy, { padding: pad });
        sn.conv2d_weight(x, [O, C, k, k], dy, { padding: pad });
      });
  }
  throw new Error(`unknown case kind ${c.kind}`);
}

self.onmessage = async (e) => {
  const { threads } = e.data;
  try {
    for (const t of threads) {
      const info = await sn.init({ threads: t });
      for (const c of CASES) {
        const run = setup(c);
        const ms = await timeIt(run);
        self.postMessage({ type: "row", runtime: "simdnet", case: c.name, asked: t, threads: info.threads, build: info.build, ms });
      }
      sn.dispose();
    }
    self.postMessage({ type: "done" });
  } catch (err) {
    self.postMessage({ type: "error", message: err?.message ?? String(err) });
  }
};
