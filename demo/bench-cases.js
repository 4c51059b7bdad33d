// The benchmark tab's cases (shapes in NCHW / OIHW) and how one is timed; shared by the simdnet
// and TF.js workers so both are measured the same way.

const conv = (name, N, C, H, W, O, k, pad, kind = "conv2d") => {
  const Ho = H + 2 * pad - k + 1, Wo = W + 2 * pad - k + 1;
  const flops = 2 * N * O * Ho * Wo * C * k * k * (kind === "conv2d-backward" ? 2 : 1);
  return { name, kind, N, C, H, W, O, k, pad, flops };
};

export const CASES = [
  { name: "matmul 512×512×512", kind: "matmul", M: 512, N: 512, K: 512, flops: 2 * 512 ** 3 },
  conv("conv2d LeNet conv1: 64×1×28×28, 20@5×5", 64, 1, 28, 28, 20, 5, 2),
  conv("conv2d LeNet conv2: 64×20×14×14, 50@5×5", 64, 20, 14, 14, 50, 5, 2),
  conv("conv2d 3×3: 8×64×56×56, 64@3×3", 8, 64, 56, 56, 64, 3, 1),
  conv("conv2d LeNet conv2 backward (input + weight gradients)", 64, 20, 14, 14, 50, 5, 2, "conv2d-backward"),
  { name: "LeNet training step, batch 64", kind: "lenet-step", N: 64, images: 64 },
];

/** Median ms per call: warm up (V8 swaps in optimised wasm after a few calls), then 5 samples
 *  of back-to-back calls lasting at least 40 ms each. */
export async function timeIt(run, { warmupMs = 200, samples = 5, sampleMs = 40 } = {}) {
  const now = () => performance.now();
  let t0 = now();
  for (let i = 0; i < 2 || now() - t0 < warmupMs; i++) await run();
  const per = [];
  for (let s = 0; s < samples; s++) {
    let n = 0;
    t0 = now();
    do {
      await run();
      n++;
    } while (now() - t0 < sampleMs);
    per.push((now() - t0) / n);
  }
  per.sort((a, b) => a - b);
  return per[samples >> 1];
}
