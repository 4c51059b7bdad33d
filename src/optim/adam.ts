// Adam (optionally AMSGrad) and AdamW (decoupled weight decay), as torch.optim (1.13).
import type { Tensor } from "../tensor.js";
import { gpuOptimStep } from "../webgpu/optim.js";
import { Optimizer, type ParamGroup, type ParamState, type ParamsArg, show } from "./optimizer.js";

export interface AdamOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weight_decay: number;
  amsgrad: boolean;
}

abstract class AdamBase extends Optimizer<AdamOptions> {
  /** AdamW decays the parameter itself; Adam adds weight_decay·p to the gradient */
  protected abstract decoupled: boolean;

  protected validate(o: AdamOptions, where = ""): void {
    this.checkNonNeg(o as any, "lr", where);
    this.checkNonNeg(o as any, "eps", where);
    this.checkNonNeg(o as any, "weight_decay", where);
    const b = o.betas;
    if (!Array.isArray(b) || b.length !== 2) this.fail(`${where}betas must be a pair [beta1, beta2], got ${show(b)}`);
    b.forEach((v, i) => {
      if (typeof v !== "number" || !(v >= 0 && v < 1)) this.fail(`${where}invalid beta parameter at index ${i}: ${show(v)} (must be in [0, 1))`);
    });
    if (typeof o.amsgrad !== "boolean") this.fail(`${where}amsgrad must be true or false, got ${show(o.amsgrad)}`);
  }

  protected bufferNames(o: ParamGroup<AdamOptions>): string[] {
    return ["exp_avg", "exp_avg_sq", ...(o.amsgrad ? ["max_exp_avg_sq"] : [])];
  }

  protected update(p: Tensor, g: Tensor, o: ParamGroup<AdamOptions>, st: ParamState): void {
    for (const k of this.bufferNames(o)) st.buffers[k] ??= this.buffer(p);
    const t = ++st.step;
    const [b1, b2] = o.betas;
    // in double, as torch computes them in Python
    const stepSize = o.lr / (1 - b1 ** t);
    const bc2Sqrt = Math.sqrt(1 - b2 ** t);
    const wd = this.decoupled ? 0 : o.weight_decay;
    const decay = this.decoupled ? 1 - o.lr * o.weight_decay : 1;
    const b = st.buffers;
    if (p.device === "webgpu")
      return gpuOptimStep("adam", p, g, [b.exp_avg, b.exp_avg_sq, b.max_exp_avg_sq], [b1, 1 - b1, b2, 1 - b2, o.eps, wd, decay, -stepSize, bc2Sqrt], [o.amsgrad ? 1 : 0]);
    p.engine.run(
      "f32_adam_step",
      [p.ptr, g.ptr, b.exp_avg.ptr, b.exp_avg_sq.ptr, b.max_exp_avg_sq?.ptr ?? 0, p.size, b1, 1 - b1, b2, 1 - b2, o.eps, wd, decay, -stepSize, bc2Sqrt, o.amsgrad ? 1 : 0],
      p.size,
    );
  }
}

export class Adam extends AdamBase {
  protected decoupled = false;
  constructor(params: ParamsArg<AdamOptions>, opts: Partial<AdamOptions> = {}) {
    super("Adam", params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0, amsgrad: false }, opts);
  }
}

export class AdamW extends AdamBase {
  protected decoupled = true;
  constructor(params: ParamsArg<AdamOptions>, opts: Partial<AdamOptions> = {}) {
    super("AdamW", params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 1e-2, amsgrad: false }, opts);
  }
}
