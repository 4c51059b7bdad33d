// The weight gradient by Winograd F(2x2,3x3), F(4x4,3x3) and F(2x2,5x5) (assembly/winograd_dw.ts,
// src/ops/winograd.ts winogradWeightGrad): against a float64 reference on shapes that reach every
// edge of the kernel (partial tiles, padding 0/1/2, tile chunks and ranges, channel blocks),
// against PyTorch on every 3x3 stride-1 conv fixture, by finite differences, with the same bits
// on 1, 2 and 4 threads; "auto" takes each only where it was measured faster, and the profiler
// names it.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { compare, loadFixtures, caseInputs, uniformValues, relError } from "./helpers.mjs";

const pseudo = (n, seed) => uniformValues(n, seed, -0.5, 0.5);
const same = (a, b) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

/** dW of a k x k (3 or 5) stride-1 conv in float64: x [N,C,H,W], dy [N,O,HO,WO], padding P. */
function reference(x, dy, [N, C, H, W], O, P, k = 3) {
  const HO = H + 2 * P - k + 1, WO = W + 2 * P - k + 1, dw = new Float64Array(O * C * k * k);
  for (let o = 0; o < O; o++)
    for (let c = 0; c < C; c++)
      for (let ky = 0; ky < k; ky++)
        for (let kx = 0; kx < k; kx++) {
          let s = 0;
          for (let n = 0; n < N; n++)
            for (let oy = 0; oy < HO; oy++) {
              const iy = oy + ky - P;
              if (iy < 0 || iy >= H) continue;
              for (let ox = 0; ox < WO; ox++) {
                const ix = ox + kx - P;
                if (ix >= 0 && ix < W) s += x[((n * C + c) * H + iy) * W + ix] * dy[((n * O + o) * HO + oy) * WO + ox];
              }
            }
          dw[((o * C + c) * k + ky) * k + kx] = s;
        }
  return dw;
}

// [N, C, H, W, O, padding]: one tile; odd sizes (partial tiles at the right and bottom); tiles
// not a multiple of 4; padding 0 and 2; 8 channels on 40x40 x 4 images (1,600 tiles: 7 chunks
// of 256 in 7 ranges); channel blocks (70 inputs: 2 blocks of slivers; 80 outputs: 2 blocks of
// strips, the last strip short); 130 x 67 with 2 images
const shapes = [
  [1, 1, 4, 4, 1, 1],
  [2, 3, 7, 5, 5, 1],
  [3, 16, 13, 11, 7, 0],
  [2, 9, 6, 9, 13, 2],
  [4, 8, 40, 40, 8, 1],
  [1, 70, 9, 9, 80, 1],
  [2, 130, 6, 6, 67, 1],
  [2, 5, 3, 4, 6, 3],
  [3, 4, 2, 2, 3, 4],
];
// The largest error measured on these shapes: 4.8e-7 for F(2x2,3x3), 3.3e-7 for im2col (sums of
// up to 6,400 products; with another input draw 6.0e-7 and 3.8e-7); the bound is about 4x the
// larger, the same for both paths. F(4x4,3x3): 4.7e-6 (its G's 1/6 and 1/24; 8-17x im2col's on
// these shapes), bound 2e-5.
const BOUND = 2.5e-6, BOUND4 = 2e-5;

const dwOf = ([N, C, H, W, O, P], mode) => {
  const HO = H + 2 * P - 2, WO = W + 2 * P - 2;
  const x = pseudo(N * C * H * W, 1), dy = pseudo(N * O * HO * WO, 2);
  sn.engine().conv3x3 = mode;
  const dw = sn.conv2d_weight(sn.tensor(x, [N, C, H, W]), [O, C, 3, 3], sn.tensor(dy, [N, O, HO, WO]), { padding: P }).toArray();
  sn.engine().conv3x3 = "auto";
  return { dw, x, dy };
};

test.before(async () => {
  await sn.init({ threads: 2 });
});

test(`weight gradient by F(2x2,3x3) and by im2col: within ${BOUND} of float64, relative to the largest; the two differ (both ran)`, () => {
  for (const s of shapes) {
    const [N, C, H, W, O, P] = s;
    const wino = dwOf(s, "winograd2"), exact = dwOf(s, "im2col");
    const ref = reference(wino.x, wino.dy, [N, C, H, W], O, P);
    const ew = relError(wino.dw, ref), ei = relError(exact.dw, ref);
    assert.ok(ew <= BOUND, `F(2,3) [${s}]: ${ew.toExponential(2)}`);
    assert.ok(ei <= BOUND, `im2col [${s}]: ${ei.toExponential(2)}`);
    if (C * O > 1) assert.not.ok(same(wino.dw, exact.dw), `[${s}]: the Winograd path ran (its rounding differs from im2col's)`);
  }
});

