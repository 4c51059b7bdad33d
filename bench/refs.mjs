// The reference runtimes of the benchmarks: TensorFlow.js's wasm backend (XNNPACK inside) and
// ONNX Runtime Web (wasm). Each maker returns a runner { name, run, result, dispose }:
//   run()    one call, finished (the output is read back or synchronised): what is timed;
//   result() the output as NCHW (or row-major) Float32Array, to check ours against;
// and throws (caught by the harness, printed as the row's status) when the runtime cannot do it.
//
// Layouts: TF.js computes in NHWC with HWIO filters, its native layout, so inputs are converted
// once before timing and outputs back after; ONNX Runtime works in NCHW / OIHW like us.
import { fileURLToPath } from "node:url";
import { convModel, convTransposeModel, maxPoolModel, onnxModel, convOut } from "./onnx.mjs";

const nodeModules = new URL("../node_modules/", import.meta.url);

// ---------------------------------------------------------------- setup

let tfPromise = null;
/** TF.js core with the wasm backend active. In Node it runs one thread (its threaded build is
 *  browser-only), which the tables say. */
export function setupTfjs() {
  tfPromise ??= (async () => {
    const tf = await import("@tensorflow/tfjs-core");
    // tfjs-core's Node bundle registers no gradients (the tfjs union package does that); the
    // tfjs-layers bundle registers them all on the same tfjs-core when it loads.
    await import("@tensorflow/tfjs-layers");
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    // A directory path: the backend reads the .wasm files with fs in Node.
    wasm.setWasmPaths(fileURLToPath(new URL("@tensorflow/tfjs-backend-wasm/dist/", nodeModules)));
    if (!(await tf.setBackend("wasm"))) throw new Error("tfjs: the wasm backend did not start");
    await tf.ready();
    return tf;
  })();
  return tfPromise;
}

/** Whether TF.js's wasm backend registers a kernel (it lacks Conv2DBackpropFilter, for one). */
export function tfjsHasKernel(tf, name) {
  return !!tf.getKernel(name, "wasm");
}

export function tfjsThreads(tf) {
  return tf.env().getBool("WASM_HAS_MULTITHREAD_SUPPORT") ? "threads" : 1;
}

let ortPromise = null;
let ortThreads = 0;
/** ONNX Runtime Web on wasm with `threads` threads. Its thread pool is global and fixed at the
 *  first session, so one process can use one thread count: the harness runs one child process
 *  per thread count. */
export function setupOrt(threads) {
  if (ortPromise && ortThreads !== threads) throw new Error(`ort: already started with ${ortThreads} threads`);
  ortThreads = threads;
  ortPromise ??= (async () => {
    const ort = await import("onnxruntime-web");
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.wasmPaths = new URL("onnxruntime-web/dist/", nodeModules).href;
    ort.env.logLevel = "error";
    return ort;
  })();
  return ortPromise;
}

/** A session on the wasm provider with every graph optimisation (as an application would). */
export async function ortSession(ort, bytes) {
  return ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
}

// ---------------------------------------------------------------- layout helpers

/** [N,C,H,W] -> [N,H,W,C] (also OIHW -> OHWI); plain loops, outside any timing. */
export function nchwToNhwc(a, [N, C, H, W]) {
  const out = new Float32Array(a.length);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) out[((n * H + h) * W + w) * C + c] = a[((n * C + c) * H + h) * W + w];
  return out;
}

export function nhwcToNchw(a, [N, C, H, W]) {
  const out = new Float32Array(a.length);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) out[((n * C + c) * H + h) * W + w] = a[((n * H + h) * W + w) * C + c];
  return out;
}

/** OIHW (PyTorch, ONNX, us) -> HWIO (TF.js). */
export function oihwToHwio(a, [O, I, KH, KW]) {
  const out = new Float32Array(a.length);
  for (let o = 0; o < O; o++)
    for (let i = 0; i < I; i++)
      for (let h = 0; h < KH; h++) for (let w = 0; w < KW; w++) out[((h * KW + w) * I + i) * O + o] = a[((o * I + i) * KH + h) * KW + w];
  return out;
}

export function hwioToOihw(a, [O, I, KH, KW]) {
  const out = new Float32Array(a.length);
  for (let o = 0; o < O; o++)
    for (let i = 0; i < I; i++)
      for (let h = 0; h < KH; h++) for (let w = 0; w < KW; w++) out[((o * I + i) * KH + h) * KW + w] = a[((h * KW + w) * I + i) * O + o];
  return out;
}

