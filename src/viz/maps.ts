// Visualising what a CNN learned (the lecture on visualisation): first-layer filters,
// activation maps, saliency maps (Simonyan et al. 2014: gradient of the class score with
// respect to the input), occlusion sensitivity (Zeiler & Fergus 2014: slide a grey patch, record
// the drop of the class score), and class-model images by gradient ascent on the input.
import { Tensor, tensor, tidy, shapeStr } from "../tensor.js";
import { noGrad } from "../autograd.js";
import type { Image } from "./png.js";
import { checkOptions, badArgument } from "../options.js";

export type Forward = (x: Tensor) => Tensor;

/** Grey level in [0, 1] -> RGBA (grey) or heat colours (black-red-yellow-white). */
function colour(v: number, heat: boolean, out: Uint8ClampedArray, p: number) {
  v = Math.min(1, Math.max(0, v));
  if (!heat) out[p] = out[p + 1] = out[p + 2] = v * 255;
  else {
    out[p] = Math.min(1, v * 3) * 255;
    out[p + 1] = Math.min(1, Math.max(0, v * 3 - 1)) * 255;
    out[p + 2] = Math.min(1, Math.max(0, v * 3 - 2)) * 255;
  }
  out[p + 3] = 255;
}

/** Tiles of size h x w (values scaled to [0, 1] per tile) laid out in a grid, `scale`x enlarged. */
export function tileGrid(tiles: Float32Array[], h: number, w: number, opts: { cols?: number; scale?: number; heat?: boolean; pad?: number; rgb?: boolean } = {}): Image {
  if (!Array.isArray(tiles) || !tiles.every((t) => t instanceof Float32Array && t.length >= h * w) || !Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1)
    badArgument("tileGrid", "(tiles, h, w)", "Float32Arrays of h x w values each and the sizes h, w", [tiles, h, w]);
  checkOptions("tileGrid", opts, ["cols", "scale", "heat", "pad", "rgb"]);
  const n = tiles.length;
  const cols = opts.cols ?? Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const s = opts.scale ?? 4, pad = opts.pad ?? 1;
  const W = cols * (w * s + pad) + pad, H = rows * (h * s + pad) + pad;
  const data = new Uint8ClampedArray(W * H * 4);
  for (let i = 3; i < data.length; i += 4) data[i] = 255;
  const planes = opts.rgb ? 3 : 1;
  tiles.forEach((t, k) => {
    let lo = Infinity, hi = -Infinity;
    for (const v of t) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const range = hi - lo || 1;
    const ox = pad + (k % cols) * (w * s + pad), oy = pad + Math.floor(k / cols) * (h * s + pad);
    for (let y = 0; y < h * s; y++)
      for (let x = 0; x < w * s; x++) {
        const p = ((oy + y) * W + ox + x) * 4;
        const i = Math.floor(y / s) * w + Math.floor(x / s);
        if (planes === 3) {
          for (let c = 0; c < 3; c++) data[p + c] = ((t[c * h * w + i] - lo) / range) * 255;
          data[p + 3] = 255;
        } else colour((t[i] - lo) / range, !!opts.heat, data, p);
      }
  });
  return { width: W, height: H, data };
}

/** First-layer filters [O, C, kh, kw] as an image grid (RGB when C = 3, else one tile per O of channel 0..C-1 averaged). */
export function filterGrid(weight: Tensor, opts: { scale?: number; cols?: number } = {}): Image {
  if (!(weight instanceof Tensor)) badArgument("filterGrid", "the weight", "a tensor [O, C, kh, kw]", weight);
  checkOptions("filterGrid", opts, ["scale", "cols"]);
  if (weight.rank !== 4) throw new Error(`filterGrid: weight must be rank 4 [O,C,kh,kw], got ${shapeStr(weight.shape)}`);
  const [O, C, kh, kw] = weight.shape;
  const d = weight.toArray();
  const tiles: Float32Array[] = [];
  for (let o = 0; o < O; o++) {
    const f = d.subarray(o * C * kh * kw, (o + 1) * C * kh * kw);
    if (C === 3) tiles.push(f.slice());
    else {
      const m = new Float32Array(kh * kw);
      for (let c = 0; c < C; c++) for (let i = 0; i < kh * kw; i++) m[i] += f[c * kh * kw + i] / C;
      tiles.push(m);
    }
  }
  return tileGrid(tiles, kh, kw, { scale: opts.scale ?? 8, cols: opts.cols, rgb: C === 3 });
}

/** Activation maps of one image [1, C, H, W] (or [C, H, W]) as a grid, one tile per channel. */
export function activationGrid(act: Tensor, opts: { scale?: number; cols?: number } = {}): Image {
  if (!(act instanceof Tensor)) badArgument("activationGrid", "the activations", "a tensor [1, C, H, W] or [C, H, W]", act);
  checkOptions("activationGrid", opts, ["scale", "cols"]);
  const s = act.shape;
  if (!(s.length === 4 && s[0] === 1) && s.length !== 3) throw new Error(`activationGrid: need [1,C,H,W] or [C,H,W], got ${shapeStr(s)}`);
  const [C, H, W] = s.slice(-3);
  const d = act.toArray();
  const tiles = Array.from({ length: C }, (_, c) => d.subarray(c * H * W, (c + 1) * H * W));
  return tileGrid(tiles, H, W, { scale: opts.scale ?? 3, cols: opts.cols });
}

function checkImage(fn: string, x: Tensor, forward?: unknown) {
  if (forward !== undefined && typeof forward !== "function") badArgument(fn, "forward", "a function from an input tensor to scores", forward);
  if (!(x instanceof Tensor)) badArgument(fn, "the input", "a tensor [1, C, H, W]", x);
  if (x.rank !== 4 || x.shape[0] !== 1) throw new Error(`${fn}: input must be one image [1,C,H,W], got ${shapeStr(x.shape)}`);
}

