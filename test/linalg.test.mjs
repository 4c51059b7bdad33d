// matmul / gemm / linear: clear errors before any kernel runs, and the same bits on 1 and 2
// threads (the values themselves are checked against PyTorch in the conformance suite).
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { lcgTensor as rand, rejects, loadFixtures, caseInputs, compare } from "./helpers.mjs";

test.before(async () => {
  await sn.init({ threads: 2 });
});

test("matmul: wrong rank names the operand and its shape", () => {
  const a = sn.zeros([2, 3, 4]), b = sn.zeros([4, 5]), v = sn.zeros([5]);
  rejects(() => sn.matmul(a, b), /matmul: a must be rank 2, got rank 3 \[2,3,4\]/);
  rejects(() => sn.matmul(b, v), /matmul: b must be rank 2, got rank 1 \[5\]/);
});

test("matmul: inner dimensions that differ name both shapes and the transposes", () => {
  const a = sn.zeros([2, 3]), b = sn.zeros([4, 5]);
  rejects(() => sn.matmul(a, b), /matmul: inner dimensions differ: op\(a\) is \[2,3\] \(a \[2,3\]\) but op\(b\) is \[4,5\] \(b \[4,5\]\)/);
  rejects(() => sn.matmul(a, b, { transA: true }), /op\(a\) is \[3,2\] \(a \[2,3\] transposed\)/);
  rejects(() => sn.matmul(a, b, { transA: "yes" }), /matmul: transA and transB must be booleans/);
});

test("gemm: c that does not broadcast to the output, and non-numeric alpha, are errors", () => {
  const a = sn.zeros([2, 3]), b = sn.zeros([3, 4]), c34 = sn.zeros([3, 4]), c2 = sn.zeros([2]);
  rejects(() => sn.gemm(a, b, c34), /gemm: c \[3,4\] does not broadcast to the output \[2,4\]/);
  rejects(() => sn.gemm(a, b, c2), /gemm: c \[2\] does not broadcast/);
  rejects(() => sn.gemm(a, b, null, { alpha: "2" }), /gemm: alpha and beta must be numbers/);
});

test("linear: feature mismatch and a wrong bias shape name the shapes", () => {
  const x = sn.zeros([5, 7]), w = sn.zeros([3, 6]), w7 = sn.zeros([3, 7]), b7 = sn.zeros([7]), v7 = sn.zeros([7]);
  rejects(() => sn.linear(x, w), /linear: input has 7 features but weight expects 6 \(input \[5,7\], weight \[3,6\] as \[out, in\]\)/);
  rejects(() => sn.linear(x, w7, b7), /linear: bias \[7\] must be \[3\]/);
  rejects(() => sn.linear(v7, w7), /linear: input must be rank 2, got rank 1 \[7\]/);
});

test("gemm with K = 0 gives beta * c (no products), and empty outputs work", () => {
  const c = sn.tensor([1, 2, 3, 4], [2, 2]);
  const y = sn.gemm(sn.zeros([2, 0]), sn.zeros([0, 2]), c, { beta: 2 });
  assert.equal(Array.from(y.toArray()), [2, 4, 6, 8]);
  assert.equal(sn.matmul(sn.zeros([0, 3]), sn.zeros([3, 4])).shape, [0, 4]);
});

/** Every output and gradient of the cases below, as raw bits. */
function runAll() {
  const out = [];
  for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]]) {
    const [M, K, N] = [301, 263, 197];
    const a = rand(transA ? [K, M] : [M, K], 1).requireGrad();
    const b = rand(transB ? [N, K] : [K, N], 2).requireGrad();
    const c = rand([M, N], 3).requireGrad();
    const y = sn.gemm(a, b, c, { transA, transB, alpha: 0.75, beta: -1.5 });
    y.backward(rand([M, N], 4));
    for (const t of [y, a.grad, b.grad, c.grad]) out.push(new Uint32Array(t.toArray().buffer));
  }
  // few columns and many rows: the threads split the rows instead of the columns
  const a = rand([301, 263], 11), b = rand([263, 20], 12);
  out.push(new Uint32Array(sn.matmul(a, b).toArray().buffer));
  const x = rand([67, 530], 5).requireGrad(), w = rand([129, 530], 6).requireGrad(), bias = rand([129], 7).requireGrad();
  const y = sn.linear(x, w, bias);
  y.backward(rand([67, 129], 8));
  for (const t of [y, x.grad, w.grad, bias.grad]) out.push(new Uint32Array(t.toArray().buffer));
  return out;
}

test("gemm (all transposes, alpha/beta) and linear: same bits on 1 thread and on 2 threads splitting every kernel", async () => {
  await sn.init({ threads: 1 });
  const one = runAll();
  await sn.init({ threads: 2, minParallelWork: 0 });
  const two = runAll();
  assert.is(one.length, two.length);
  one.forEach((bits, i) => {
    const j = bits.findIndex((v, k) => v !== two[i][k]);
    assert.is(j, -1, `result ${i}: element ${j} differs`);
  });
  await sn.init({ threads: 2 });
});

