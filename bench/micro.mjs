// Quick timings of our own kernels: SGEMM and conv2d (forward, input gradient, weight gradient)
// on 1 and 2 threads, with the SIMD peak of the build in use (bench_simd_peak, one thread).
//
// The machine is shared, so each round times every variant once, one after the other (two
// engines in one process: two instances of the bundle), and the table shows medians over the
// rounds: 1 and 2 threads and the peak see the same conditions.
// Usage: node bench/micro.mjs [peak|gemm|conv ...] [--rounds=N]
const args = process.argv.slice(2);
const what = args.filter((a) => !a.startsWith("--"));
const rounds = +(args.find((a) => a.startsWith("--rounds="))?.slice(9) ?? 15);
const want = (w) => what.length === 0 || what.includes(w);

// two instances of the library, each with its own engine
const one = await import("../dist/index.js?threads=1");
const two = await import("../dist/index.js?threads=2");
const info = await one.init({ threads: 1 });
await two.init({ threads: 2 });

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

function rand(sn, shape) {
  const t = sn.empty(shape);
  const d = t.data;
  let s = 12345;
  for (let i = 0; i < d.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    d[i] = (s / 2 ** 32) * 2 - 1;
  }
  return t;
}

/** Seconds per call of fn, timing enough calls to last ~20 ms. */
function timeOnce(fn, reps) {
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  return (performance.now() - t0) / 1000 / reps;
}

/** cases: [{name, flops, make(sn) -> fn}] timed on both engines, interleaved round by round. */
function run(cases) {
  const peakOut = one.engine().alloc(64 * 16);
  const peakIters = 1_000_000;
  const peakFn = () => one.engine().run("bench_simd_peak", [peakOut, peakIters], 0);
  const rows = cases.map((c) => {
    const fns = [c.make(one), c.make(two)];
    fns.forEach((f) => f()); // warm-up (first calls run baseline code)
    const reps = Math.max(1, Math.round(0.02 / Math.max(1e-6, timeOnce(fns[0], 1))));
    return { ...c, fns, reps, t: [[], []] };
  });
  const peak = [];
  for (let r = 0; r < rounds; r++) {
    peak.push(timeOnce(peakFn, 1));
    for (const row of rows) row.fns.forEach((f, i) => row.t[i].push(timeOnce(f, row.reps)));
  }
  one.engine().release(peakOut);
  const peakGf = (12 * peakIters * 4 * 2) / median(peak) / 1e9;
  console.log(`SIMD peak (${info.build} build, 1 thread): ${peakGf.toFixed(1)} GFLOP/s (median of ${rounds} rounds)`);
  console.log(["what", "1 thread ms", "GFLOP/s", "% peak", "2 threads ms", "GFLOP/s", "2t / 1t"].join("\t"));
  for (const row of rows) {
    const [s1, s2] = row.t.map(median);
    const g1 = row.flops / s1 / 1e9, g2 = row.flops / s2 / 1e9;
    console.log([row.name, (s1 * 1e3).toFixed(2), g1.toFixed(1), ((100 * g1) / peakGf).toFixed(0) + "%", (s2 * 1e3).toFixed(2), g2.toFixed(1), (s1 / s2).toFixed(2)].join("\t"));
  }
}

const cases = [];
if (want("gemm"))
  for (const n of [256, 512, 1024])
    cases.push({
      name: `sgemm ${n}^3`,
      flops: 2 * n ** 3,
      make(sn) {
        const a = rand(sn, [n, n]), b = rand(sn, [n, n]);
        return () => sn.matmul(a, b).dispose();
      },
    });

const convShapes = [
  ["LeNet 64x1x28x28 20@5x5", [64, 1, 28, 28], [20, 1, 5, 5], {}],
  // the lecture's LeNet trains with these two (padding 2)
  ["LeNet conv1 64x1x28x28 20@5x5 p2", [64, 1, 28, 28], [20, 1, 5, 5], { padding: 2 }],
  ["LeNet conv2 64x20x14x14 50@5x5 p2", [64, 20, 14, 14], [50, 20, 5, 5], { padding: 2 }],
  ["VGG 1x64x56x56 64@3x3 p1", [1, 64, 56, 56], [64, 64, 3, 3], { padding: 1 }],
  ["ResNet 8x128x28x28 128@3x3 p1", [8, 128, 28, 28], [128, 128, 3, 3], { padding: 1 }],
  ["AlexNet1 1x3x224x224 96@11x11 s4", [1, 3, 224, 224], [96, 3, 11, 11], { stride: 4 }],
];
if (want("conv"))
  for (const [name, xs, ws, opt] of convShapes) {
    const HO = Math.floor((xs[2] + 2 * (opt.padding ?? 0) - ws[2]) / (opt.stride ?? 1)) + 1;
    const WO = Math.floor((xs[3] + 2 * (opt.padding ?? 0) - ws[3]) / (opt.stride ?? 1)) + 1;
    const flops = 2 * xs[0] * ws[0] * HO * WO * ws[1] * ws[2] * ws[3];
    const setup = (sn) => ({ x: rand(sn, xs), w: rand(sn, ws), g: rand(sn, [xs[0], ws[0], HO, WO]) });
    cases.push({ name: `conv ${name} fwd`, flops, make(sn) { const { x, w } = setup(sn); return () => sn.noGrad(() => sn.conv2d(x, w, null, opt)).dispose(); } });
    cases.push({ name: `conv ${name} dx`, flops, make(sn) { const { w, g } = setup(sn); return () => sn.conv2d_input(xs, w, g, opt).dispose(); } });
    cases.push({ name: `conv ${name} dw`, flops, make(sn) { const { x, g } = setup(sn); return () => sn.conv2d_weight(x, ws, g, opt).dispose(); } });
  }
if (cases.length || want("peak")) run(cases);
one.dispose();
two.dispose();
