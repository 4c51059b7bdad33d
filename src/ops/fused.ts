// conv2d_fused: convolution, bias, batch norm in eval mode (a scale and a shift per output
// channel), residual add and ReLU in one op, for inference:
//   y = relu?((conv(x, w) + bias) * scale + shift + residual)
// The convolution kernels apply everything after the bias to each output block as soon as its
// values are final, while it is in cache (assembly/conv_epilogue.ts): one pass over the output
// instead of four (conv, batch_norm, add, relu). The result has the same bits as those four ops
// in a row, on every conv path (im2col, Winograd, depthwise, 1x1) and thread count: the epilogue
// does batch norm's eval multiply and add (f32_batchnorm_fwd's), f32_add's add and f32_relu_fwd's max, in that order.
// src/nn/fusion.ts calls it for Conv2d -> BatchNorm2d (eval) (-> + shortcut) (-> ReLU) chains.
import { Tensor, shapeStr, empty, full, type Shape } from "../tensor.js";
import { defineOp, fail, sameShape, type OpContext, type OpEntry } from "./table.js";
import { conv2dGeometry, convForward, conv2dOp, type Conv2dAttrs } from "./conv.js";
import { reluOp, clone } from "./eltwise.js";
import { batchNormOp } from "./norm.js";
import { describe } from "../options.js";
import { notePath } from "../profile.js";

export interface Conv2dFusedAttrs extends Conv2dAttrs {
  /** max(y, 0) at the end */
  relu: boolean;
}

const OP = "conv2d_fused";

/** Checks every input against the convolution's output [N, O, HO, WO]; returns the geometry. */
function geometry(x: Tensor, w: Tensor, b: Tensor | null, s: Tensor | null, t: Tensor | null, r: Tensor | null, a: Conv2dFusedAttrs) {
  const g = conv2dGeometry(OP, x.shape, w.shape, a);
  const perChannel: [string, Tensor | null][] = [["bias", b], ["scale", s], ["shift", t]];
  for (const [what, v] of perChannel)
    if (v && (v.rank !== 1 || v.shape[0] !== g.O))
      fail(OP, `${what} ${shapeStr(v.shape)} must be [${g.O}] (one per output channel; weight ${shapeStr(w.shape)})`);
  const outShape: Shape = [g.N, g.O, g.HO, g.WO];
  if (r && !sameShape(r.shape, outShape))
    fail(OP, `residual ${shapeStr(r.shape)} must have the output's shape ${shapeStr(outShape)} (input ${shapeStr(x.shape)}, weight ${shapeStr(w.shape)})`);
  if (typeof a.relu !== "boolean") fail(OP, `relu must be true or false, got ${describe(a.relu)}`);
  return g;
}

/**
 * The backward, on either device: the unfused ops' own backward kernels, last op first, so that
 * it is exactly their gradient (the CPU's or, on GPU tensors, the WebGPU ones):
 *   relu       gz = g where y > 0 (y > 0 exactly where relu's argument is)
 *   residual   gz
 *   scale      Σ gz·c per channel, c = conv + bias (recomputed: the forward never held it),
 *   shift      Σ gz per channel: batch_norm's parameter gradients with mean 0 and invstd 1
 *   into conv  gc = gz·scale: batch_norm's eval input gradient with invstd = scale
 *   bias, input, weight: conv2d's backward of gc.
 */