test(`weight gradient by F(4x4,3x3): within ${BOUND4} of float64, relative to the largest; not F(2x2,3x3)'s (it ran)`, () => {
  for (const s of shapes) {
    const [N, C, H, W, O, P] = s;
    const w4 = dwOf(s, "winograd4"), w2 = dwOf(s, "winograd2");
    const e = relError(w4.dw, reference(w4.x, w4.dy, [N, C, H, W], O, P));
    assert.ok(e <= BOUND4, `F(4,3) [${s}]: ${e.toExponential(2)}`);
    if (C * O > 1) assert.not.ok(same(w4.dw, w2.dw), `[${s}]: F(4,3) ran (its rounding differs from F(2,3)'s)`);
  }
});

// 5x5 kernels, F(2x2,5x5): [N, C, H, W, O, padding] as above (padding 0, 2 and 4; 1,600 tiles in
// chunks and ranges; channel blocks; LeNet's second layer; 300 inputs, K past one block)
const shapes5 = [
  [1, 2, 5, 5, 1, 2],
  [2, 3, 7, 5, 5, 2],
  [3, 16, 13, 11, 7, 0],
  [2, 9, 6, 9, 13, 4],
  [4, 8, 40, 40, 8, 2],
  [1, 70, 9, 9, 80, 2],
  [2, 20, 14, 14, 50, 2],
  [2, 130, 6, 6, 67, 2],
  [3, 4, 2, 2, 3, 4],
  [1, 300, 6, 9, 8, 2],
];
// Measured on these shapes: F(2x2,5x5) up to 1.1e-5 (its G's 1/6 and 1/24, as F(4x4,3x3)), im2col
// up to 3.8e-7; the bound about 4x the larger.
const BOUND5 = 4e-5;

/** dW of shape s by the 5x5 path `mode` (conv5x5), and the profiler's path of the call. */
const dw5Of = ([N, C, H, W, O, P], mode) => {
  const HO = H + 2 * P - 4, WO = W + 2 * P - 4;
  const x = pseudo(N * C * H * W, 1), dy = pseudo(N * O * HO * WO, 2);
  sn.engine().conv5x5 = mode;
  const w = sn.tensor(pseudo(O * C * 25, 3), [O, C, 5, 5]).requireGrad();
  const p = sn.profile(() => sn.tidy(() => sn.conv2d(sn.tensor(x, [N, C, H, W]), w, null, { padding: P }).backward(sn.tensor(dy, [N, O, HO, WO]))), { peak: false });
  sn.engine().conv5x5 = "auto";
  return { dw: w.grad.toArray(), x, dy, path: p.ops.find((r) => r.op === "conv2d" && r.phase === "backward").path };
};

test(`weight gradient of 5x5 kernels by F(2x2,5x5): within ${BOUND5} of float64, relative to the largest (im2col too); it ran`, () => {
  for (const s of shapes5) {
    const [N, C, H, W, O, P] = s;
    const wino = dw5Of(s, "winograd"), exact = dw5Of(s, "im2col");
    const ref = reference(wino.x, wino.dy, [N, C, H, W], O, P, 5);
    const ew = relError(wino.dw, ref), ei = relError(exact.dw, ref);
    assert.ok(ew <= BOUND5, `F(2,5) [${s}]: ${ew.toExponential(2)}`);
    assert.ok(ei <= BOUND, `im2col [${s}]: ${ei.toExponential(2)}`);
    assert.match(wino.path, /winograd F\(2,5\) dW/, `[${s}]`);
    assert.not.match(exact.path, /dW/, `[${s}]`);
    assert.not.ok(same(wino.dw, exact.dw), `[${s}]: the Winograd path ran (its rounding differs from im2col's)`);
  }
});

test("gradcheck (finite differences) through a 5x5 conv2d's weight on F(2x2,5x5)", () => {
  sn.engine().conv5x5 = "winograd";
  const x = sn.tensor(pseudo(2 * 3 * 7 * 6, 4), [2, 3, 7, 6]);
  const w = sn.tensor(pseudo(4 * 3 * 25, 5), [4, 3, 5, 5]).requireGrad();
  const p = sn.profile(() => sn.gradcheck((w) => sn.conv2d(x, w, null, { padding: 2 }), [w], { maxElements: 300, seed: 3 }), { peak: false });
  sn.engine().conv5x5 = "auto";
  assert.ok(p.value.ok, JSON.stringify(p.value.worst));
  assert.is(p.value.checked, 300);
  assert.ok(p.ops.some((r) => r.phase === "backward" && r.path.includes("winograd F(2,5) dW")), "the weight gradient took F(2,5)");
});