const explicitPad = (p) => (p === 0 ? "valid" : [[0, 0], [p, p], [p, p], [0, 0]]);

// ---------------------------------------------------------------- gradients as forward convs (TF.js)

/**
 * dL/dW of y = conv2d(x, w) (NHWC, HWIO), computed with a forward convolution, for backends
 * without Conv2DBackpropFilter (TF.js's wasm backend):
 *   dW[kh,kw,ci,co] = sum_{n,y,x} X[n, y*s+kh-p, x*s+kw-p, ci] * dY[n,y,x,co]
 * is a convolution of X with the batch and channel axes swapped ([Cin,H,W,N]) by dY read as a
 * filter ([Ho,Wo,N,Cout]), stride 1, dilation s. The bottom/right padding is chosen so that the
 * output is exactly kh x kw (rows past the last window are sliced off first).
 */
export function convFilterGradAsConv(tf, x, dy, filterShapeHWIO, stride, pad) {
  return tf.tidy(() => {
    const [KH, KW] = filterShapeHWIO;
    const [, H, W] = x.shape;
    const [, Ho, Wo] = dy.shape;
    let padB = KH + stride * (Ho - 1) - H - pad;
    let padR = KW + stride * (Wo - 1) - W - pad;
    let xs = x;
    if (padB < 0 || padR < 0) {
      xs = tf.slice(x, [0, 0, 0, 0], [-1, H + Math.min(padB, 0), W + Math.min(padR, 0), -1]);
      padB = Math.max(padB, 0);
      padR = Math.max(padR, 0);
    }
    const xt = tf.transpose(xs, [3, 1, 2, 0]); // [Cin, H, W, N]
    const f = tf.transpose(dy, [1, 2, 0, 3]); // [Ho, Wo, N, Cout]
    const pads = pad === 0 && padB === 0 && padR === 0 ? "valid" : [[0, 0], [pad, padB], [pad, padR], [0, 0]];
    const g = tf.conv2d(xt, f, 1, pads, "NHWC", stride); // [Cin, KH, KW, Cout]
    return tf.transpose(g, [1, 2, 0, 3]); // [KH, KW, Cin, Cout]
  });
}

/**
 * dL/dX of y = conv2d(x, w) with stride 1 (NHWC, HWIO), as a forward convolution: dY padded by
 * k-1-p, convolved with the filter rotated 180 degrees and its in/out channels swapped.
 * (TF.js's wasm Conv2DBackpropInput is a scalar loop, many times slower than its forward conv.)
 */
export function convInputGradAsConv(tf, dy, w, pad) {
  return tf.tidy(() => {
    const [KH, KW] = w.shape;
    const wr = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]); // [KH, KW, Cout, Cin]
    const ph = KH - 1 - pad;
    const pw = KW - 1 - pad;
    return tf.conv2d(dy, wr, 1, ph === 0 && pw === 0 ? "valid" : [[0, 0], [ph, ph], [pw, pw], [0, 0]]);
  });
}

// ---------------------------------------------------------------- runners: TF.js

function tfRunner(tf, name, compute, toResult, inputs) {
  return {
    name,
    run() {
      const y = compute();
      y.dataSync(); // wait for the result and read it back, as a caller would
      y.dispose();
    },
    result() {
      const y = compute();
      const r = toResult(y.dataSync());
      y.dispose();
      return r;
    },
    dispose() {
      for (const t of inputs) t.dispose();
    },
  };
}

export async function tfjsMatmul(M, K, N, a, b) {
  const tf = await setupTfjs();
  const A = tf.tensor2d(a, [M, K]);
  const B = tf.tensor2d(b, [K, N]);
  return tfRunner(tf, tfName(tf, "MatMul"), () => tf.matMul(A, B), (d) => d, [A, B]);
}

function tfName(tf, what) {
  return `tfjs-wasm ${what} (${tfjsThreads(tf)} thr)`;
}

