// Data augmentation on one image at a time (CPU, plain JS: images are small), every random
// choice drawn from the generator passed in, so a seed fixes the result.
import type { Generator } from "../random.js";
import { checkOptions, describeShown } from "../options.js";

export interface Image {
  data: Float32Array;
  c: number;
  h: number;
  w: number;
  /** a class index per pixel (H*W values; segmentation): the geometric transforms (crop, flip,
   *  shift, rotation) move it exactly as the image, with the same random draw; the photometric
   *  ones (colorJitter) pass it on unchanged. A transform that returns an image without it,
   *  when the input had one, is an error in the DataLoader. */
  mask?: Int32Array;
  /** the mask's ignore index: mask pixels that come from outside the image (padding, shift,
   *  rotation) get it unless the transform's `maskFill` says otherwise; -100 if absent */
  ignoreIndex?: number;
}

/** One image (and its mask, if it has one) in, one out; every random choice from `rng`. A
 *  custom transform of images with masks must return a mask of the output's H x W, moved as
 *  the image was (or the input's, `{ ...img, data }`, when it moves no pixel). */
export type Transform = (img: Image, rng: Generator) => Image;

/** Options of the geometric transforms: `fill` for image pixels that come from outside the
 *  image, `maskFill` for mask pixels (default: the image's ignoreIndex, so the loss and the
 *  metrics skip them; 0 makes them background). */
export interface FillOptions {
  fill?: number;
  maskFill?: number;
}

const maskFillOf = (img: Image, maskFill: number | undefined) => maskFill ?? img.ignoreIndex ?? -100;

function checkMaskFill(maskFill: number | undefined, what: string) {
  if (maskFill !== undefined && !Number.isInteger(maskFill)) throw new Error(`${what}: maskFill must be an integer (a class index or the ignore index), got ${maskFill}`);
}

/** Pad by `padding` (with `fill`; the mask with `maskFill`) then cut a size x size window at a
 *  random place. */
export function randomCrop(size: number | [number, number], opts: { padding?: number } & FillOptions = {}): Transform {
  checkOptions("randomCrop", opts, ["padding", "fill", "maskFill"]);
  const { padding = 0, fill = 0, maskFill } = opts;
  const [oh, ow] = Array.isArray(size) ? size : [size, size];
  if (![oh, ow, padding].every((v) => Number.isInteger(v) && v >= 0) || !oh || !ow) throw new Error(`randomCrop: size and padding must be integers, got ${size}, ${padding}`);
  checkMaskFill(maskFill, "randomCrop");
  return (img, rng) => {
    const ph = img.h + 2 * padding, pw = img.w + 2 * padding;
    if (oh > ph || ow > pw) throw new Error(`randomCrop: crop ${oh}x${ow} is larger than the padded image ${ph}x${pw}`);
    const top = rng.int(ph - oh + 1) - padding, left = rng.int(pw - ow + 1) - padding;
    return cropAt(img, top, left, oh, ow, fill, maskFill);
  };
}

/** Window [top, top+oh) x [left, left+ow) of every plane of `src` (planes x h x w), `fill` outside. */
function cropPlanes<T extends Float32Array | Int32Array>(src: T, out: T, planes: number, h: number, w: number, top: number, left: number, oh: number, ow: number) {
  for (let ch = 0; ch < planes; ch++)
    for (let y = 0; y < oh; y++) {
      const sy = y + top;
      if (sy < 0 || sy >= h) continue;
      for (let x = 0; x < ow; x++) {
        const sx = x + left;
        if (sx >= 0 && sx < w) out[(ch * oh + y) * ow + x] = src[(ch * h + sy) * w + sx];
      }
    }
  return out;
}

/** Window [top, top+oh) x [left, left+ow), `fill` outside the image (`maskFill` in the mask). */
function cropAt(img: Image, top: number, left: number, oh: number, ow: number, fill: number, maskFill?: number): Image {
  const data = cropPlanes(img.data, new Float32Array(img.c * oh * ow).fill(fill), img.c, img.h, img.w, top, left, oh, ow);
  const out: Image = { ...img, data, h: oh, w: ow };
  if (img.mask) out.mask = cropPlanes(img.mask, new Int32Array(oh * ow).fill(maskFillOf(img, maskFill)), 1, img.h, img.w, top, left, oh, ow);
  return out;
}