test("5x5 weight gradient: the same bits on 1, 2 and 4 threads", async () => {
  const runs = [];
  for (const threads of [1, 2, 4]) {
    await sn.init({ threads, minParallelWork: 0 });
    runs.push(shapes5.map((s) => dw5Of(s, "winograd").dw));
  }
  await sn.init({ threads: 2 });
  shapes5.forEach((s, i) => {
    assert.ok(same(runs[0][i], runs[1][i]), `[${s}]: 1 vs 2 threads`);
    assert.ok(same(runs[0][i], runs[2][i]), `[${s}]: 1 vs 4 threads`);
  });
});

test("auto: F(2x2,5x5) for a 5x5 weight gradient with 16+ channels each way and 256+ tiles of 2x2 in the batch; im2col otherwise and under 'im2col'; 'winograd' wherever it applies", () => {
  const path = (s, mode = "auto") => dw5Of([...s, 2], mode).path;
  assert.match(path([8, 20, 14, 14, 50]), /winograd F\(2,5\) dW/); // LeNet's second layer: 392 tiles
  assert.match(path([8, 16, 14, 14, 16]), /winograd F\(2,5\) dW/); // 16 channels
  assert.not.match(path([4, 20, 14, 14, 50]), /dW/); // 196 tiles (measured 0.87-1.10x)
  assert.not.match(path([8, 6, 14, 14, 16]), /dW/); // 6 input channels (0.77x)
  assert.not.match(path([8, 20, 14, 14, 50], "im2col"), /dW/);
  assert.match(path([1, 6, 8, 8, 3], "winograd"), /winograd F\(2,5\) dW/);
  // the 3x3 setting does not touch 5x5 layers
  sn.engine().conv3x3 = "im2col";
  assert.match(path([8, 20, 14, 14, 50]), /winograd F\(2,5\) dW/);
  sn.engine().conv3x3 = "auto";
});

// one op table, one set of cases: both wasm builds, 1 and 2 threads
for (const [build, threads] of [["relaxed", 2], ["simd", 2], ["relaxed", 1], ["simd", 1]])
test(`every 3x3 and 5x5 stride-1 conv2d and conv_transpose2d fixture (PyTorch) on the Winograd paths, ${build} build, ${threads} thread(s): output and every gradient within the case's tolerance`, async () => {
  await sn.init({ threads, build });
  assert.is(sn.engine().info.build, build);
  const fixtures = loadFixtures(sn);
  let ran = 0, ran5 = 0;
  for (const { tensors, cases } of fixtures)
    for (const c of cases) {
      if (c.op !== "conv2d" && c.op !== "conv_transpose2d") continue;
      const w = tensors.get(c.inputs[1]);
      const a = c.attrs;
      const one = (v, d) => (v === undefined ? d : Array.isArray(v) ? v.every((e) => e === d) : v === d);
      const k = w.shape[2];
      if ((k !== 3 && k !== 5) || w.shape[3] !== k || !one(a.stride, 1) || !one(a.dilation, 1) || !one(a.groups, 1)) continue;
      for (const mode of k === 3 ? ["winograd2", "winograd4"] : ["winograd"]) {
        if (k === 3) sn.engine().conv3x3 = mode;
        else sn.engine().conv5x5 = mode;
        const inputs = caseInputs(sn, c, tensors);
        const p = sn.profile(() => {
          const y = sn.opTable.get(c.op).apply(inputs, c.attrs);
          compare(`${c.name} ${mode} out`, y.toArray(), tensors.get(c.out).data, c.rtol, c.atol);
          if (c.gout) {
            const g = tensors.get(c.gout);
            y.backward(sn.tensor(g.data, g.shape));
            c.grads.forEach((name, i) => {
              if (name) compare(`${c.name} ${mode} d${c.inputs[i]}`, inputs[i].grad.toArray(), tensors.get(name).data, c.grad_rtol, c.grad_atol);
            });
          }
        }, { peak: false });
        sn.engine().conv3x3 = sn.engine().conv5x5 = "auto";
        const dW = k === 5 ? "winograd F(2,5) dW" : mode === "winograd2" ? "winograd F(2,3) dW" : "winograd F(4,3) dW";
        if (c.gout && c.grads[1] && c.op === "conv2d")
          assert.ok(p.ops.some((r) => r.phase === "backward" && r.path.includes(dW)), `${c.name}: the weight gradient took ${dW}`);
        ran++;
        if (k === 5) ran5++;
      }
    }
  assert.ok(ran >= 6, `${ran} fixture runs`);
  assert.ok(ran5 >= 3, `${ran5} 5x5 fixture runs`);
  await sn.init({ threads: 2 });
});

