#!/usr/bin/env node
// 3x3 stride-1 convolutions: the im2col path against Winograd F(2x2,3x3) and F(4x4,3x3), forward
// and input gradient, and the weight gradient by im2col against F(2x2,3x3) and F(4x4,3x3), on
// VGG / ResNet layer shapes, 1 and 2 threads (timed interleaved,
// medians), and each path's error against a float64 reference on sampled outputs (sampled
// weight-gradient entries for dW). docs/performance.md keeps the results.
// --k5: 5x5 stride-1 convolutions instead (padding 2): im2col against F(2x2,5x5), forward and
// input gradient (the weight gradient of 5x5 layers has only im2col), on LeNet and other shapes.
//
//   node bench/winograd.mjs [--quick] [--threads 1,2] [--filter TEXT] [--no-error] [--k5]
import * as sn from "../dist/index.js";
import { randn, timeInterleaved } from "./harness.mjs";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const threadsArg = args.includes("--threads") ? args[args.indexOf("--threads") + 1] : "1,2";
const filter = args.includes("--filter") ? args[args.indexOf("--filter") + 1] : null;
const withError = !args.includes("--no-error");
const k5 = args.includes("--k5");
const K = k5 ? 5 : 3, P = k5 ? 2 : 1;

// [name, N, C, H, W, O]: padding 1 (2 for 5x5)
const layers5 = [
  ["LeNet conv2 b64 20@14 -> 50", 64, 20, 14, 14, 50],
  ["LeNet conv2 dx as a forward b64 50@14 -> 20", 64, 50, 14, 14, 20],
  ["LeNet conv1 b64 1@28 -> 20", 64, 1, 28, 28, 20],
  ["6@14 -> 16 b64", 64, 6, 14, 14, 16],
  ["16@14 -> 16 b64", 64, 16, 14, 14, 16],
  ["16@28 -> 32 b16", 16, 16, 28, 28, 32],
  ["32@32 -> 64 b8", 8, 32, 32, 32, 64],
  ["64@56 b1", 1, 64, 56, 56, 64],
  ["128@14 b1", 1, 128, 14, 14, 128],
  ["256@7 b1", 1, 256, 7, 7, 256],
  ["64@4 b1", 1, 64, 4, 4, 64],
  ["64@2 b1", 1, 64, 2, 2, 64],
].filter((l) => !filter || l[0].includes(filter));
const layers3 = [
  ["VGG 64@224", 1, 64, 224, 224, 64],
  ["VGG/ResNet-50 256@56", 1, 256, 56, 56, 256],
  ["ResNet-18 64@56", 1, 64, 56, 56, 64],
  ["ResNet-18 128@28", 1, 128, 28, 28, 128],
  ["ResNet-18 256@14", 1, 256, 14, 14, 256],
  ["ResNet-18 512@7", 1, 512, 7, 7, 512],
  ["ResNet-20 b128 16@32", 128, 16, 32, 32, 16],
  ["ResNet-20 b128 32@16", 128, 32, 16, 16, 32],
  ["ResNet-20 b128 64@8", 128, 64, 8, 8, 64],
  ["64@8 batch 1", 1, 64, 8, 8, 64],
  ["128@8 batch 32", 32, 128, 8, 8, 128],
].filter((l) => !filter || l[0].includes(filter));
const layers = k5 ? layers5 : layers3;

const modes = k5 ? ["im2col", "winograd"] : ["im2col", "winograd2", "winograd4"];
/** The engine's switch for this kernel size. */
const setMode = (eng, m) => (k5 ? (eng.conv5x5 = m) : (eng.conv3x3 = m));

/** Max |dw - ref| over about 200 sampled weight-gradient entries, over max |ref| (float64). */
function relErrorDw(dw, x, dy, [, N, C, H, W, O]) {
  let err = 0, big = 0;
  const step = Math.max(1, Math.floor(dw.length / 200));
  for (let i = 0; i < dw.length; i += step) {
    const kx = i % 3, ky = Math.floor(i / 3) % 3, c = Math.floor(i / 9) % C, o = Math.floor(i / (9 * C));
    let s = 0;
    for (let n = 0; n < N; n++)
      for (let oy = 0; oy < H; oy++)
        for (let ox = 0; ox < W; ox++) {
          const iy = oy + ky - 1, ix = ox + kx - 1;
          if (iy >= 0 && iy < H && ix >= 0 && ix < W) s += x[((n * C + c) * H + iy) * W + ix] * dy[((n * O + o) * H + oy) * W + ox];
        }
    err = Math.max(err, Math.abs(dw[i] - s));
    big = Math.max(big, Math.abs(s));
  }
  return err / big;
}

