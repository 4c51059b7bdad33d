// Warm-up run by init(): V8 first runs a wasm function unoptimised and tiers it up once it is
// hot, so the first real GEMM or convolution was about twice as slow as the next ones. A few
// small calls on every thread at start (tens of milliseconds) move that cost out of the first step.
import { _setWarmUp } from "../engine/engine.js";
import { tidy, full } from "../tensor.js";
import { matmul } from "./linalg.js";
import { conv2d } from "./conv.js";

_setWarmUp((eng) => {
  tidy(() => {
    const a = full([96, 96], 0.5, eng);
    const x = full([2, 8, 12, 12], 0.5, eng).requireGrad();
    const w = full([8, 8, 3, 3], 0.1, eng).requireGrad();
    const g = full([2, 8, 12, 12], 1, eng);
    for (let i = 0; i < 12; i++) {
      matmul(a, a);
      conv2d(x, w, null, { padding: 1 }).backward(g);
    }
  });
});
