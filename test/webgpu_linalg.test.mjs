// WebGPU matmul / gemm / linear and the shape ops (cat, bias_add, upsampling, sum, mean,
// mul_scalar) against the CPU path on the same random inputs, forward and gradients, at the sizes
// the fixtures do not reach: tile edges of the 64 x 64 GEMM (1, 7, 63, 64, 65, 130, odd K), every
// transpose, alpha / beta and every broadcast of gemm's c, a split K, long two-pass reductions.
// gpuGemm itself (batched, strided, row bias, relu, a sub-block of C) is checked against a float64
// reference. Also: the same bits run to run, no reads back inside the ops, errors.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { build } from "esbuild";
import { writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as sn from "../dist/index.js";
import { compare, sameBits, uniformValues } from "./helpers.mjs";
import { initGpu, runAndExit } from "./gpu_helpers.mjs";

let gpuGemm;

test.before(async () => {
  await initGpu(sn);
  // gpuGemm is not part of the public API: bundle src/webgpu/ops/linalg.ts for this test (its own
  // copy of the modules; it only records dispatches on the engine it is given)
  const root = fileURLToPath(new URL("..", import.meta.url));
  const res = await build({
    entryPoints: [join(root, "src/webgpu/ops/linalg.ts")], bundle: true, format: "esm", platform: "neutral", write: false,
    loader: { ".wgsl": "text" }, define: { __SIMDNET_WASM_DIR__: '"./"' }, external: ["node:*"], logLevel: "silent",
  });
  const file = join(tmpdir(), `simdnet_gpu_linalg_${process.pid}.mjs`);
  writeFileSync(file, res.outputFiles[0].text);
  try {
    ({ gpuGemm } = await import(pathToFileURL(file).href));
  } finally {
    rmSync(file, { force: true });
  }
});

let seed = 1;
const vals = (n, lo = -1, hi = 1) => uniformValues(n, seed++, lo, hi);
const sizeOf = (s) => s.reduce((a, b) => a * b, 1);
const gemmTol = (K) => ({ rtol: 1e-4, atol: 1e-5 + 1e-6 * K });

/** op on the CPU and on the GPU with the same inputs (null: absent), output and every input's
 *  gradient (for a random output gradient) compared with rtol / atol; exact: bit for bit.
 *  Returns the GPU results (for bit checks run to run). */
async function vsCpu(op, shapes, attrs, { rtol = 0, atol = 0, exact = false, grad = true } = {}) {
  const data = shapes.map((s) => (s ? vals(sizeOf(s)) : null));
  const run = async (dev) => {
    const inputs = data.map((d, i) => {
      if (!d) return null;
      const t = sn.tensor(d, shapes[i]).requireGrad(grad);
      return dev === "webgpu" ? t.to("webgpu") : t;
    });
    const y = sn.opTable.get(op).apply(inputs, attrs);
    const out = { shape: [...y.shape], y: await y.read(), grads: [] };
    if (grad) {
      gseed ??= vals(y.size);
      const g = sn.tensor(gseed, y.shape);
      y.backward(dev === "webgpu" ? g.to("webgpu") : g);
      for (const t of inputs) out.grads.push(t ? await t.grad.read() : null);
    }
    return out;
  };
  let gseed = null;
  const cpu = await run("cpu"), gpu = await run("webgpu");
  const what = `${op} ${JSON.stringify(shapes)} ${JSON.stringify(attrs)}`;
  assert.equal(gpu.shape, cpu.shape, `${what}: shape`);
  const cmp = (w, a, b) => (exact ? sameBits(w, a, b) : compare(w, a, b, rtol, atol));
  cmp(`${what}: out`, gpu.y, cpu.y);
  gpu.grads.forEach((gr, i) => gr && cmp(`${what}: grad ${i}`, gr, cpu.grads[i]));
  return gpu;
}

const EDGES = [1, 7, 63, 64, 65, 130];
const TRANS = [[false, false], [false, true], [true, false], [true, true]];

test("matmul: tile edges, odd K, all four transposes, gradients (vs CPU)", async () => {
  const shapes = [[1, 1, 1], [7, 5, 3], [63, 64, 65], [64, 63, 17], [65, 130, 31], [130, 65, 1], [1, 130, 7], [130, 1, 129], [64, 64, 64], [65, 65, 63]];
  for (const [ta, tb] of TRANS)
    for (const [M, N, K] of shapes) {
      const a = ta ? [K, M] : [M, K], b = tb ? [N, K] : [K, N];
      await vsCpu("matmul", [a, b], { transA: ta, transB: tb }, gemmTol(Math.max(M, N, K)));
    }
});

test("matmul: every pair of edge sizes for M and N (K 33)", async () => {
  for (const M of EDGES) for (const N of EDGES) await vsCpu("matmul", [[M, 33], [33, N]], {}, { ...gemmTol(130), grad: false });
});

test("matmul: a long K with few tiles takes the split-K path (all transposes); same bits run to run", async () => {
  for (const [ta, tb] of TRANS)
    for (const [M, N, K] of [[5, 7, 3001], [70, 3, 2049], [1, 1, 1024]]) {
      const a = ta ? [K, M] : [M, K], b = tb ? [N, K] : [K, N];
      const first = await vsCpu("matmul", [a, b], { transA: ta, transB: tb }, gemmTol(K));
      seed -= 3; // the same inputs again
      const again = await vsCpu("matmul", [a, b], { transA: ta, transB: tb }, gemmTol(K));
      sameBits("split-K out, second run", again.y, first.y);
      first.grads.forEach((g, i) => sameBits(`split-K grad ${i}, second run`, again.grads[i], g));
    }
});

test("gemm: alpha, beta, every broadcast of c, transposes, tile edges (vs CPU)", async () => {
  const cases = [
    [65, 130, 33, (M, N) => [M, N], 0.5, -2],
    [65, 130, 33, (M, N) => [N], 1.5, 0.25],
    [130, 65, 7, (M, N) => [1, N], 1, 1],
    [63, 65, 64, (M, N) => [M, 1], -1, 3],
    [7, 64, 65, () => [1], 2, 0.5],
    [64, 7, 1, () => [], 2, 0.5],
    [65, 63, 17, (M, N) => [M, N], 1, 0], // beta 0: c unread, zero gradient
    [1, 1, 129, (M, N) => [M, N], 0, 1], // alpha 0
    [31, 33, 5, null, 0.75, 1],
  ];
  for (const [M, N, K, cs, alpha, beta] of cases)
    for (const [ta, tb] of TRANS) {
      const a = ta ? [K, M] : [M, K], b = tb ? [N, K] : [K, N];
      await vsCpu("gemm", [a, b, cs ? cs(M, N) : null], { transA: ta, transB: tb, alpha, beta }, gemmTol(Math.max(M, N, K)));
    }
});

test("linear: tile edges, with and without bias; long batch (two-pass bias gradient) (vs CPU)", async () => {
  for (const [B, I, O] of [[1, 7, 1], [65, 130, 63], [64, 64, 64], [130, 1, 65], [2, 129, 7]]) {
    await vsCpu("linear", [[B, I], [O, I], [O]], {}, gemmTol(Math.max(B, I, O)));
    await vsCpu("linear", [[B, I], [O, I], null], {}, gemmTol(Math.max(B, I, O)));
  }
  await vsCpu("linear", [[2100, 3], [5, 3], [5]], {}, gemmTol(2100));
});

/** values of a GPU tensor made from v */
const onGpu = (v, shape = [v.length]) => sn.tensor(v, shape).to("webgpu");
const el = (t) => t.ptr >>> 2;

test("gpuGemm: batched with strides, row bias per batch, beta, relu, a sub-block of a wider C (vs float64)", async () => {
  const g = sn.gpuEngine();
  for (const { M, N, K, ta, tb, batch } of [
    { M: 65, N: 7, K: 63, ta: false, tb: false, batch: 3 },
    { M: 1, N: 130, K: 17, ta: true, tb: false, batch: 2 },
    { M: 63, N: 65, K: 1, ta: false, tb: true, batch: 4 },
    { M: 9, N: 5, K: 1500, ta: true, tb: true, batch: 2 }, // split K, batched
  ]) {
    const lda = (ta ? M : K) + 2, ldb = (tb ? K : N) + 1, ldc = N + 3;
    const aRows = ta ? K : M, bRows = tb ? N : K;
    const sA = aRows * lda + 5, sB = 0, sC = M * ldc + 1; // B shared by every batch (stride 0)
    const A = vals(batch * sA), B = vals(bRows * ldb), C0 = vals(batch * sC), bias = vals(batch * M);
    const alpha = 0.75, beta = -0.5;
    const tA = onGpu(A), tB = onGpu(B), tC = onGpu(C0), tBias = onGpu(bias);
    gpuGemm(g, {
      M, N, K, a: el(tA), lda, transA: ta, b: el(tB), ldb, transB: tb, c: el(tC), ldc, alpha, beta,
      bias: el(tBias), biasAlong: "row", strideBias: M, relu: true, batch, strideA: sA, strideB: sB, strideC: sC,
    });
    const got = await tC.read();
    const want = Float64Array.from(C0);
    for (let z = 0; z < batch; z++)
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          let s = 0;
          for (let k = 0; k < K; k++) {
            const av = A[z * sA + (ta ? k * lda + m : m * lda + k)], bv = B[tb ? n * ldb + k : k * ldb + n];
            s += av * bv;
          }
          const i = z * sC + m * ldc + n;
          want[i] = Math.max(0, alpha * s + beta * C0[i] + bias[z * M + m]);
        }
    // outside the M x N blocks (the padding columns and gaps) C is untouched: want[i] = C0[i] there
    compare(`gpuGemm ${JSON.stringify({ M, N, K, ta, tb, batch })}`, got, want, 1e-4, 1e-5 + 1e-6 * K);
    for (const t of [tA, tB, tC, tBias]) t.dispose();
  }
});