/** Max |y - ref| over about 2000 sampled outputs, over max |ref| (ref in float64); K x K, padding P. */
function relError(y, x, w, [, N, C, H, W, O]) {
  let err = 0, big = 0;
  const step = Math.max(1, Math.floor(y.length / 2000));
  for (let i = 0; i < y.length; i += step) {
    const ox = i % W, oy = Math.floor(i / W) % H, o = Math.floor(i / (W * H)) % O, n = Math.floor(i / (W * H * O));
    let s = 0;
    for (let c = 0; c < C; c++)
      for (let ky = 0; ky < K; ky++)
        for (let kx = 0; kx < K; kx++) {
          const iy = oy + ky - P, ix = ox + kx - P;
          if (iy >= 0 && iy < H && ix >= 0 && ix < W) s += x[((n * C + c) * H + iy) * W + ix] * w[((o * C + c) * K + ky) * K + kx];
        }
    err = Math.max(err, Math.abs(y[i] - s));
    big = Math.max(big, Math.abs(s));
  }
  return err / big;
}

for (const threads of threadsArg.split(",").map(Number)) {
  await sn.init({ threads });
  const eng = sn.engine();
  console.log(`\n${threads} thread(s), build ${eng.info.build}: ms per call (median wall time; on 1 thread the process's CPU time in brackets, less moved by other load), error = max|y - ref| / max|ref|`);
  const dwModes = k5 ? [] : ["im2col", "winograd2", "winograd4"];
  console.log(["layer", ...modes.map((m) => `fwd ${m}`), ...modes.map((m) => `dx ${m}`), ...(k5 ? [] : ["dW im2col", "dW F(2,3)", "dW F(4,3)"]),
    ...(withError ? [...modes.map((m) => `err ${m}`), ...(k5 ? [] : ["dW err im2col", "dW err F(2,3)", "dW err F(4,3)"])] : [])].join(" | "));
  for (const L of layers) {
    const [name, N, C, H, W, O] = L;
    const xd = randn(N * C * H * W, 1), wd = randn(O * C * K * K, 2).map((v) => v / Math.sqrt(C * K * K));
    const dyd = randn(N * O * H * W, 3);
    const x = sn.tensor(xd, [N, C, H, W]), w = sn.tensor(wd, [O, C, K, K]), dy = sn.tensor(dyd, [N, O, H, W]);
    const run = (mode, f) => ({
      run: () => {
        setMode(eng, mode);
        f().dispose();
      },
    });
    const fr = modes.map((m) => run(m, () => sn.conv2d(x, w, null, { padding: P })));
    const dr = modes.map((m) => run(m, () => sn.conv2d_input([N, C, H, W], w, dy, { padding: P })));
    const show = (ms, r) => ms.map((t, i) => t.toFixed(2) + (threads === 1 ? ` (${r[i].cpuMs.toFixed(2)})` : ""));
    const fwd = show(await timeInterleaved(fr, { quick }), fr);
    const dx = show(await timeInterleaved(dr, { quick }), dr);
    const wr = dwModes.map((m) => run(m, () => sn.conv2d_weight(x, [O, C, 3, 3], dy, { padding: 1 })));
    const dW = wr.length ? show(await timeInterleaved(wr, { quick }), wr) : [];
    const errs = [];
    if (withError)
      for (const m of modes) {
        setMode(eng, m);
        const y = sn.conv2d(x, w, null, { padding: P });
        errs.push(relError(y.toArray(), xd, wd, L).toExponential(1));
        y.dispose();
      }
    if (withError)
      for (const m of dwModes) {
        eng.conv3x3 = m;
        const dw = sn.conv2d_weight(x, [O, C, 3, 3], dy, { padding: 1 });
        errs.push(relErrorDw(dw.toArray(), xd, dyd, L).toExponential(1));
        dw.dispose();
      }
    console.log([name, ...fwd, ...dx, ...dW, ...errs].join(" | "));
    for (const t of [x, w, dy]) t.dispose();
  }
  eng.conv3x3 = "auto";
  eng.conv5x5 = "auto";
}
process.exit(0);