/** spec: { N, C, H, W, O, k, stride, pad } (NCHW, OIHW, square kernels) */
export async function tfjsConv(spec, x, w) {
  const tf = await setupTfjs();
  const { N, C, H, W, O, k, stride, pad } = spec;
  const X = tf.tensor4d(nchwToNhwc(x, [N, C, H, W]), [N, H, W, C]);
  const F = tf.tensor4d(oihwToHwio(w, [O, C, k, k]), [k, k, C, O]);
  const Ho = convOut(H, k, stride, pad);
  const Wo = convOut(W, k, stride, pad);
  return tfRunner(tf, tfName(tf, "Conv2D"), () => tf.conv2d(X, F, stride, explicitPad(pad)), (d) => nhwcToNchw(d, [N, O, Ho, Wo]), [X, F]);
}

/** Depthwise: spec { N, C, H, W, k, stride, pad }, w as OIHW [C, 1, k, k]; TF.js's
 *  depthwiseConv2d takes the filter as [k, k, C, 1]. */
export async function tfjsDepthwiseConv(spec, x, w) {
  const tf = await setupTfjs();
  const { N, C, H, W, k, stride, pad } = spec;
  const X = tf.tensor4d(nchwToNhwc(x, [N, C, H, W]), [N, H, W, C]);
  const F = tf.tensor4d(oihwToHwio(w, [C, 1, k, k]), [k, k, C, 1]);
  const Ho = convOut(H, k, stride, pad);
  const Wo = convOut(W, k, stride, pad);
  return tfRunner(tf, tfName(tf, "DepthwiseConv2dNative"), () => tf.depthwiseConv2d(X, F, stride, explicitPad(pad)), (d) => nhwcToNchw(d, [N, C, Ho, Wo]), [X, F]);
}

/** Depthwise as an ONNX Conv with group = C. */
export async function ortDepthwiseConv(threads, spec, x, w) {
  const ort = await setupOrt(threads);
  const { N, C, H, W, k, stride, pad } = spec;
  const { bytes } = convModel({ xShape: [N, C, H, W], w, wShape: [C, 1, k, k], stride, pad, groups: C });
  return ortRunner(ort, `ort-wasm Conv group=C (${threads} thr)`, bytes, { X: [x, [N, C, H, W]] }, "Y");
}

/** dX from dY with TF.js's own Conv2DBackpropInput kernel (through conv2dTranspose). */
export async function tfjsConvInput(spec, w, gy) {
  const tf = await setupTfjs();
  if (!tfjsHasKernel(tf, "Conv2DBackpropInput")) throw new NotAvailable("n/a: the wasm backend has no Conv2DBackpropInput kernel");
  const { N, C, H, W, O, k, stride, pad } = spec;
  const Ho = convOut(H, k, stride, pad);
  const Wo = convOut(W, k, stride, pad);
  const F = tf.tensor4d(oihwToHwio(w, [O, C, k, k]), [k, k, C, O]);
  const G = tf.tensor4d(nchwToNhwc(gy, [N, O, Ho, Wo]), [N, Ho, Wo, O]);
  return tfRunner(
    tf,
    tfName(tf, "Conv2DBackpropInput"),
    () => tf.conv2dTranspose(G, F, [N, H, W, C], stride, explicitPad(pad)),
    (d) => nhwcToNchw(d, [N, C, H, W]),
    [F, G],
  );
}

/** dW with TF.js's Conv2DBackpropFilter kernel, where the backend has one. */
export async function tfjsConvWeight(spec, x, gy) {
  const tf = await setupTfjs();
  if (!tfjsHasKernel(tf, "Conv2DBackpropFilter")) throw new NotAvailable("n/a: the wasm backend has no Conv2DBackpropFilter kernel");
  const { N, C, H, W, O, k, stride, pad } = spec;
  const Ho = convOut(H, k, stride, pad);
  const Wo = convOut(W, k, stride, pad);
  const X = tf.tensor4d(nchwToNhwc(x, [N, C, H, W]), [N, H, W, C]);
  const G = tf.tensor4d(nchwToNhwc(gy, [N, O, Ho, Wo]), [N, Ho, Wo, O]);
  return tfRunner(
    tf,
    tfName(tf, "Conv2DBackpropFilter"),
    () => tf.engine().runKernel("Conv2DBackpropFilter", { x: X, dy: G }, { strides: stride, pad: explicitPad(pad), dataFormat: "NHWC", filterShape: [k, k, C, O] }),
    (d) => hwioToOihw(d, [O, C, k, k]),
    [X, G],
  );
}