function classCheck(fn: string, scores: Tensor, cls: number) {
  if (scores.rank !== 2 || scores.shape[0] !== 1) throw new Error(`${fn}: the model must return scores [1,K], got ${shapeStr(scores.shape)}`);
  if (!Number.isInteger(cls) || cls < 0 || cls >= scores.shape[1]) throw new Error(`${fn}: class ${cls} out of range for ${scores.shape[1]} classes`);
}

/** Saliency: |d score_cls / d x|, max over channels -> [H, W] values (and an image via heatImage). */
export function saliency(forward: Forward, x: Tensor, cls: number): { map: Float32Array; height: number; width: number } {
  checkImage("saliency", x, forward);
  const [, C, H, W] = x.shape;
  return tidy(() => {
    const xin = tensor(x.toArray(), x.shape).requireGrad();
    const scores = forward(xin);
    classCheck("saliency", scores, cls);
    const onehot = new Float32Array(scores.size);
    onehot[cls] = 1;
    scores.backward(tensor(onehot, scores.shape), { inputs: [xin] }); // the input's gradient only: the model's .grad stays as it was
    const g = xin.grad!.toArray();
    xin.grad!.dispose(); // a leaf's .grad outlives tidy: freed here
    const map = new Float32Array(H * W);
    for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) map[i] = Math.max(map[i], Math.abs(g[c * H * W + i]));
    return { map, height: H, width: W };
  });
}

/** Occlusion sensitivity: score drop when a `patch` square of `value` covers each position. */
export function occlusion(forward: Forward, x: Tensor, cls: number, opts: { patch?: number; stride?: number; value?: number; batch?: number } = {}): { map: Float32Array; height: number; width: number } {
  checkOptions("occlusion", opts, ["patch", "stride", "value", "batch"]);
  checkImage("occlusion", x, forward);
  const [, C, H, W] = x.shape;
  const patch = opts.patch ?? Math.max(1, Math.round(H / 7)), stride = opts.stride ?? Math.max(1, Math.round(patch / 2));
  const value = opts.value ?? 0.5, batch = opts.batch ?? 32;
  if (!(patch >= 1 && stride >= 1)) throw new Error(`occlusion: patch and stride must be >= 1`);
  const oh = Math.floor((H - patch) / stride) + 1, ow = Math.floor((W - patch) / stride) + 1;
  const base = x.toArray();
  return noGrad(() =>
    tidy(() => {
      const s0 = forward(x);
      classCheck("occlusion", s0, cls);
      const ref = s0.toArray()[cls];
      const drops = new Float32Array(oh * ow);
      for (let start = 0; start < oh * ow; start += batch) {
        const n = Math.min(batch, oh * ow - start);
        const buf = new Float32Array(n * C * H * W);
        for (let b = 0; b < n; b++) {
          const py = Math.floor((start + b) / ow) * stride, px = ((start + b) % ow) * stride;
          buf.set(base, b * C * H * W);
          for (let c = 0; c < C; c++) for (let y = py; y < py + patch; y++) for (let xx = px; xx < px + patch; xx++) buf[b * C * H * W + c * H * W + y * W + xx] = value;
        }
        tidy(() => {
          const s = forward(tensor(buf, [n, C, H, W])).toArray();
          const K = s.length / n;
          for (let b = 0; b < n; b++) drops[start + b] = ref - s[b * K + cls];
        });
      }
      return { map: drops, height: oh, width: ow };
    }),
  );
}

/** Class model (Simonyan et al. 2014): the input that maximises score_cls - l2 * ||x||^2, by
 *  gradient ascent from a zero (or given) image. */
export function classModel(forward: Forward, shape: number[], cls: number, opts: { steps?: number; lr?: number; l2?: number; start?: Float32Array } = {}): Float32Array {
  if (typeof forward !== "function") badArgument("classModel", "forward", "a function from an input tensor to scores", forward);
  if (!Array.isArray(shape)) badArgument("classModel", "shape", "[1, C, H, W]", shape);
  checkOptions("classModel", opts, ["steps", "lr", "l2", "start"]);
  if (shape.length !== 4 || shape[0] !== 1) throw new Error(`classModel: shape must be [1,C,H,W], got ${shapeStr(shape)}`);
  const steps = opts.steps ?? 100, lr = opts.lr ?? 0.5, l2 = opts.l2 ?? 1e-2;
  const img = opts.start ? Float32Array.from(opts.start) : new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let s = 0; s < steps; s++)
    tidy(() => {
      const xin = tensor(img, shape).requireGrad();
      const scores = forward(xin);
      classCheck("classModel", scores, cls);
      const onehot = new Float32Array(scores.size);
      onehot[cls] = 1;
      scores.backward(tensor(onehot, scores.shape), { inputs: [xin] }); // the input's gradient only: the model's .grad stays as it was
      const g = xin.grad!.toArray();
      xin.grad!.dispose(); // a leaf's .grad outlives tidy: freed here
      for (let i = 0; i < img.length; i++) img[i] += lr * (g[i] - 2 * l2 * img[i]);
    });
  return img;
}

/** A [H, W] map as a heat-coloured image. */
export function heatImage(m: { map: Float32Array; height: number; width: number }, scale = 4): Image {
  if (m === null || typeof m !== "object" || !(m.map instanceof Float32Array)) badArgument("heatImage", "the map", "{ map: Float32Array, height, width } (what saliency and occlusion return)", m);
  return tileGrid([m.map], m.height, m.width, { scale, heat: true, pad: 0, cols: 1 });
}