test("matmul matches a float64 loop on a size with partial tiles on every edge and 3 K blocks", () => {
  const [M, K, N] = [37, 700, 29];
  const a = rand([M, K], 9), b = rand([K, N], 10);
  const y = sn.matmul(a, b).toArray(), A = a.toArray(), B = b.toArray();
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A[i * K + k] * B[k * N + j];
      assert.ok(Math.abs(y[i * N + j] - s) <= 1e-5 * K ** 0.5 + 1e-5 * Math.abs(s), `(${i},${j}): ${y[i * N + j]} vs ${s}`);
    }
});

// A batch of one (a Linear layer at inference, ONNX Gemm with transB): f32_gemv reads the weight
// rows where they lie instead of packing them, and sums each output as f32_gemm sums its row, so
// a row gives the same bits alone and in a batch. Both kernel builds (the relaxed one fuses its
// multiply-adds where the machine can), 1-3 threads, K in one and in several blocks and not a
// multiple of 4, N not a multiple of 8, bias or none; and against float64.
test("linear and gemm(transB) on one row: the bits of that row in a batch of two, on both builds and 1-3 threads; f32_gemv ran; within float64's reach", async () => {
  let ran = 0;
  try {
    for (const build of ["relaxed", "simd"])
      for (const threads of [1, 2, 3]) {
        await sn.init({ threads, build, minParallelWork: 0 });
        const eng = sn.engine(), run = eng.run.bind(eng);
        eng.run = (k, args, work) => ((ran += k === "f32_gemv" ? 1 : 0), run(k, args, work));
        for (const [K, N, seed] of [[1, 1, 1], [3, 9, 2], [4, 8, 3], [257, 67, 4], [1100, 150, 5], [530, 17, 6]]) {
          const x = rand([2, K], seed), w = rand([N, K], seed + 10), b = rand([N], seed + 20);
          const x1 = sn.tensor(x.toArray().slice(0, K), [1, K]);
          for (const bias of [b, null]) {
            const one = sn.linear(x1, w, bias).toArray(), two = sn.linear(x, w, bias).toArray().slice(0, N);
            const j = one.findIndex((v, i) => !Object.is(v, two[i]));
            assert.is(j, -1, `linear K ${K} N ${N}${bias ? " + bias" : ""}, ${build}, ${threads} thread(s): output ${j}`);
          }
          const g1 = sn.gemm(x1, w, b, { transB: true, beta: 1 }).toArray(), g2 = sn.gemm(x, w, b, { transB: true, beta: 1 }).toArray();
          assert.ok(g1.every((v, i) => Object.is(v, g2[i])), `gemm K ${K} N ${N}, ${build}, ${threads} thread(s)`);
          if (K === 1100) {
            const X = x1.toArray(), W = w.toArray(), y = sn.linear(x1, w, b).toArray(), B = b.toArray();
            for (let n = 0; n < N; n++) {
              let s = B[n];
              for (let k = 0; k < K; k++) s += X[k] * W[n * K + k];
              assert.ok(Math.abs(y[n] - s) <= 1e-5 * K ** 0.5 + 1e-5 * Math.abs(s), `(${n}): ${y[n]} vs ${s}`);
            }
          }
        }
        delete eng.run;
      }
  } finally {
    await sn.init({ threads: 2 });
  }
  assert.ok(ran >= 6 * 6 * 3, `f32_gemv ran ${ran} times`);
});

// The same PyTorch cases on the one-row path: every linear, matmul and gemm fixture whose A is not
// transposed, run one row of A at a time (its own batch of one) against that row of PyTorch's
// output, on both builds; f32_gemv takes the linear and gemm(transB, alpha 1) rows.
test("every linear, matmul and gemm fixture (PyTorch), one row at a time: each row within the case's tolerance, both builds; f32_gemv ran", async () => {
  let rows = 0, ran = 0;
  try {
    for (const build of ["relaxed", "simd"]) {
      await sn.init({ threads: 2, build, minParallelWork: 0 });
      const eng = sn.engine(), run = eng.run.bind(eng);
      eng.run = (k, args, work) => ((ran += k === "f32_gemv" ? 1 : 0), run(k, args, work));
      for (const { tensors, cases } of loadFixtures(sn))
        for (const c of cases) {
          if (!["linear", "matmul", "gemm"].includes(c.op) || c.attrs.transA) continue;
          const inputs = caseInputs(sn, c, tensors), [a] = inputs, [M, K] = a.shape, want = tensors.get(c.out).data;
          const N = want.length / M, rowBias = c.op === "gemm" && inputs[2] && inputs[2].shape[0] === M && M > 1;
          if (rowBias) continue; // a c of one value per row of A: not a batch of rows
          for (let m = 0; m < M; m++) {
            const row = sn.tensor(a.toArray().slice(m * K, (m + 1) * K), [1, K]);
            const y = sn.opTable.get(c.op).apply([row, ...inputs.slice(1)], c.attrs).toArray();
            compare(`${c.name} row ${m} (${build})`, y, want.subarray(m * N, (m + 1) * N), c.rtol, c.atol);
            rows++;
          }
        }
      delete eng.run;
    }
  } finally {
    await sn.init({ threads: 2 });
  }
  assert.ok(rows >= 40, `${rows} rows`);
  assert.ok(ran >= 2 * (5 + 1 + 16 + 5), `f32_gemv ran ${ran} times`);
});

test.after(() => sn.dispose());
test.run();