test("gpuGemm: column and scalar bias with a bias scale, beta 0 does not read C (NaN there)", async () => {
  const g = sn.gpuEngine();
  const M = 66, N = 67, K = 19;
  const A = vals(M * K), B = vals(K * N), bias = vals(N);
  for (const along of ["col", "scalar"]) {
    const tA = onGpu(A), tB = onGpu(B), tBias = onGpu(bias), tC = onGpu(new Float32Array(M * N).fill(NaN));
    gpuGemm(g, { M, N, K, a: el(tA), lda: K, b: el(tB), ldb: N, c: el(tC), ldc: N, bias: el(tBias), biasAlong: along, biasScale: 2 });
    const got = await tC.read();
    const want = new Float64Array(M * N);
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += A[m * K + k] * B[k * N + n];
        want[m * N + n] = s + 2 * bias[along === "col" ? n : 0];
      }
    compare(`gpuGemm bias ${along}`, got, want, 1e-4, 1e-5 + 1e-6 * K);
    for (const t of [tA, tB, tC, tBias]) t.dispose();
  }
});

test("sum and mean: sizes around the workgroup and the two-pass chunking (vs CPU's float64 sums)", async () => {
  for (const n of [1, 2, 255, 256, 257, 4097, 8192, 8193, 100003]) {
    // float32 sums in a fixed tree against float64: an absolute error that grows with sqrt(n)
    const tol = { rtol: 1e-5, atol: 1e-6 * Math.sqrt(n) };
    await vsCpu("sum", [[n]], {}, tol);
    await vsCpu("mean", [[n]], {}, tol);
  }
  await vsCpu("mean", [[3, 5, 7, 11]], {}, { rtol: 1e-5, atol: 1e-6 });
});

