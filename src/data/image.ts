// Images from RGBA pixels (a canvas's ImageData, a decoded PNG) to [1, C, H, W] tensors.
import { tensor, type Tensor } from "../tensor.js";
import { checkOptions, keysOf, badArgument } from "../options.js";

export interface PixelsLike {
  data: ArrayLike<number>;
  width: number;
  height: number;
}

export interface PixelOptions {
  /** 3: RGB (default); 1: grey from the luma of ITU-R BT.601 (0.299 R + 0.587 G + 0.114 B) */
  channels?: 1 | 3;
  /** 1 - value (MNIST digits are white on black; drawings are often black on white) */
  invert?: boolean;
  /** per-channel normalisation after scaling to [0, 1] */
  mean?: number | number[];
  std?: number | number[];
}

const PIXEL_OPTIONS = keysOf<PixelOptions>({ channels: true, invert: true, mean: true, std: true });

/** RGBA bytes (4 per pixel, row-major) -> values [C, H, W] in [0, 1] (alpha ignored). */
export function pixelsToArray(img: PixelsLike, opts: PixelOptions = {}): Float32Array {
  if (img === null || typeof img !== "object") badArgument("pixelsToArray", "the image", "an ImageData-like { data, width, height }", img);
  checkOptions("fromPixels", opts, PIXEL_OPTIONS);
  const { channels = 3, invert = false, mean = 0, std = 1 } = opts;
  const { data, width: w, height: h } = img;
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1) throw new Error(`fromPixels: bad size ${w}x${h}`);
  if (data.length !== w * h * 4) throw new Error(`fromPixels: ${w}x${h} RGBA needs ${w * h * 4} values, got ${data.length}`);
  if (channels !== 1 && channels !== 3) throw new Error(`fromPixels: channels must be 1 or 3, got ${channels}`);
  const m = Array.isArray(mean) ? mean : new Array(channels).fill(mean);
  const s = Array.isArray(std) ? std : new Array(channels).fill(std);
  if (m.length !== channels || s.length !== channels) throw new Error(`fromPixels: mean and std need ${channels} values`);
  const out = new Float32Array(channels * w * h);
  for (let p = 0; p < w * h; p++) {
    const r = data[4 * p] / 255, g = data[4 * p + 1] / 255, b = data[4 * p + 2] / 255;
    const vals = channels === 1 ? [0.299 * r + 0.587 * g + 0.114 * b] : [r, g, b];
    for (let c = 0; c < channels; c++) {
      const v = invert ? 1 - vals[c] : vals[c];
      out[c * w * h + p] = (v - m[c]) / s[c];
    }
  }
  return out;
}

/** An ImageData-like RGBA image as a [1, C, H, W] tensor. */
export function fromPixels(img: PixelsLike, opts: PixelOptions = {}): Tensor {
  if (img === null || typeof img !== "object") badArgument("fromPixels", "the image", "an ImageData-like { data, width, height }", img);
  checkOptions("fromPixels", opts, PIXEL_OPTIONS);
  const c = opts.channels ?? 3;
  return tensor(pixelsToArray(img, opts), [1, c, img.height, img.width]);
}
