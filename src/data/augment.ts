// Data augmentation on one image at a time (CPU, plain JS: images are small), every random
// choice drawn from the generator passed in, so a seed fixes the result.
import type { Generator } from "../random.js";

export interface Image {
  data: Float32Array;
  c: number;
  h: number;
  w: number;
}

export type Transform = (img: Image, rng: Generator) => Image;

/** Pad by `padding` (with `fill`) then cut a size x size window at a random place. */
export function randomCrop(size: number | [number, number], { padding = 0, fill = 0 }: { padding?: number; fill?: number } = {}): Transform {
  const [oh, ow] = Array.isArray(size) ? size : [size, size];
  if (![oh, ow, padding].every((v) => Number.isInteger(v) && v >= 0) || !oh || !ow) throw new Error(`randomCrop: size and padding must be integers, got ${size}, ${padding}`);
  return (img, rng) => {
    const ph = img.h + 2 * padding, pw = img.w + 2 * padding;
    if (oh > ph || ow > pw) throw new Error(`randomCrop: crop ${oh}x${ow} is larger than the padded image ${ph}x${pw}`);
    const top = rng.int(ph - oh + 1) - padding, left = rng.int(pw - ow + 1) - padding;
    return cropAt(img, top, left, oh, ow, fill);
  };
}

/** Window [top, top+oh) x [left, left+ow), `fill` outside the image. */
function cropAt(img: Image, top: number, left: number, oh: number, ow: number, fill: number): Image {
  const out = new Float32Array(img.c * oh * ow).fill(fill);
  for (let ch = 0; ch < img.c; ch++)
    for (let y = 0; y < oh; y++) {
      const sy = y + top;
      if (sy < 0 || sy >= img.h) continue;
      for (let x = 0; x < ow; x++) {
        const sx = x + left;
        if (sx >= 0 && sx < img.w) out[(ch * oh + y) * ow + x] = img.data[(ch * img.h + sy) * img.w + sx];
      }
    }
  return { data: out, c: img.c, h: oh, w: ow };
}

/** Mirror left-right with probability p. */
export function horizontalFlip(p = 0.5): Transform {
  return (img, rng) => {
    if (rng.random() >= p) return img;
    const out = new Float32Array(img.data.length);
    for (let r = 0; r < img.c * img.h; r++)
      for (let x = 0; x < img.w; x++) out[r * img.w + x] = img.data[r * img.w + img.w - 1 - x];
    return { ...img, data: out };
  };
}

/** Translate by a random whole number of pixels in [-max, max] each way, `fill` coming in. */
export function shift(max: number, { fill = 0 }: { fill?: number } = {}): Transform {
  if (!Number.isInteger(max) || max < 0) throw new Error(`shift: max must be an integer >= 0, got ${max}`);
  return (img, rng) => {
    const dy = rng.int(2 * max + 1) - max, dx = rng.int(2 * max + 1) - max;
    return cropAt(img, -dy, -dx, img.h, img.w, fill);
  };
}

/** Rotate by a random angle in [-degrees, degrees] about the centre (bilinear, `fill` outside). */
export function rotation(degrees: number, { fill = 0 }: { fill?: number } = {}): Transform {
  if (!(degrees >= 0)) throw new Error(`rotation: degrees must be >= 0, got ${degrees}`);
  return (img, rng) => {
    const a = (rng.uniform(-degrees, degrees) * Math.PI) / 180;
    const cos = Math.cos(a), sin = Math.sin(a);
    const cy = (img.h - 1) / 2, cx = (img.w - 1) / 2;
    const out = new Float32Array(img.data.length);
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
      }
    return { ...img, data: out };
  };
}

/** Brightness: multiply by a factor in [1-b, 1+b]; contrast: scale the distance from the image's
 *  mean by a factor in [1-c, 1+c] (torchvision's ColorJitter); clamped to [lo, hi]. */
export function colorJitter({ brightness = 0, contrast = 0, clamp = [0, 1] as [number, number] } = {}): Transform {
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

/** Apply transforms in order. */
export function compose(...ts: Transform[]): Transform {
  return (img, rng) => ts.reduce((im, t) => t(im, rng), img);
}
