// Winograd F(2x2,3x3) and F(4x4,3x3) (assembly/winograd.ts, src/ops/winograd.ts): both paths
// and the exact im2col path run and agree with a float64 reference within the measured error
// (docs/performance.md), for the output, the input gradient and conv_transpose2d; the switch
// (init({ conv3x3 }), engine.conv3x3) picks the path; the same bits on 1, 2 and 4 threads.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { relError, pseudoValues, identical, convReference, gradientSensitivity, medianOf } from "./helpers.mjs";
import { readFileSync } from "node:fs";

const pseudo = pseudoValues, same = identical;
const reference = (x, w, b, shape, O, P) => convReference(x, w, b, shape, O, P, 3);

// Error bounds, relative to the largest output: about 4x the largest measured on these inputs
// (uniform in [-0.5, 0.5); docs/performance.md: im2col ~4e-7, F(2,3) ~1e-6, F(4,3) ~3e-6).
const BOUND = { im2col: 2e-6, winograd2: 5e-6, winograd4: 2e-5 };

// [N, C, H, W, O, padding]: partial tiles at the edges, strips of 6 with a remainder, K above
// one block of 256 channels, padding 0 and 2, batches whose tiles cross images; padding 3 and 4
// on small maps (patch rows and whole patches of zeros: the transform's edge paths)
const shapes = [
  [2, 6, 4, 3, 5, 3],
  [3, 4, 2, 2, 3, 4],
  [1, 3, 5, 5, 4, 1],
  [2, 13, 9, 11, 7, 1],
  [3, 5, 8, 7, 13, 0],
  [1, 300, 6, 9, 8, 1],
  [1, 16, 12, 12, 20, 2],
  [4, 16, 17, 15, 7, 1],
  [1, 40, 30, 29, 38, 1],
  // the patch transform's paths (assembly/winograd.ts inputTile): maps two tiles wide (8x8: two
  // whole pairs of tiles; 7x7: pairs with cut outputs), tile rows ending between two pairs (24
  // wide: 6 tiles a row) or inside a group (28 wide: 7 tiles a row, groups of 3 + 1)
  [3, 8, 8, 8, 9, 1],
  [2, 5, 7, 7, 6, 1],
  [1, 4, 24, 24, 5, 1],
  [2, 3, 28, 28, 4, 1],
];

test.before(async () => {
  await sn.init({ threads: 2 });
});

for (const mode of ["im2col", "winograd2", "winograd4"])
  test(`conv2d with conv3x3 "${mode}": output within ${BOUND[mode]} of float64, relative to the largest`, () => {
    sn.engine().conv3x3 = mode;
    for (const [N, C, H, W, O, P] of shapes) {
      const x = pseudo(N * C * H * W, 1), w = pseudo(O * C * 9, 2), b = pseudo(O, 3);
      const y = sn.conv2d(sn.tensor(x, [N, C, H, W]), sn.tensor(w, [O, C, 3, 3]), sn.tensor(b, [O]), { padding: P }).toArray();
      const err = relError(y, reference(x, w, b, [N, C, H, W], O, P));
      assert.ok(err <= BOUND[mode], `[${N},${C},${H},${W}] -> ${O} p${P}: error ${err.toExponential(2)} > ${BOUND[mode]}`);
    }
    sn.engine().conv3x3 = "auto";
  });

test("V_PAD: the kernels' spacing of V's points and the driver's sizing of V are the same number", () => {
  // the kernels (assembly) address V, M and the partial sums with it and the driver (src) sizes
  // their buffers with it: a smaller value in src would let one thread's scratch run into the next
  const root = new URL("../", import.meta.url);
  const kernels = readFileSync(new URL("assembly/winograd.ts", root), "utf8").match(/const V_PAD: i32 = (\d+);/);
  const driver = readFileSync(new URL("src/ops/winograd.ts", root), "utf8").match(/const V_PAD = (\d+);/);
  assert.ok(kernels && driver, "both constants found");
  assert.is(driver[1], kernels[1]);
});

