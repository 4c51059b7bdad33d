#!/usr/bin/env node
// Convolutions on small maps: the per-image im2col kernels against the images-side-by-side path
// (src/ops/conv_small.ts), forward, input gradient and weight gradient, on the layers of
// ResNet-18 at 32x32 inputs (4x4, 2x2 and 1x1 maps) and on larger maps for the threshold (timed
// interleaved, medians). Each row also says whether the two paths' outputs have the same bits.
// docs/performance.md keeps the results.
//
//   node bench/conv_small.mjs [--quick] [--threads 1,2] [--batch 32] [--filter TEXT]
import * as sn from "../dist/index.js";
import { randn, timeInterleaved } from "./harness.mjs";

const args = process.argv.slice(2);
const arg = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const quick = args.includes("--quick");
const threadsArg = arg("--threads", "1,2");
const N = +arg("--batch", "32");
const filter = arg("--filter", null);

// [name, C, H (= W), O, kernel, stride, padding]
const layers = [
  ["512@7 3x3 (P 49)", 512, 7, 512, 3, 1, 1],
  ["32->64 3x3 s2 @16 (P 64)", 32, 16, 64, 3, 2, 1],
  ["128@8 3x3 (P 64)", 128, 8, 128, 3, 1, 1],
  ["64->128 3x3 s2 @8 (P 16)", 64, 8, 128, 3, 2, 1],
  ["128@4 3x3 (P 16)", 128, 4, 128, 3, 1, 1],
  ["256@3 3x3 (P 9)", 256, 3, 256, 3, 1, 1],
  ["128->256 3x3 s2 @6 (P 9)", 128, 6, 256, 3, 2, 1],
  ["128->256 3x3 s2 @4 (P 4)", 128, 4, 256, 3, 2, 1],
  ["256@2 3x3 (P 4)", 256, 2, 256, 3, 1, 1],
  ["128->256 1x1 s2 @4 (P 4)", 128, 4, 256, 1, 2, 0],
  ["256->512 3x3 s2 @2 (P 1)", 256, 2, 512, 3, 2, 1],
  ["512@1 3x3 (P 1)", 512, 1, 512, 3, 1, 1],
].filter((l) => !filter || l[0].includes(filter));

const same = (a, b) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

for (const threads of threadsArg.split(",").map(Number)) {
  await sn.init({ threads });
  const eng = sn.engine();
  const dflt = eng.smallMapPositions;
  console.log(`\n${threads} thread(s), batch ${N}, build ${eng.info.build}: ms per call (median wall time), per-image path / side by side (speed-up); "bits": the same outputs on both paths`);
  console.log("layer | fwd | dx | dw | bits fwd, dx, dw");
  for (const [name, C, H, O, k, s, p] of layers) {
    const HO = Math.floor((H + 2 * p - k) / s) + 1;
    const x = sn.tensor(randn(N * C * H * H, 1), [N, C, H, H]);
    const w = sn.tensor(randn(O * C * k * k, 2).map((v) => v / Math.sqrt(C * k * k)), [O, C, k, k]);
    const dy = sn.tensor(randn(N * O * HO * HO, 3), [N, O, HO, HO]);
    const attrs = { stride: s, padding: p };
    const ops = {
      fwd: () => sn.conv2d(x, w, null, attrs),
      dx: () => sn.conv2d_input([N, C, H, H], w, dy, attrs),
      dw: () => sn.conv2d_weight(x, [O, C, k, k], dy, attrs),
    };
    const cells = [], bits = [];
    for (const f of Object.values(ops)) {
      const runner = (positions) => ({ run: () => ((eng.smallMapPositions = positions), f().dispose()) });
      const [a, b] = await timeInterleaved([runner(0), runner(1 << 30)], { quick });
      cells.push(`${a.toFixed(2)} / ${b.toFixed(2)} (${(a / b).toFixed(2)}x)`);
      const out = (positions) => ((eng.smallMapPositions = positions), sn.tidy(() => f().toArray()));
      bits.push(same(out(0), out(1 << 30)) ? "same" : "differ");
    }
    console.log([name, ...cells, bits.join(", ")].join(" | "));
    for (const t of [x, w, dy]) t.dispose();
  }
  eng.smallMapPositions = dflt;
}
process.exit(0);