test("sum: run to run the same bits (two-pass), and no value is read back inside forward or backward", async () => {
  const g = sn.gpuEngine();
  const x = onGpu(vals(300001)).requireGrad();
  const read0 = g.stats.bytesRead;
  const y1 = sn.sum(x), y2 = sn.sum(x);
  const m = sn.mean(x);
  m.backward();
  assert.is(g.stats.bytesRead, read0, "no reads inside the ops");
  sameBits("sum run to run", await y2.read(), await y1.read());
  const dx = await x.grad.read();
  assert.is(dx[0], Math.fround(1 / 300001));
  assert.ok(dx.every((v) => v === dx[0]));
});

test("bias_add: channels with large and unit inner sizes, long batches (two-pass gradients) (vs CPU)", async () => {
  const tol = (n) => ({ rtol: 1e-5, atol: 1e-6 * Math.sqrt(n) });
  for (const s of [[2, 3, 5, 5], [1, 300, 1], [3, 7, 65, 67], [1030, 5], [4, 3, 3000]]) await vsCpu("bias_add", [s, [s[1]]], {}, tol(sizeOf(s) / s[1]));
});

test("cat: along each dim, several inputs, sizes past a workgroup: exact (vs CPU)", async () => {
  await vsCpu("cat", [[2, 3, 17, 9], [2, 1, 17, 9], [2, 300, 17, 9]], { dim: 1 }, { exact: true });
  await vsCpu("cat", [[70, 3], [1, 3], [5, 3]], { dim: 0 }, { exact: true });
  await vsCpu("cat", [[2, 3, 257], [2, 3, 2]], { dim: -1 }, { exact: true });
  await vsCpu("cat", [[2, 3, 4], [2, 5, 4]], { dim: -2 }, { exact: true });
  await vsCpu("cat", [[1, 600]], { dim: 1 }, { exact: true });
});