test("input gradient and conv_transpose2d: Winograd agrees with im2col within the bound", () => {
  const eng = sn.engine();
  for (const [N, C, H, W, O, P] of [[2, 13, 9, 11, 14, 1], [1, 30, 8, 8, 17, 1], [3, 12, 7, 9, 300, 1], [1, 64, 20, 20, 64, 1]]) {
    const HO = H + 2 * P - 2, WO = W + 2 * P - 2;
    const w = sn.tensor(pseudo(O * C * 9, 2), [O, C, 3, 3]), dy = sn.tensor(pseudo(N * O * HO * WO, 5), [N, O, HO, WO]);
    const bt = sn.tensor(pseudo(C, 6), [C]);
    const out = {};
    for (const m of ["im2col", "winograd2", "winograd4"]) {
      eng.conv3x3 = m;
      out[m] = [sn.conv2d_input([N, C, H, W], w, dy, { padding: P }).toArray(), sn.conv_transpose2d(dy, w, bt, { padding: P }).toArray()];
    }
    for (const m of ["winograd2", "winograd4"])
      for (const k of [0, 1]) {
        const err = relError(out[m][k], out.im2col[k]);
        assert.ok(err <= BOUND[m] + BOUND.im2col, `${m} ${k ? "conv_transpose2d" : "conv2d_input"} [${N},${C},${H},${W}] <- ${O}: ${err.toExponential(2)}`);
        assert.not.ok(same(out[m][k], out.im2col[k]), `${m} ran (its rounding differs from im2col's)`);
      }
  }
  eng.conv3x3 = "auto";
});

test("the switch: auto takes F(4,3) on 32+ channels (the input gradient 16+) and 16+ tiles per image (4+ that the outputs fill at least half of: F(2,3) past 256x256 channels), im2col otherwise", () => {
  const eng = sn.engine();
  const run = (mode, [N, C, H, W, O]) => {
    eng.conv3x3 = mode;
    return sn.conv2d(sn.tensor(pseudo(N * C * H * W, 1), [N, C, H, W]), sn.tensor(pseudo(O * C * 9, 2), [O, C, 3, 3]), null, { padding: 1 }).toArray();
  };
  const big = [1, 32, 13, 14, 32]; // 16 tiles of 4x4: F(4,3)
  assert.ok(same(run("auto", big), run("winograd4", big)));
  assert.ok(same(run("winograd", big), run("winograd4", big)));
  assert.not.ok(same(run("auto", big), run("im2col", big)));
  const smallMap = [2, 64, 8, 8, 64]; // 4 tiles per image, 64x64 channels: F(4,3)
  assert.ok(same(run("auto", smallMap), run("winograd4", smallMap)));
  const sevens = [1, 160, 7, 7, 128]; // 4 tiles per image, 49 outputs in their 64: F(4,3)
  assert.ok(same(run("auto", sevens), run("winograd4", sevens)));
  const wide = [1, 288, 7, 7, 256]; // the same map, more than 256x256 channel pairs: F(2,3)
  assert.ok(same(run("auto", wide), run("winograd2", wide)));
  assert.ok(same(run("winograd", wide), run("winograd2", wide)));
  const small = [1, 64, 5, 5, 64]; // 4 tiles per image, 25 outputs in their 64: im2col
  assert.ok(same(run("auto", small), run("im2col", small)));
  assert.ok(same(run("winograd", small), run("winograd2", small)), "winograd: F(2,3) where auto would not take Winograd");
  const thin = [1, 16, 32, 32, 16]; // 16 channels: im2col for the forward
  assert.ok(same(run("auto", thin), run("im2col", thin)));
  // ... but F(4,3) for the input gradient from 16 channels (and for the weight gradient)
  eng.conv3x3 = "auto";
  const backwardPath = ([N, C, H, W, O]) => {
    const x = sn.tensor(pseudo(N * C * H * W, 1), [N, C, H, W]).requireGrad();
    const w = sn.tensor(pseudo(O * C * 9, 2), [O, C, 3, 3]).requireGrad();
    const p = sn.profile(() => sn.tidy(() => sn.sum(sn.conv2d(x, w, null, { padding: 1 })).backward()), { peak: false });
    return [p.ops.find((r) => r.op === "conv2d" && r.phase === "forward").path, p.ops.find((r) => r.op === "conv2d" && r.phase === "backward").path];
  };
  assert.equal(backwardPath(thin), ["im2col", "winograd F(4,3) dx + winograd F(4,3) dW"]);
  assert.equal(backwardPath([1, 8, 32, 32, 16]), ["im2col", "im2col"]); // 8 input channels
  assert.equal(backwardPath([1, 32, 32, 32, 32]), ["winograd F(4,3)", "winograd F(4,3) dx + winograd F(4,3) dW"]);
});

