// RMSprop (optionally centered, with momentum and weight decay), as torch.optim.RMSprop (1.13).
import type { Tensor } from "../tensor.js";
import { gpuOptimStep } from "../webgpu/optim.js";
import { Optimizer, type ParamGroup, type ParamState, type ParamsArg, show } from "./optimizer.js";

export interface RMSpropOptions {
  lr: number;
  alpha: number;
  eps: number;
  weight_decay: number;
  momentum: number;
  centered: boolean;
}

export class RMSprop extends Optimizer<RMSpropOptions> {
  constructor(params: ParamsArg<RMSpropOptions>, opts: Partial<RMSpropOptions> = {}) {
    super("RMSprop", params, { lr: 0.01, alpha: 0.99, eps: 1e-8, weight_decay: 0, momentum: 0, centered: false }, opts);
  }

  protected validate(o: RMSpropOptions, where = ""): void {
    for (const k of ["lr", "alpha", "eps", "weight_decay", "momentum"]) this.checkNonNeg(o as any, k, where);
    if (typeof o.centered !== "boolean") this.fail(`${where}centered must be true or false, got ${show(o.centered)}`);
  }

  protected bufferNames(o: ParamGroup<RMSpropOptions>): string[] {
    return ["square_avg", ...(o.momentum > 0 ? ["momentum_buffer"] : []), ...(o.centered ? ["grad_avg"] : [])];
  }

  protected update(p: Tensor, g: Tensor, o: ParamGroup<RMSpropOptions>, st: ParamState): void {
    // state starts at zero (created on first use, also after loading a state dict without it)
    for (const k of this.bufferNames(o)) st.buffers[k] ??= this.buffer(p);
    st.step++;
    const b = st.buffers;
    if (p.device === "webgpu")
      return gpuOptimStep("rmsprop", p, g, [b.square_avg, b.grad_avg, b.momentum_buffer], [-o.lr, o.alpha, 1 - o.alpha, o.eps, o.weight_decay, o.momentum], [o.centered ? 1 : 0]);
    p.engine.run(
      "f32_rmsprop_step",
      [p.ptr, g.ptr, b.square_avg.ptr, b.grad_avg?.ptr ?? 0, b.momentum_buffer?.ptr ?? 0, p.size, -o.lr, o.alpha, 1 - o.alpha, o.eps, o.weight_decay, o.momentum, o.centered ? 1 : 0],
      p.size,
    );
  }
}