test("upsample nearest and bilinear: up, down, non-integer ratios, align_corners (vs CPU)", async () => {
  const geos = [
    [[1, 2, 5, 5], { scale_factor: 2 }],
    [[2, 3, 4, 5], { size: [7, 9] }],
    [[1, 2, 9, 7], { size: [4, 3] }],
    [[1, 1, 6, 6], { scale_factor: 1.5 }],
    [[1, 2, 3, 40], { scale_factor: [3, 0.5] }],
    [[2, 1, 1, 1], { size: [5, 3] }],
    [[1, 1, 17, 13], { size: 1 }],
  ];
  // nearest copies and adds in the CPU kernel's order: exact
  for (const [s, a] of geos) await vsCpu("upsample_nearest2d", [s], a, { exact: true });
  // bilinear: the same products and sums as the CPU (a GPU may fuse a multiply-add: 1e-6)
  for (const [s, a] of geos)
    for (const align_corners of [false, true]) await vsCpu("upsample_bilinear2d", [s], { ...a, align_corners }, { rtol: 1e-6, atol: 1e-7 });
});

test("mul_scalar: exact (vs CPU)", async () => {
  await vsCpu("mul_scalar", [[3, 333]], { scalar: -2.5 }, { exact: true });
  await vsCpu("mul_scalar", [[1]], { scalar: 0.1 }, { exact: true });
});

test("errors: shapes are checked before any kernel; mixed devices name both", async () => {
  const a = onGpu(vals(6), [2, 3]), b = onGpu(vals(20), [4, 5]);
  assert.throws(() => sn.matmul(a, b), /matmul: inner dimensions differ/);
  assert.throws(() => sn.gemm(a, onGpu(vals(15), [3, 5]), onGpu(vals(3), [3])), /gemm: c \[3\] does not broadcast/);
  assert.throws(() => sn.linear(a, b), /linear: input has 3 features but weight expects 5/);
  assert.throws(() => sn.matmul(a, sn.tensor(vals(6), [3, 2])), /different devices \(webgpu, cpu/);
  assert.throws(() => sn.cat([a, onGpu(vals(4), [2, 2])], 0), /cat: input 1 \[2,2\] does not match/);
  assert.throws(() => sn.bias_add(a, onGpu(vals(2), [2])), /bias_add: bias \[2\] does not match input channels 3/);
});

test("empty shapes: M, N or K of 0", async () => {
  const y = sn.matmul(onGpu(new Float32Array(0), [0, 3]), onGpu(vals(6), [3, 2]));
  assert.equal(y.shape, [0, 2]);
  const c = [1, 2, 3, 4];
  const z = sn.gemm(onGpu(new Float32Array(0), [2, 0]), onGpu(new Float32Array(0), [0, 2]), onGpu(c, [2, 2]), { beta: 2 });
  assert.equal([...(await z.read())], [2, 4, 6, 8]);
  assert.equal([...(await sn.sum(onGpu(new Float32Array(0), [0])).read())], [0]);
});

runAndExit(sn);
