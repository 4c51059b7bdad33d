// The spatial ops of an ONNX graph: Conv, ConvTranspose, MaxPool, AveragePool, Resize and
// Upsample: kernel, strides, dilations and pads (ONNX's [begin..., end...], auto_pad resolved)
// mapped onto the library's conv2d, pools and interpolate.
import { Tensor, conv2d, conv_transpose2d, interpolate, max_pool2d, avg_pool2d } from "../index.js";
import type { OnnxNode } from "./proto_read.js";
import { constantPad, resizeLinearAsymmetricOp } from "./ops.js";
import { attr, bad, int, ints, str, oneOf, type NodeRun, type OpSpec, type Value } from "./node_api.js";

// ---- spatial ops: kernel, strides, pads (ONNX [begin..., end...]) ----

interface Window {
  k: [number, number];
  s: [number, number];
  d: [number, number];
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
}

export function checkRank4(r: NodeRun, x: Tensor) {
  if (x.rank !== 4) bad(r.node, `supports 2-d (NCHW, rank 4) inputs only, got ${x.rank === 0 ? "a scalar" : `[${x.shape.join(", ")}]`}`);
}

/** Kernel, strides, dilations and pads of a Conv or pool node on input x (auto_pad resolved). */
function windowOf(r: NodeRun, x: Tensor, kernel: number[]): Window {
  const n = r.node;
  const two = (v: number[] | null, def: number, what: string): [number, number] => {
    const a = v ?? [def, def];
    if (a.length !== 2) bad(n, `${what} must have 2 values for a 2-d input, got ${JSON.stringify(a)}`);
    return [a[0], a[1]];
  };
  const k = two(kernel, 1, "kernel_shape"), s = two(ints(n, "strides", null), 1, "strides"), d = two(ints(n, "dilations", null), 1, "dilations");
  const autoPad = str(n, "auto_pad", "NOTSET");
  let pads: [number, number, number, number] = [0, 0, 0, 0];
  if (autoPad === "NOTSET") {
    const p = ints(n, "pads", null) ?? [0, 0, 0, 0];
    if (p.length !== 4 || p.some((v) => v < 0)) bad(n, `pads must be 4 values >= 0 [top, left, bottom, right], got ${JSON.stringify(p)}`);
    pads = p as [number, number, number, number];
  } else if (autoPad === "SAME_UPPER" || autoPad === "SAME_LOWER") {
    for (const i of [0, 1]) {
      const size = x.shape[2 + i], out = Math.ceil(size / s[i]);
      const total = Math.max(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - size);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === "SAME_UPPER" ? small : total - small;
      pads[2 + i] = total - pads[i];
    }
  }
  return { k, s, d, pads };
}

const symmetric = (p: number[]) => p[0] === p[2] && p[1] === p[3];

/** x padded with value where the pads are not symmetric (the library's ops pad symmetrically). */
function padAsymmetric(x: Tensor, w: Window, value: number): { x: Tensor; padding: [number, number] } {
  if (symmetric(w.pads)) return { x, padding: [w.pads[0], w.pads[1]] };
  const [t, l, b, rr] = w.pads;
  return { x: constantPad(x, [0, 0, t, l, 0, 0, b, rr], value), padding: [0, 0] };
}

const WINDOW_ATTRS = ["auto_pad", "kernel_shape", "strides", "pads", "dilations"];

export function checkAutoPad(n: OnnxNode) {
  oneOf(n, "auto_pad", str(n, "auto_pad", "NOTSET"), ["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"]);
}

export function resize(r: NodeRun, scales: number[] | null, sizes: number[] | null): Value[] {
  const n = r.node, x = r.tensor(0);
  checkRank4(r, x);
  const mode = str(n, "mode", "nearest");
  const coord = n.opType === "Upsample" ? "asymmetric" : str(n, "coordinate_transformation_mode", "half_pixel");
  let size: [number, number], scale: [number, number] | null = null;
  if (sizes) {
    if (sizes.length !== 4 || sizes[0] !== x.shape[0] || sizes[1] !== x.shape[1]) bad(n, `sizes ${JSON.stringify(sizes)} must keep N and C of the input [${x.shape.join(", ")}]`);
    size = [sizes[2], sizes[3]];
  } else if (scales) {
    if (scales.length !== 4 || scales[0] !== 1 || scales[1] !== 1 || !(scales[2] > 0 && scales[3] > 0)) bad(n, `scales ${JSON.stringify(scales)} must be [1, 1, h, w] (only H and W scale, by positive factors)`);
    scale = [scales[2], scales[3]];
    size = [Math.floor(x.shape[2] * scale[0]), Math.floor(x.shape[3] * scale[1])];
  } else bad(n, "has neither scales nor sizes");
  if (mode === "linear" && coord === "asymmetric") {
    const scales2 = scale ?? [size[0] / x.shape[2], size[1] / x.shape[3]];
    return [resizeLinearAsymmetricOp.apply([x], { size, scales: scales2 })];
  }
  const opts: Record<string, unknown> = { mode: mode === "nearest" ? "nearest" : "bilinear" };
  if (mode === "linear") opts.align_corners = coord === "align_corners";
  // the coordinate rules follow the scale when the file gives one, the sizes otherwise (as ONNX)
  if (scale && coord !== "align_corners") opts.scale_factor = scale;
  else opts.size = size;
  return [interpolate(x, opts as any)];
}