/** Mirror left-right with probability p (the mask too). */
export function horizontalFlip(p = 0.5): Transform {
  // a probability, not options: horizontalFlip({ p: 0.3 }) would otherwise compare as NaN and flip every image
  if (typeof p !== "number" || !(p >= 0 && p <= 1)) throw new Error(`horizontalFlip: p must be a probability in [0, 1] (horizontalFlip(0.5)), got ${describeShown(p)}`);
  return (img, rng) => {
    if (rng.random() >= p) return img;
    const flip = <T extends Float32Array | Int32Array>(src: T, out: T, rows: number) => {
      for (let r = 0; r < rows; r++)
        for (let x = 0; x < img.w; x++) out[r * img.w + x] = src[r * img.w + img.w - 1 - x];
      return out;
    };
    const out: Image = { ...img, data: flip(img.data, new Float32Array(img.data.length), img.c * img.h) };
    if (img.mask) out.mask = flip(img.mask, new Int32Array(img.mask.length), img.h);
    return out;
  };
}

/** Translate by a random whole number of pixels in [-max, max] each way, `fill` coming in
 *  (`maskFill` in the mask). */
export function shift(max: number, opts: FillOptions = {}): Transform {
  checkOptions("shift", opts, ["fill", "maskFill"]);
  const { fill = 0, maskFill } = opts;
  if (!Number.isInteger(max) || max < 0) throw new Error(`shift: max must be an integer >= 0, got ${max}`);
  checkMaskFill(maskFill, "shift");
  return (img, rng) => {
    const dy = rng.int(2 * max + 1) - max, dx = rng.int(2 * max + 1) - max;
    return cropAt(img, -dy, -dx, img.h, img.w, fill, maskFill);
  };
}

/** Rotate by a random angle in [-degrees, degrees] about the centre (bilinear, `fill` outside);
 *  the mask by the same angle, each pixel taking the class of the nearest source pixel
 *  (`maskFill` outside). */
export function rotation(degrees: number, opts: FillOptions = {}): Transform {
  checkOptions("rotation", opts, ["fill", "maskFill"]);
  const { fill = 0, maskFill } = opts;
  if (!(degrees >= 0)) throw new Error(`rotation: degrees must be >= 0, got ${degrees}`);
  checkMaskFill(maskFill, "rotation");
  return (img, rng) => {
    const a = (rng.uniform(-degrees, degrees) * Math.PI) / 180;
    const cos = Math.cos(a), sin = Math.sin(a);
    const cy = (img.h - 1) / 2, cx = (img.w - 1) / 2;
    const out = new Float32Array(img.data.length);
    const mask = img.mask ? new Int32Array(img.h * img.w) : undefined;
    const mFill = maskFillOf(img, maskFill);
    for (let y = 0; y < img.h; y++)
      for (let x = 0; x < img.w; x++) {
        // inverse map: where in the source this output pixel comes from
        const sx = cos * (x - cx) + sin * (y - cy) + cx;
        const sy = -sin * (x - cx) + cos * (y - cy) + cy;
        const x0 = Math.floor(sx), y0 = Math.floor(sy), fx = sx - x0, fy = sy - y0;
        for (let ch = 0; ch < img.c; ch++) {
          const px = (yy: number, xx: number) => (yy >= 0 && yy < img.h && xx >= 0 && xx < img.w ? img.data[(ch * img.h + yy) * img.w + xx] : fill);
          out[(ch * img.h + y) * img.w + x] = (1 - fy) * ((1 - fx) * px(y0, x0) + fx * px(y0, x0 + 1)) + fy * ((1 - fx) * px(y0 + 1, x0) + fx * px(y0 + 1, x0 + 1));
        }
        if (mask) {
          const ny = Math.round(sy), nx = Math.round(sx);
          mask[y * img.w + x] = ny >= 0 && ny < img.h && nx >= 0 && nx < img.w ? img.mask![ny * img.w + nx] : mFill;
        }
      }
    const res: Image = { ...img, data: out };
    if (mask) res.mask = mask;
    return res;
  };
}