function fusedBackward(ctx: OpContext, gy: Tensor, [x, w, b, s, t, r]: (Tensor | null)[], a: Conv2dFusedAttrs, needs: boolean[]): (Tensor | null)[] {
  const eng = ctx.engine as any;
  const k = <A>(op: OpEntry<A>) => (ctx.gpu ? op.webgpu! : op); // this device's kernels
  const { relu, ...convAttrs } = a;
  const O = w!.shape[0];
  const temps: Tensor[] = [];
  const temp = (v: Tensor) => (temps.push(v), v);
  const bnAttrs = { training: false, momentum: 0.1, eps: 0 };
  const asBn = (mean: Tensor, invstd: Tensor): OpContext => ({ ...ctx, saved: { mean, invstd } });
  try {
    const gz = relu ? temp(k(reluOp).backward!(ctx, gy, [ctx.out], {}, [true])[0]!) : gy;
    const dr = needs[5] && r ? clone(gz) : null;
    let ds: Tensor | null = null, dt: Tensor | null = null;
    const wantS = needs[3] && !!s, wantT = needs[4] && !!t;
    if (wantS || wantT) {
      // only the scale's gradient reads c (the shift's reads gz alone: c = gz stands in)
      const c = wantS ? temp(k(conv2dOp).forward(ctx, [x, w, b], convAttrs)) : gz;
      const zero = temp(full([O], 0, eng)), one = temp(full([O], 1, eng));
      const [, , , dsc, dsh] = k(batchNormOp).backward!(asBn(zero, one), gz, [c, null, null, null, null], bnAttrs, [false, false, false, true, true]);
      if (wantS) ds = dsc;
      else temp(dsc!);
      if (wantT) dt = dsh;
      else temp(dsh!);
    }
    let gc = gz;
    if (s && (needs[0] || needs[1] || needs[2])) {
      // batch_norm's input gradient in eval mode (no weight): gz · invstd, with invstd = scale
      // (its x - mean, read and multiplied by 0, is gz - 0)
      const zero = temp(full([O], 0, eng));
      gc = temp(k(batchNormOp).backward!(asBn(zero, s), gz, [gz, null, null, null, null], bnAttrs, [true, false, false, false, false])[0]!);
    }
    const [dx, dw, db] = needs[0] || needs[1] || needs[2] ? k(conv2dOp).backward!(ctx, gc, [x, w, b], convAttrs, needs.slice(0, 3)) : [null, null, null];
    return [dx, dw, db, ds, dt, dr];
  } finally {
    for (const v of temps) v.dispose();
  }
}

export const conv2dFusedOp = defineOp<Conv2dFusedAttrs>(
  {
    name: OP,
    inputs: ["input", "weight", "bias?", "scale?", "shift?", "residual?"],
    check([x, w, b, s, t, r], a) {
      geometry(x!, w!, b, s, t, r, a);
    },
    forward(ctx, [x, w, b, s, t, r], a) {
      const eng = ctx.engine;
      const g = conv2dGeometry(OP, x!.shape, w!.shape, a);
      const y = empty([g.N, g.O, g.HO, g.WO], eng);
      const any = !!(s || t || r || a.relu);
      // the epilogue's 4 words (assembly/conv_epilogue.ts): scale, shift, residual, relu
      const ep = any ? eng.alloc(16, "conv2d_fused epilogue") : 0;
      try {
        if (ep) new Int32Array(eng.memory.buffer, ep, 4).set([s ? s.ptr : 0, t ? t.ptr : 0, r ? r.ptr : 0, a.relu ? 1 : 0]);
        const path = convForward(eng, g, x!.ptr, w!, b ? b.ptr : 0, y.ptr, ep);
        notePath(`fused ${path}`);
      } finally {
        if (ep) eng.release(ep);
      }
      return y;
    },
    backward: fusedBackward,
  },
  { stride: 1, padding: 0, dilation: 1, groups: 1, relu: false },
);

/** y = relu?((conv2d(x, w) + bias) * scale + shift + residual): scale and shift per output
 *  channel (batch norm in eval mode: scale = gamma / sqrt(var + eps), shift = beta - mean *
 *  scale), residual shaped like the output; each optional. The same bits as conv2d, batch_norm
 *  (eval), add and relu in a row. */
export function conv2d_fused(
  x: Tensor, w: Tensor, bias?: Tensor | null, scale?: Tensor | null, shift?: Tensor | null, residual?: Tensor | null,
  opts: Partial<Conv2dFusedAttrs> = {},
): Tensor {
  return conv2dFusedOp.apply([x, w, bias ?? null, scale ?? null, shift ?? null, residual ?? null], opts);
}
