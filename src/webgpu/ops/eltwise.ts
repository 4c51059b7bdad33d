// WebGPU kernels of the element-wise ops (wgsl/eltwise.wgsl), attached to their op-table entries
// in src/ops/eltwise.ts. Offsets are passed in elements (byte pointer / 4).
import code from "../../../wgsl/eltwise.wgsl";
import { empty, _setGpuFill, type Tensor } from "../../tensor.js";
import { addOp, reluOp, reshapeOpDef, _setGpuEltwise } from "../../ops/eltwise.js";
import { wgslFile, f32bits, type GpuEngine } from "../engine.js";

export const K = wgslFile("eltwise.wgsl", code, ["fill", "copy", "acc", "add", "relu_fwd", "relu_bwd", "scale"] as const);

const e = (t: Tensor) => t.ptr >>> 2;
const gpuOf = (t: Tensor) => t.engine as any as GpuEngine;
const groups = (n: number) => Math.ceil(n / 256);

export function gpuClone(t: Tensor): Tensor {
  const y = empty(t.shape, t.engine);
  gpuOf(t).dispatch(K.copy, [e(t), e(y), t.size], groups(t.size));
  return y;
}

export function gpuScale(x: Tensor, a: number): Tensor {
  const y = empty(x.shape, x.engine);
  gpuOf(x).dispatch(K.scale, [e(x), e(y), x.size, f32bits(a)], groups(x.size));
  return y;
}

_setGpuFill((g, ptr, n, v) => g.dispatch(K.fill, [ptr >>> 2, n, f32bits(v)], groups(n)));
_setGpuEltwise({
  acc: (into, g) => gpuOf(into).dispatch(K.acc, [e(g), e(into), into.size], groups(into.size)),
  clone: gpuClone,
});

addOp.webgpu = {
  forward(ctx, [a, b]) {
    const y = empty(a!.shape, ctx.engine);
    ctx.gpu!.dispatch(K.add, [e(a!), e(b!), e(y), y.size], groups(y.size));
    return y;
  },
  backward(_ctx, g, _in, _a, needs) {
    return [needs[0] ? gpuClone(g) : null, needs[1] ? gpuClone(g) : null];
  },
};

reluOp.webgpu = {
  forward(ctx, [x]) {
    const y = empty(x!.shape, ctx.engine);
    ctx.gpu!.dispatch(K.relu_fwd, [e(x!), e(y), y.size], groups(y.size));
    return y;
  },
  backward(ctx, g, [x]) {
    const dx = empty(x!.shape, ctx.engine);
    ctx.gpu!.dispatch(K.relu_bwd, [e(x!), e(g), e(dx), dx.size], groups(dx.size));
    return [dx];
  },
};

// a view: the same code on either device (no kernel)
reshapeOpDef.webgpu = { forward: reshapeOpDef.forward, backward: reshapeOpDef.backward };