/** Brightness: multiply by a factor in [1-b, 1+b]; contrast: scale the distance from the image's
 *  mean by a factor in [1-c, 1+c] (torchvision's ColorJitter); clamped to [lo, hi]. A mask is
 *  passed on unchanged. */
export function colorJitter(opts: { brightness?: number; contrast?: number; clamp?: [number, number] } = {}): Transform {
  checkOptions("colorJitter", opts, ["brightness", "contrast", "clamp"]);
  const { brightness = 0, contrast = 0, clamp = [0, 1] } = opts;
  if (!(brightness >= 0 && contrast >= 0)) throw new Error(`colorJitter: brightness and contrast must be >= 0`);
  return (img, rng) => {
    const b = brightness ? rng.uniform(1 - brightness, 1 + brightness) : 1;
    const k = contrast ? rng.uniform(1 - contrast, 1 + contrast) : 1;
    let mean = 0;
    for (const v of img.data) mean += v * b;
    mean /= img.data.length;
    const out = new Float32Array(img.data.length);
    for (let i = 0; i < out.length; i++) out[i] = Math.min(clamp[1], Math.max(clamp[0], (img.data[i] * b - mean) * k + mean));
    return { ...img, data: out };
  };
}

/** Random erasing (Zhong et al., 2017; torchvision's RandomErasing): with probability `p`, a
 *  rectangle of `scale` (fraction of the image's area, drawn uniformly) and aspect ratio `ratio`
 *  (drawn uniformly on a log scale), at a random place, is overwritten in every channel with
 *  `value`: a number, or "random" (default: a uniform draw in [0, 1) per pixel, the paper's
 *  best choice on CIFAR and Fashion-MNIST; pixels are erased before normalisation). Up to ten
 *  draws for a rectangle that fits, as torchvision; none fitting leaves the image as it is. A
 *  mask is passed on unchanged (the object is hidden, not removed). */
export function randomErasing(opts: { p?: number; scale?: [number, number]; ratio?: [number, number]; value?: number | "random" } = {}): Transform {
  checkOptions("randomErasing", opts, ["p", "scale", "ratio", "value"]);
  const { p = 0.5, scale = [0.02, 0.33], ratio = [0.3, 3.3], value = "random" } = opts;
  if (typeof p !== "number" || !(p >= 0 && p <= 1)) throw new Error(`randomErasing: p must be a probability in [0, 1], got ${p}`);
  const pair = (v: unknown, what: string, lo: number, hi: number) => {
    if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => typeof x === "number" && x >= lo && x <= hi) || v[0] > v[1])
      throw new Error(`randomErasing: ${what} must be [min, max] with ${lo} <= min <= max <= ${hi}, got ${JSON.stringify(v)}`);
  };
  pair(scale, "scale", 0, 1);
  pair(ratio, "ratio", 1e-3, 1e3);
  if (value !== "random" && !(typeof value === "number" && Number.isFinite(value))) throw new Error(`randomErasing: value must be a finite number or "random", got ${JSON.stringify(value)}`);
  const logR = [Math.log(ratio[0]), Math.log(ratio[1])];
  return (img, rng) => {
    if (rng.random() >= p) return img;
    const area = img.h * img.w;
    for (let attempt = 0; attempt < 10; attempt++) {
      const target = area * rng.uniform(scale[0], scale[1]);
      const aspect = Math.exp(rng.uniform(logR[0], logR[1]));
      const eh = Math.round(Math.sqrt(target * aspect)), ew = Math.round(Math.sqrt(target / aspect));
      if (eh < 1 || ew < 1 || eh > img.h || ew > img.w) continue;
      const top = rng.int(img.h - eh + 1), left = rng.int(img.w - ew + 1);
      const data = img.data.slice();
      for (let ch = 0; ch < img.c; ch++)
        for (let y = top; y < top + eh; y++)
          for (let x = left; x < left + ew; x++) data[(ch * img.h + y) * img.w + x] = value === "random" ? rng.random() : value;
      return { ...img, data };
    }
    return img;
  };
}

/** Apply transforms in order. */
export function compose(...ts: Transform[]): Transform {
  return (img, rng) => ts.reduce((im, t) => t(im, rng), img);
}
