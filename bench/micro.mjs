// Quick timings of our own kernels (GEMM, conv2d forward and gradients), medians of several
// runs, with the SIMD peak of the build in use measured in the same process on one thread.
// Usage: node bench/micro.mjs [gemm|conv|peak ...] [--threads=1,2]
import * as sn from "../dist/index.js";

const args = process.argv.slice(2);
const what = args.filter((a) => !a.startsWith("--"));
const threadsArg = args.find((a) => a.startsWith("--threads="));
const threadList = threadsArg ? threadsArg.slice(10).split(",").map(Number) : [1, 2];
const want = (w) => what.length === 0 || what.includes(w);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Median seconds of fn() over runs of at least ~minTime in total (after a warm-up). */
function time(fn, minRuns = 5, minTime = 0.5) {
  fn();
  const ts = [];
  const start = performance.now();
  while (ts.length < minRuns || (performance.now() - start) / 1000 < minTime) {
    const t0 = performance.now();
    fn();
    ts.push((performance.now() - t0) / 1000);
    if (ts.length >= 200) break;
  }
  return median(ts);
}

function rand(shape) {
  const t = sn.empty(shape);
  const d = t.data;
  let s = 12345;
  for (let i = 0; i < d.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    d[i] = (s / 2 ** 32) * 2 - 1;
  }
  return t;
}

function peak() {
  const e = sn.engine();
  const out = e.alloc(64 * 16);
  const iters = 2_000_000;
  const sec = time(() => e.run("bench_simd_peak", [out, iters], 0), 7, 0.3);
  e.release(out);
  return (12 * iters * 4 * 2) / sec / 1e9;
}

const rows = [];
const row = (r) => {
  rows.push(r);
  console.log(Object.values(r).join("\t"));
};

const convShapes = [
  ["LeNet", [64, 1, 28, 28], [20, 1, 5, 5], { stride: 1, padding: 0 }],
  ["VGG", [1, 64, 56, 56], [64, 64, 3, 3], { stride: 1, padding: 1 }],
  ["ResNet", [8, 128, 28, 28], [128, 128, 3, 3], { stride: 1, padding: 1 }],
  ["AlexNet1", [1, 3, 224, 224], [96, 3, 11, 11], { stride: 4, padding: 0 }],
];

for (const threads of threadList) {
  const info = await sn.init({ threads });
  if (threads === threadList[0] && want("peak")) {
    row({ what: `SIMD peak (${info.build}, 1 thread)`, threads: 1, ms: "", gflops: peak().toFixed(1) });
  }
  if (want("gemm")) {
    for (const n of [256, 512, 1024]) {
      const a = rand([n, n]), b = rand([n, n]);
      const sec = time(() => sn.noGrad(() => sn.matmul(a, b).dispose()));
      row({ what: `sgemm ${n}^3`, threads, ms: (sec * 1e3).toFixed(2), gflops: ((2 * n * n * n) / sec / 1e9).toFixed(1) });
      a.dispose(); b.dispose();
    }
  }
  if (want("conv") && sn.conv2d) {
    for (const [name, xs, ws, opt] of convShapes) {
      const x = rand(xs), w = rand(ws);
      const y = sn.noGrad(() => sn.conv2d(x, w, null, opt));
      const flops = 2 * y.size * ws[1] * ws[2] * ws[3];
      const g = rand(y.shape);
      const f = time(() => sn.noGrad(() => sn.conv2d(x, w, null, opt).dispose()));
      const di = time(() => sn.conv2d_input(xs, w, g, opt).dispose());
      const dw = time(() => sn.conv2d_weight(x, ws, g, opt).dispose());
      row({ what: `conv ${name} fwd`, threads, ms: (f * 1e3).toFixed(2), gflops: (flops / f / 1e9).toFixed(1) });
      row({ what: `conv ${name} dx`, threads, ms: (di * 1e3).toFixed(2), gflops: (flops / di / 1e9).toFixed(1) });
      row({ what: `conv ${name} dw`, threads, ms: (dw * 1e3).toFixed(2), gflops: (flops / dw / 1e9).toFixed(1) });
      for (const t of [x, w, y, g]) t.dispose();
    }
  }
}
sn.dispose();
