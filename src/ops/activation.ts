// Activation ops (kernels in assembly/activation.ts): leaky_relu, sigmoid, tanh, softmax,
// log_softmax. The sigmoid and tanh derivatives are computed from the input, not from the
// rounded output, so they stay accurate where the function saturates.
import { Tensor, shapeStr, empty } from "../tensor.js";
import { defineOp, fail } from "./table.js";
import { describe } from "../options.js";

export const leakyReluOp = defineOp<{ negative_slope: number }>(
  {
    name: "leaky_relu",
    inputs: ["input"],
    check(_in, a) {
      if (typeof a.negative_slope !== "number" || !Number.isFinite(a.negative_slope))
        fail("leaky_relu", `negative_slope must be a finite number, got ${describe(a.negative_slope)}`);
    },
    forward(ctx, [x], a) {
      const y = empty(x!.shape, ctx.engine);
      ctx.engine.run("f32_leaky_relu_fwd", [x!.ptr, y.ptr, y.size, a.negative_slope], y.size);
      return y;
    },
    backward(ctx, g, [x], a) {
      const dx = empty(x!.shape, ctx.engine);
      ctx.engine.run("f32_leaky_relu_bwd", [x!.ptr, g.ptr, dx.ptr, dx.size, a.negative_slope], dx.size);
      return [dx];
    },
  },
  { negative_slope: 0.01 },
);

export function leaky_relu(x: Tensor, negative_slope = 0.01): Tensor {
  return leakyReluOp.apply([x], { negative_slope });
}

/** An element-wise op whose kernels are f32_<name>_fwd(x, y, n) and f32_<name>_bwd(x, dy, dx, n);
 *  exp costs about 20 flops an element, hence the work estimate. */
function unaryFromInput(name: string) {
  return defineOp<{}>({
    name,
    inputs: ["input"],
    forward(ctx, [x]) {
      const y = empty(x!.shape, ctx.engine);
      ctx.engine.run(`f32_${name}_fwd`, [x!.ptr, y.ptr, y.size], y.size * 20);
      return y;
    },
    backward(ctx, g, [x]) {
      const dx = empty(x!.shape, ctx.engine);
      ctx.engine.run(`f32_${name}_bwd`, [x!.ptr, g.ptr, dx.ptr, dx.size], dx.size * 20);
      return [dx];
    },
  });
}

export const sigmoidOp = unaryFromInput("sigmoid");
export const tanhOp = unaryFromInput("tanh");

export function sigmoid(x: Tensor): Tensor {
  return sigmoidOp.apply([x]);
}

export function tanh(x: Tensor): Tensor {
  return tanhOp.apply([x]);
}

/** [outer, D, inner] view of x around dim (negative dims count from the end). */
function splitAt(op: string, x: Tensor, dim: unknown): { outer: number; D: number; inner: number } {
  const r = x.rank;
  if (r === 0) fail(op, `input must have at least one dimension, got a scalar ${shapeStr(x.shape)}`);
  if (typeof dim !== "number" || !Number.isInteger(dim) || dim < -r || dim >= r)
    fail(op, `dim must be an integer in [${-r}, ${r - 1}] for input ${shapeStr(x.shape)}, got ${describe(dim)}`);
  const d = dim < 0 ? dim + r : dim;
  const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  return { outer: prod(x.shape.slice(0, d)), D: x.shape[d], inner: prod(x.shape.slice(d + 1)) };
}

function defineSoftmax(name: string, log: number) {
  return defineOp<{ dim: number }>(
    {
      name,
      inputs: ["input"],
      check([x], a) {
        splitAt(name, x!, a.dim);
      },
      forward(ctx, [x], a) {
        const { outer, D, inner } = splitAt(name, x!, a.dim);
        const y = empty(x!.shape, ctx.engine);
        if (inner === 1) ctx.engine.run("f32_softmax_fwd", [x!.ptr, y.ptr, outer, D, log], y.size * 25);
        else ctx.engine.run("f32_softmax_fwd_inner", [x!.ptr, y.ptr, outer, D, inner, log], y.size * 25);
        return y;
      },
      // from the output y: softmax dx = y (dy - sum(dy y)); log_softmax dx = dy - exp(y) sum(dy)
      backward(ctx, g, [x], a) {
        const { outer, D, inner } = splitAt(name, x!, a.dim);
        const dx = empty(x!.shape, ctx.engine);
        const y = ctx.out;
        if (inner === 1) ctx.engine.run("f32_softmax_bwd", [y.ptr, g.ptr, dx.ptr, outer, D, log], dx.size * 25);
        else ctx.engine.run("f32_softmax_bwd_inner", [y.ptr, g.ptr, dx.ptr, outer, D, inner, log], dx.size * 25);
        return [dx];
      },
    },
    { dim: 1 },
  );
}

export const softmaxOp = defineSoftmax("softmax", 0);
export const logSoftmaxOp = defineSoftmax("log_softmax", 1);

export function softmax(x: Tensor, dim = 1): Tensor {
  return softmaxOp.apply([x], { dim });
}

export function log_softmax(x: Tensor, dim = 1): Tensor {
  return logSoftmaxOp.apply([x], { dim });
}
