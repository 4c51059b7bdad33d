// Element-wise ops (kernels in assembly/eltwise.ts).
import { Tensor, shapeStr, empty, sizeOf } from "../tensor.js";
import { _setAccumulate } from "../autograd.js";
import { defineOp, fail, sameShape } from "./table.js";
import { _setReshape } from "../tensor.js";
import { describe, badArgument } from "../options.js";

/** The GPU twins of accumulateInto and clone (set by src/webgpu/ops/eltwise.ts). */
let gpuEltwise: { acc: (into: Tensor, g: Tensor) => void; clone: (t: Tensor) => Tensor } | null = null;
export function _setGpuEltwise(f: typeof gpuEltwise) {
  gpuEltwise = f;
}

/** into += g (same number of elements) */
export function accumulateInto(into: Tensor, g: Tensor): void {
  if (into.size !== g.size) throw new Error(`accumulate: ${shapeStr(g.shape)} into ${shapeStr(into.shape)}`);
  if (into.device !== g.device) throw new Error(`accumulate: ${shapeStr(g.shape)} on ${g.device} into ${shapeStr(into.shape)} on ${into.device}`);
  into.markWritten();
  if (into.device === "webgpu") return gpuEltwise!.acc(into, g);
  into.engine.run("f32_acc", [g.ptr, into.ptr, into.size], into.size);
}

export function clone(t: Tensor): Tensor {
  if (!(t instanceof Tensor)) badArgument("clone", "input", "a tensor", t);
  if (t.device === "webgpu") return gpuEltwise!.clone(t);
  const y = empty(t.shape, t.engine);
  t.engine.run("f32_copy", [t.ptr, y.ptr, t.size], t.size);
  return y;
}

_setAccumulate(accumulateInto, clone);

export const addOp = defineOp<{}>({
  name: "add",
  inputs: ["input", "other"],
  check([a, b]) {
    if (!sameShape(a!.shape, b!.shape)) fail("add", `shapes differ: ${shapeStr(a!.shape)} and ${shapeStr(b!.shape)}`);
  },
  forward(ctx, [a, b]) {
    const y = empty(a!.shape, ctx.engine);
    ctx.engine.run("f32_add", [a!.ptr, b!.ptr, y.ptr, y.size], y.size);
    return y;
  },
  backward(ctx, g, _in, _a, needs) {
    return [needs[0] ? clone(g) : null, needs[1] ? clone(g) : null];
  },
});

/** Element-wise sum of two tensors of the same shape (residual shortcuts). */
export function add(a: Tensor, b: Tensor): Tensor {
  return addOp.apply([a, b]);
}

export const reluOp = defineOp<{}>({
  name: "relu",
  inputs: ["input"],
  forward(ctx, [x]) {
    const y = empty(x!.shape, ctx.engine);
    ctx.engine.run("f32_relu_fwd", [x!.ptr, y.ptr, y.size], y.size);
    return y;
  },
  backward(ctx, g, [x]) {
    const dx = empty(x!.shape, ctx.engine);
    ctx.engine.run("f32_relu_bwd", [x!.ptr, g.ptr, dx.ptr, dx.size], dx.size);
    return [dx];
  },
});

export function relu(x: Tensor): Tensor {
  return reluOp.apply([x]);
}

export const reshapeOpDef = defineOp<{ shape: number[] }>({
  name: "reshape",
  inputs: ["input"],
  // the view must cover exactly the input's elements, or it would read memory that is not its own
  check([x], { shape }) {
    if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0) || sizeOf(shape) !== x!.size)
      fail("reshape", `cannot view ${shapeStr(x!.shape)} (${x!.size} elements) as ${describe(shape)}`);
  },
  forward(_ctx, [x], { shape }) {
    return new Tensor(x!.storage, shape, x!.offset);
  },
  backward(_ctx, g, [x]) {
    return [new Tensor(g.storage, x!.shape, g.offset)];
  },
}, { shape: undefined });
_setReshape((t, shape) => reshapeOpDef.apply([t], { shape }));

/** Flatten dims from `startDim` on (PyTorch's default start 1 keeps the batch). */
export function flatten(x: Tensor, startDim = 1): Tensor {
  if (!(x instanceof Tensor)) badArgument("flatten", "input", "a tensor", x);
  if (!Number.isInteger(startDim) || startDim < 0 || startDim >= Math.max(1, x.rank))
    fail("flatten", `startDim ${startDim} out of range for ${shapeStr(x.shape)}`);
  // PyTorch's flatten(x, start_dim, end_dim) stops at end_dim: only the last is supported here,
  // so any other is refused rather than flattened to the end
  if (arguments.length > 2 && arguments[2] !== -1 && arguments[2] !== x.rank - 1)
    fail("flatten", `flattens from startDim to the last dimension; endDim ${describe(arguments[2])} (not the last of ${shapeStr(x.shape)}) is not supported`);
  const keepDims = x.shape.slice(0, startDim);
  const rest = x.shape.slice(startDim).reduce((a, b) => a * b, 1);
  return x.reshape([...keepDims, rest]);
}