test("init rejects a bad conv3x3 naming the choices, and a misspelt key with a suggestion", async () => {
  const message = async (opts) => {
    try {
      await sn.init(opts);
    } catch (e) {
      return e.message;
    }
    return "no error";
  };
  assert.match(await message({ conv3x3: "fast" }), /conv3x3 must be one of "auto", "winograd", "winograd2", "winograd4", "im2col", got "fast"/);
  assert.match(await message({ conv3X3: "im2col" }), /conv3x3/);
  assert.throws(() => (sn.engine().conv3x3 = "Im2col"), /engine.conv3x3: conv3x3 must be one of .* got "Im2col"/);
  await sn.init({ threads: 2, conv3x3: "im2col" });
  assert.is(sn.engine().conv3x3, "im2col");
  await sn.init({ threads: 2 });
  assert.is(sn.engine().conv3x3, "auto");
});

test("the same bits on 1, 2 and 4 threads and with every share on the caller", async () => {
  const cases = [[1, 64, 30, 29, 40, 1], [3, 33, 13, 14, 35, 1], [1, 300, 6, 9, 8, 1]];
  const results = [];
  for (const [threads, solo] of [[1, false], [2, false], [4, false], [4, true]]) {
    await sn.init({ threads, minParallelWork: 0 });
    sn.engine().solo = solo;
    const r = [];
    for (const mode of ["winograd2", "winograd4"])
      for (const [N, C, H, W, O, P] of cases) {
        sn.engine().conv3x3 = mode;
        const x = sn.tensor(pseudo(N * C * H * W, 1), [N, C, H, W]).requireGrad();
        const w = sn.tensor(pseudo(O * C * 9, 2), [O, C, 3, 3]);
        const y = sn.conv2d(x, w, sn.tensor(pseudo(O, 3), [O]), { padding: P });
        y.backward(sn.tensor(pseudo(y.size, 4), [...y.shape]));
        r.push(y.toArray(), x.grad.toArray());
      }
    results.push(r);
  }
  for (let k = 1; k < results.length; k++) results[k].forEach((a, i) => assert.ok(same(a, results[0][i]), `run ${k}, result ${i}`));
  await sn.init({ threads: 2 });
});

// How the forward splits its work (src/ops/winograd.ts winogradPlan) never changes a sum: with
// few tiles for the threads the patches are transformed once into a shared V
// (f32_winograd_input) and the items are blocks of output strips; otherwise each item
// transforms its own tiles. The same image must give the same bits either way.
test("the shared-V plan gives the per-item plan's bits (forward and input gradient, F(2,3) and F(4,3))", async () => {
  const [N, C, H, W, O] = [8, 64, 8, 8, 40]; // 16 tiles of 2x2 per image, 4 of 4x4
  const xs = pseudo(N * C * H * W, 1), ws = pseudo(O * C * 9, 2), bs = pseudo(O, 3), dys = pseudo(N * O * H * W, 4);
  const one = C * H * W;
  const runs = [];
  for (const [threads, n] of [[2, 1], [1, 1], [2, N]]) {
    await sn.init({ threads, minParallelWork: 0 });
    const eng = sn.engine();
    let kernels = [];
    const run = eng.run.bind(eng);
    eng.run = (name, args, work) => (kernels.push(name), run(name, args, work));
    const r = {};
    for (const mode of ["winograd2", "winograd4"]) {
      eng.conv3x3 = mode;
      kernels = [];
      const x = sn.tensor(xs.slice(0, n * one), [n, C, H, W]), w = sn.tensor(ws, [O, C, 3, 3]);
      const dy = sn.tensor(dys.slice(0, n * O * H * W), [n, O, H, W]);
      r[mode] = [sn.conv2d(x, w, sn.tensor(bs, [O]), { padding: 1 }).toArray().slice(0, O * H * W),
        sn.conv2d_input([n, C, H, W], w, dy, { padding: 1 }).toArray().slice(0, one)];
      r[mode].shared = kernels.filter((k) => k === "f32_winograd_input").length;
    }
    runs.push(r);
    delete eng.run;
  }
  // which plan ran (forward and input gradient each): one image on two threads has 2 tile
  // blocks of F(2,3) and 1 of F(4,3) for 2 threads, so shared V; on one thread F(2,3)'s 2 blocks
  // are enough, F(4,3)'s 1 is shared; eight images: enough blocks for both
  assert.equal([runs[0].winograd2.shared, runs[0].winograd4.shared], [2, 2], "one image, two threads");
  assert.equal([runs[1].winograd2.shared, runs[1].winograd4.shared], [0, 2], "one image, one thread");
  assert.equal([runs[2].winograd2.shared, runs[2].winograd4.shared], [0, 0], "eight images, two threads");
  for (const k of [1, 2])
    for (const mode of ["winograd2", "winograd4"])
      for (const i of [0, 1]) assert.ok(same(runs[k][mode][i], runs[0][mode][i]), `run ${k} ${mode} ${i ? "input gradient" : "forward"}`);
  await sn.init({ threads: 2 });
});

