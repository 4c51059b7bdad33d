// SGD with momentum, dampening, Nesterov and weight decay, as torch.optim.SGD (1.13).
import type { Tensor } from "../tensor.js";
import { gpuOptimStep } from "../webgpu/optim.js";
import { Optimizer, type ParamGroup, type ParamState, type ParamsArg, show } from "./optimizer.js";

export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weight_decay: number;
}

export class SGD extends Optimizer<SGDOptions> {
  constructor(params: ParamsArg<SGDOptions>, opts: Partial<SGDOptions> & { lr: number }) {
    super("SGD", params, { lr: undefined as unknown as number, momentum: 0, dampening: 0, nesterov: false, weight_decay: 0 }, opts);
    this.hasStep = false;
  }

  protected validate(o: SGDOptions, where = ""): void {
    if (o.lr === undefined) this.fail(`${where}lr is required`);
    this.checkNonNeg(o as any, "lr", where);
    this.checkNonNeg(o as any, "momentum", where);
    this.checkNonNeg(o as any, "weight_decay", where);
    if (typeof o.dampening !== "number" || !Number.isFinite(o.dampening)) this.fail(`${where}invalid dampening ${show(o.dampening)}: must be a finite number`);
    if (typeof o.nesterov !== "boolean") this.fail(`${where}nesterov must be true or false, got ${show(o.nesterov)}`);
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) this.fail(`${where}Nesterov momentum requires a momentum and zero dampening (momentum ${o.momentum}, dampening ${o.dampening})`);
  }

  protected bufferNames(): string[] {
    return ["momentum_buffer"];
  }

  protected update(p: Tensor, g: Tensor, o: ParamGroup<SGDOptions>, st: ParamState): void {
    st.step++;
    let buf = st.buffers.momentum_buffer;
    // torch starts the momentum buffer as a copy of the first (decayed) gradient, undampened
    const first = !buf;
    if (o.momentum !== 0 && !buf) buf = st.buffers.momentum_buffer = this.buffer(p);
    if (p.device === "webgpu")
      return gpuOptimStep("sgd", p, g, [o.momentum !== 0 ? buf : null], [-o.lr, o.momentum, 1 - o.dampening, o.weight_decay], [o.nesterov ? 1 : 0, first ? 1 : 0]);
    p.engine.run(
      "f32_sgd_step",
      [p.ptr, g.ptr, o.momentum !== 0 ? buf.ptr : 0, p.size, -o.lr, o.momentum, 1 - o.dampening, o.weight_decay, o.nesterov ? 1 : 0, first ? 1 : 0],
      p.size,
    );
  }
}