/** dW the way a TF.js wasm user has to do it: rewritten as a forward Conv2D (plus transposes). */
export async function tfjsConvWeightAsConv(spec, x, gy) {
  const tf = await setupTfjs();
  const { N, C, H, W, O, k, stride, pad } = spec;
  const Ho = convOut(H, k, stride, pad);
  const Wo = convOut(W, k, stride, pad);
  const X = tf.tensor4d(nchwToNhwc(x, [N, C, H, W]), [N, H, W, C]);
  const G = tf.tensor4d(nchwToNhwc(gy, [N, O, Ho, Wo]), [N, Ho, Wo, O]);
  return tfRunner(
    tf,
    tfName(tf, "dW as Conv2D"),
    () => convFilterGradAsConv(tf, X, G, [k, k, C, O], stride, pad),
    (d) => hwioToOihw(d, [O, C, k, k]),
    [X, G],
  );
}

export async function tfjsMaxPool({ N, C, H, W, k, stride }, x) {
  const tf = await setupTfjs();
  const X = tf.tensor4d(nchwToNhwc(x, [N, C, H, W]), [N, H, W, C]);
  const Ho = convOut(H, k, stride, 0);
  const Wo = convOut(W, k, stride, 0);
  return tfRunner(tf, tfName(tf, "MaxPool"), () => tf.maxPool(X, k, stride, "valid"), (d) => nhwcToNchw(d, [N, C, Ho, Wo]), [X]);
}

// ---------------------------------------------------------------- runners: ONNX Runtime Web

async function ortRunner(ort, name, bytes, feeds, outName) {
  const session = await ortSession(ort, bytes);
  const tensors = Object.fromEntries(Object.entries(feeds).map(([k, [data, dims]]) => [k, new ort.Tensor("float32", data, dims)]));
  return {
    name,
    async run() {
      const r = await session.run(tensors);
      r[outName].dispose?.();
    },
    async result() {
      const r = await session.run(tensors);
      return Float32Array.from(r[outName].data);
    },
    dispose() {
      session.release();
    },
  };
}

/** Both operands fed at run time (a general SGEMM, no weight pre-packing). */
export async function ortMatmul(threads, M, K, N, a, b) {
  const ort = await setupOrt(threads);
  const bytes = onnxModel({
    op: "MatMul",
    inputs: [
      { name: "A", dims: [M, K] },
      { name: "B", dims: [K, N] },
    ],
    outputs: [{ name: "Y", dims: [M, N] }],
  });
  return ortRunner(ort, `ort-wasm MatMul (${threads} thr)`, bytes, { A: [a, [M, K]], B: [b, [K, N]] }, "Y");
}

/** Weights as an initializer, as in a model (ONNX Runtime may pre-pack them). */
export async function ortConv(threads, spec, x, w) {
  const ort = await setupOrt(threads);
  const { N, C, H, W, O, k, stride, pad } = spec;
  const { bytes } = convModel({ xShape: [N, C, H, W], w, wShape: [O, C, k, k], stride, pad });
  return ortRunner(ort, `ort-wasm Conv (${threads} thr)`, bytes, { X: [x, [N, C, H, W]] }, "Y");
}

/** dX as ONNX ConvTranspose of dY with the same weights. */
export async function ortConvInput(threads, spec, w, gy) {
  const ort = await setupOrt(threads);
  const { N, C, H, W, O, k, stride, pad } = spec;
  const gShape = [N, O, convOut(H, k, stride, pad), convOut(W, k, stride, pad)];
  const bytes = convTransposeModel({ gShape, w, wShape: [O, C, k, k], xShape: [N, C, H, W], stride, pad });
  return ortRunner(ort, `ort-wasm ConvTranspose (${threads} thr)`, bytes, { G: [gy, gShape] }, "DX");
}

export async function ortMaxPool(threads, { N, C, H, W, k, stride }, x) {
  const ort = await setupOrt(threads);
  const { bytes } = maxPoolModel({ xShape: [N, C, H, W], k, stride });
  return ortRunner(ort, `ort-wasm MaxPool (${threads} thr)`, bytes, { X: [x, [N, C, H, W]] }, "Y");
}

/** A reference that this runtime cannot provide ("n/a" in the table, not an error). */
export class NotAvailable extends Error {}