test("an empty batch through every Winograd path: empty outputs, a zero weight gradient", () => {
  const eng = sn.engine();
  for (const mode of ["auto", "winograd2", "winograd4"])
    for (const [C, H, O] of [[64, 14, 64], [512, 7, 512], [32, 30, 40]]) {
      eng.conv3x3 = mode;
      const x = sn.tensor(new Float32Array(0), [0, C, H, H]).requireGrad();
      const w = sn.tensor(pseudo(O * C * 9, 2), [O, C, 3, 3]).requireGrad();
      const y = sn.conv2d(x, w, null, { padding: 1 });
      assert.equal(y.shape, [0, O, H, H], `${mode} ${C}@${H}`);
      y.backward(sn.tensor(new Float32Array(0), [0, O, H, H]));
      assert.equal(x.grad.shape, [0, C, H, H]);
      assert.ok(w.grad.toArray().every((v) => v === 0), `${mode} ${C}@${H}: zero weight gradient`);
    }
  eng.conv3x3 = "auto";
});

// Training on the default path: Winograd's rounding (F(4,3): about 1e-5 of a layer's scale,
// im2col about 3e-7) must not move a whole net's gradients further than the exact path itself
// moves when its input changes by about one ulp. A training step's gradients are not smooth in
// the input: a ReLU whose input is within rounding of zero flips, and batch norm's backward
// spreads that over the channel, so at some weights and inputs one-ulp noise moves the exact
// path's gradients by 1e-3 to 8e-2 (CIFAR ResNet-20, batch 8 and 32; docs/performance.md). No
// kernel can be held to a reference there, so the test takes seeds where the exact path is
// well-conditioned (one-ulp sensitivity below 1e-4) and compares the default path's distance to
// 10x that sensitivity. Even at those seeds a ReLU input can lie within Winograd's rounding (1e-5)
// of zero but not within one ulp, and then the default path's gradients jump by 1e-2 at that
// seed: measured on the first well-conditioned seeds, 3 of 7 on the relaxed build, and seed 4 on
// the simd build (1.5e-2; relaxed 5.7e-6) although both builds round within the same bounds. So
// the test takes the first five well-conditioned seeds and holds the median ratio to 10x, on
// both kernel builds (which one init() picks is a start-up timing); F(4,3) forced onto every
// layer (the 16-channel stage and the 3-channel stem too) must fail the same test (its median
// ratio measured 2,800 and more), so the bound tells them apart. The default path runs the
// 16-channel stage's input and weight gradients by Winograd F(4,3) (at batch 8 too) and its forwards
// by im2col: with those forwards on F(4,3) too its median measured 2,780x (relaxed) and 5,630x.
for (const build of ["relaxed", "simd"])
  test(`a ResNet-20 training step on the default path, ${build} build: median distance to the exact path within 10x its own one-ulp sensitivity over five seeds; F(4,3) everywhere is not`, async () => {
    await sn.init({ threads: 2, build });
    assert.is(sn.engine().info.build, build);
    try {
      const { ratios, tried } = gradientSensitivity({ zoo: "resnet20", shape: [8, 3, 32, 32], setPath: (m) => (sn.engine().conv3x3 = m),
        paths: [["auto", "auto"], ["F(4,3) everywhere", "winograd4"]] });
      const auto = ratios.auto, all4 = ratios["F(4,3) everywhere"], median = medianOf;
      console.log(`  ${build}: ${tried.join("; ")}`);
      assert.is(auto.length, 5, `five well-conditioned seeds in 40 (${tried.join("; ")})`);
      assert.ok(median(auto) <= 10, `default path: median ${median(auto).toPrecision(3)}x the exact path's one-ulp sensitivity (${tried.join("; ")})`);
      assert.ok(median(all4) > 10, `F(4,3) on every layer should be told apart: median ${median(all4).toPrecision(3)}x (${tried.join("; ")})`);
    } finally {
      sn.engine().conv3x3 = "auto";
      await sn.init({ threads: 2 });
    }
  });

test.run();