for (const mode of ["winograd2", "winograd4"])
  test(`gradcheck (finite differences) through conv2d's weight on the Winograd path (${mode})`, () => {
    sn.engine().conv3x3 = mode;
    const x = sn.tensor(pseudo(2 * 3 * 7 * 6, 4), [2, 3, 7, 6]);
    const w = sn.tensor(pseudo(4 * 3 * 9, 5), [4, 3, 3, 3]).requireGrad();
    const r = sn.gradcheck((w) => sn.conv2d(x, w, null, { padding: 1 }), [w], { maxElements: 108, seed: 3 });
    sn.engine().conv3x3 = "auto";
    assert.ok(r.ok, JSON.stringify(r.worst));
    assert.is(r.checked, 108);
  });

test("the same bits on 1, 2 and 4 threads (F(2,3) and F(4,3))", async () => {
  const runs = [];
  for (const threads of [1, 2, 4]) {
    await sn.init({ threads });
    runs.push(shapes.flatMap((s) => [dwOf(s, "winograd2").dw, dwOf(s, "winograd4").dw]));
  }
  await sn.init({ threads: 2 });
  for (let i = 0; i < runs[0].length; i++) {
    const what = `[${shapes[i >> 1]}] ${i & 1 ? "F(4,3)" : "F(2,3)"}`;
    assert.ok(same(runs[0][i], runs[1][i]), `${what}: 1 vs 2 threads`);
    assert.ok(same(runs[0][i], runs[2][i]), `${what}: 1 vs 4 threads`);
  }
});

test("auto: Winograd F(4,3) for the weight gradient with 16+ channels each way, 96+ tiles of 2x2 in the batch and at most 512x512 channels; im2col otherwise and under 'im2col'; F(2,3) under 'winograd2' and where 'winograd' goes past auto", () => {
  const path = ([N, C, H, W, O]) => {
    const x = sn.tensor(pseudo(N * C * H * W, 1), [N, C, H, W]);
    const w = sn.tensor(pseudo(O * C * 9, 2), [O, C, 3, 3]).requireGrad();
    const p = sn.profile(() => sn.tidy(() => sn.sum(sn.conv2d(x, w, null, { padding: 1 })).backward()), { peak: false });
    return p.ops.find((r) => r.op === "conv2d" && r.phase === "backward").path;
  };
  assert.match(path([1, 32, 20, 20, 32]), /winograd F\(4,3\) dW/); // 100 tiles of 2x2 (25 of 4x4)
  assert.not.match(path([1, 32, 18, 18, 32]), /dW/); // 81 tiles
  assert.match(path([8, 16, 12, 12, 32]), /winograd F\(4,3\) dW/); // 16 input channels
  assert.not.match(path([8, 8, 12, 12, 32]), /dW/); // 8 input channels
  assert.match(path([1, 512, 20, 20, 256]), /winograd F\(4,3\) dW/); // 512 x 256 channels
  assert.not.match(path([1, 1024, 20, 20, 512]), /dW/); // 1024 x 512 channels
  sn.engine().conv3x3 = "im2col";
  assert.not.match(path([1, 32, 20, 20, 32]), /dW/);
  sn.engine().conv3x3 = "winograd2";
  assert.match(path([1, 32, 20, 20, 32]), /winograd F\(2,3\) dW/);
  sn.engine().conv3x3 = "winograd";
  assert.match(path([1, 4, 5, 5, 3]), /winograd F\(2,3\) dW/); // wherever it applies: F(2,3) past auto's rule
  assert.match(path([1, 32, 20, 20, 32]), /winograd F\(4,3\) dW/); // auto's tile where auto takes it
  sn.engine().conv3x3 = "winograd4";
  assert.match(path([1, 4, 5, 5, 3]), /winograd F\(4,3\) dW/);
  sn.engine().conv3x3 = "auto";
  // with the input's gradient too, the profile names both kernels
  const x = sn.tensor(pseudo(64 * 16 * 16), [1, 64, 16, 16]).requireGrad();
  const w = sn.tensor(pseudo(64 * 64 * 9, 2), [64, 64, 3, 3]).requireGrad();
  const p = sn.profile(() => sn.tidy(() => sn.sum(sn.conv2d(sn.cat([x, x], 0), w, null, { padding: 1 })).backward()), { peak: false });
  assert.is(p.ops.find((r) => r.op === "conv2d" && r.phase === "backward").path, "winograd F(4,3) dx + winograd F(4,3) dW");
});

test.run();
