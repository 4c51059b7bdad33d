// A small PNG encoder (RGBA, 8 bits) that works the same in Node and browsers without
// dependencies: the image data goes into "stored" deflate blocks (no compression), which every
// PNG reader accepts. Pictures here are small (filters, heat maps, curves).
import { checkOptions, badArgument } from "../options.js";

export interface Image {
  width: number;
  height: number;
  /** RGBA, row-major, 4 bytes per pixel */
  data: Uint8ClampedArray | Uint8Array;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array, start: number, end: number): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function adler32(bytes: Uint8Array): number {
  let a = 1, b = 0;
  for (let i = 0; i < bytes.length; i++) {
    a = (a + bytes[i]) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** zlib stream of stored deflate blocks (max 65535 bytes each). */
function zlibStored(raw: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(raw.length / 65535));
  const out = new Uint8Array(2 + raw.length + blocks * 5 + 4);
  out[0] = 0x78;
  out[1] = 0x01;
  let p = 2;
  for (let b = 0; b < blocks; b++) {
    const s = b * 65535, len = Math.min(65535, raw.length - s);
    out[p++] = b === blocks - 1 ? 1 : 0;
    out[p++] = len & 0xff;
    out[p++] = len >>> 8;
    out[p++] = ~len & 0xff;
    out[p++] = (~len >>> 8) & 0xff;
    out.set(raw.subarray(s, s + len), p);
    p += len;
  }
  const a = adler32(raw);
  out[p++] = a >>> 24;
  out[p++] = (a >>> 16) & 0xff;
  out[p++] = (a >>> 8) & 0xff;
  out[p++] = a & 0xff;
  return out;
}

/** deflate: a zlib compressor (Node's zlib.deflateSync, say); without one the image data is
 *  stored uncompressed (a valid PNG, 4 bytes per pixel), which needs no dependency. */
export function encodePNG(img: Image, opts: { deflate?: (raw: Uint8Array) => Uint8Array } = {}): Uint8Array {
  if (img === null || typeof img !== "object" || !(img.data instanceof Uint8Array || img.data instanceof Uint8ClampedArray)) badArgument("encodePNG", "the image", "{ width, height, data: RGBA bytes }", img);
  checkOptions("encodePNG", opts, ["deflate"]);
  const { deflate } = opts;
  const { width: w, height: h, data } = img;
  if (!(w > 0 && h > 0) || data.length !== w * h * 4) throw new Error(`encodePNG: ${data.length} bytes do not make a ${w}x${h} RGBA image`);
  const raw = new Uint8Array(h * (w * 4 + 1));
  for (let y = 0; y < h; y++) {
    raw[y * (w * 4 + 1)] = 0; // filter: none
    raw.set(data.subarray(y * w * 4, (y + 1) * w * 4), y * (w * 4 + 1) + 1);
  }
  const idat = deflate ? deflate(raw) : zlibStored(raw);
  const chunks: [string, Uint8Array][] = [
    ["IHDR", (() => {
      const b = new Uint8Array(13);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, w);
      dv.setUint32(4, h);
      b[8] = 8; // bit depth
      b[9] = 6; // RGBA
      return b;
    })()],
    ["IDAT", idat],
    ["IEND", new Uint8Array(0)],
  ];
  const size = 8 + chunks.reduce((s, [, d]) => s + 12 + d.length, 0);
  const out = new Uint8Array(size);
  out.set([137, 80, 78, 71, 13, 10, 26, 10]);
  const dv = new DataView(out.buffer);
  let p = 8;
  for (const [type, d] of chunks) {
    dv.setUint32(p, d.length);
    for (let i = 0; i < 4; i++) out[p + 4 + i] = type.charCodeAt(i);
    out.set(d, p + 8);
    dv.setUint32(p + 8 + d.length, crc32(out, p + 4, p + 8 + d.length));
    p += 12 + d.length;
  }
  return out;
}