export function checkResize(n: OnnxNode) {
  const mode = str(n, "mode", "nearest");
  oneOf(n, "mode", mode, ["nearest", "linear"]);
  if (n.opType === "Upsample") return;
  const coord = str(n, "coordinate_transformation_mode", "half_pixel");
  if (mode === "nearest") {
    oneOf(n, "coordinate_transformation_mode", coord, ["asymmetric"], " with mode nearest (PyTorch's nearest)");
    oneOf(n, "nearest_mode", str(n, "nearest_mode", "round_prefer_floor"), ["floor"], " with mode nearest");
  } else oneOf(n, "coordinate_transformation_mode", coord, ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"], " with mode linear");
  oneOf(n, "exclude_outside", int(n, "exclude_outside", 0), [0]);
  oneOf(n, "antialias", int(n, "antialias", 0), [0]);
  if (attr(n, "axes")) bad(n, "attribute axes is not supported (scales and sizes must cover all 4 dimensions)");
  oneOf(n, "keep_aspect_ratio_policy", str(n, "keep_aspect_ratio_policy", "stretch"), ["stretch"]);
}

export function pool(kind: "max" | "avg"): OpSpec {
  const extra = kind === "max" ? ["storage_order", "ceil_mode"] : ["count_include_pad", "ceil_mode"];
  return {
    attrs: [...WINDOW_ATTRS, ...extra],
    foldable: false,
    check(n) {
      checkAutoPad(n);
      if (!ints(n, "kernel_shape", null)) bad(n, "has no kernel_shape");
      if (kind === "max") oneOf(n, "storage_order", int(n, "storage_order", 0), [0]);
      if (kind === "avg" && ints(n, "dilations", null)?.some((d) => d !== 1)) bad(n, "dilations other than 1 are not supported for AveragePool");
    },
    run(r) {
      const n = r.node, x = r.tensor(0), kernel = ints(n, "kernel_shape", null)!;
      const ceil_mode = int(n, "ceil_mode", 0) === 1;
      if (kind === "avg" && x.rank === 5) return [avgPoolDepth(r, x, kernel, ceil_mode)];
      checkRank4(r, x);
      const w = windowOf(r, x, kernel);
      if (!symmetric(w.pads)) bad(n, `pads ${JSON.stringify(w.pads)} are not symmetric (top = bottom and left = right), which is not supported for pooling`);
      const padding: [number, number] = [w.pads[0], w.pads[1]];
      if (kind === "max") return [max_pool2d(x, { kernel_size: w.k, stride: w.s, padding, dilation: w.d, ceil_mode })];
      return [avg_pool2d(x, { kernel_size: w.k, stride: w.s, padding, ceil_mode, count_include_pad: int(n, "count_include_pad", 0) === 1 })];
    },
  };
}

/** A 3-d average pool over depth only (kernel [k, 1, 1]): torch's LocalResponseNorm graph pools
 *  the squared channels this way. It is a 2-d pool of [N, C, D, H*W] with kernel [k, 1]. */
function avgPoolDepth(r: NodeRun, x: Tensor, kernel: number[], ceil_mode: boolean): Tensor {
  const n = r.node;
  const s = ints(n, "strides", null) ?? [1, 1, 1], p = ints(n, "pads", null) ?? [0, 0, 0, 0, 0, 0];
  if (str(n, "auto_pad", "NOTSET") !== "NOTSET" || kernel.length !== 3 || kernel[1] !== 1 || kernel[2] !== 1 || s[1] !== 1 || s[2] !== 1 || p.length !== 6 || p[1] || p[2] || p[4] || p[5] || p[0] !== p[3])
    bad(n, `a rank-5 input is supported only for a pool over depth (kernel [k, 1, 1], strides [s, 1, 1], symmetric depth pads), got kernel ${JSON.stringify(kernel)}, strides ${JSON.stringify(s)}, pads ${JSON.stringify(p)}`);
  const [N, C, D, H, W] = x.shape;
  const y = avg_pool2d(x.reshape([N, C, D, H * W]), { kernel_size: [kernel[0], 1], stride: [s[0], 1], padding: [p[0], 0], ceil_mode, count_include_pad: int(n, "count_include_pad", 0) === 1 });
  return y.reshape([N, C, y.shape[2], H, W]);
}

export function conv(transposed: boolean): OpSpec {
  return {
    attrs: [...WINDOW_ATTRS, "group", ...(transposed ? ["output_padding", "output_shape"] : [])],
    foldable: false,
    check(n) {
      checkAutoPad(n);
      if (transposed && attr(n, "output_shape")) bad(n, "attribute output_shape is not supported (give pads and output_padding)");
      if (transposed && str(n, "auto_pad", "NOTSET") !== "NOTSET") bad(n, `auto_pad ${str(n, "auto_pad", "")} is not supported for ConvTranspose (give pads)`);
    },
    run(r) {
      const n = r.node, x = r.tensor(0), w = r.tensor(1), b = r.has(2) ? r.tensor(2) : null;
      checkRank4(r, x);
      if (w.rank !== 4) bad(n, `weight must be rank 4, got [${w.shape.join(", ")}]`);
      const kernel = ints(n, "kernel_shape", null) ?? [w.shape[2], w.shape[3]];
      if (kernel[0] !== w.shape[2] || kernel[1] !== w.shape[3]) bad(n, `kernel_shape ${JSON.stringify(kernel)} does not match the weight [${w.shape.join(", ")}]`);
      const win = windowOf(r, x, kernel);
      const groups = int(n, "group", 1);
      if (transposed) {
        if (!symmetric(win.pads)) bad(n, `pads ${JSON.stringify(win.pads)} are not symmetric, which is not supported for ConvTranspose`);
        const op = ints(n, "output_padding", null) ?? [0, 0];
        return [conv_transpose2d(x, w, b, { stride: win.s, padding: [win.pads[0], win.pads[1]], dilation: win.d, groups, output_padding: op })];
      }
      const p = padAsymmetric(x, win, 0);
      return [conv2d(p.x, w, b, { stride: win.s, padding: p.padding, dilation: win.d, groups })];
    },
  };
}

