import { test } from "uvu";
import * as assert from "uvu/assert";
import { inflateSync } from "node:zlib";
import * as sn from "../dist/index.js";

function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return ~c >>> 0;
}

/** Minimal independent PNG reader: checks every chunk's CRC and inflates with zlib. */
function readPNG(png) {
  const b = Buffer.from(png);
  assert.equal([...b.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], "PNG signature");
  let p = 8, w, h, idat = [];
  while (p < b.length) {
    const len = b.readUInt32BE(p), type = b.toString("ascii", p + 4, p + 8);
    assert.is(b.readUInt32BE(p + 8 + len), crc32(b.subarray(p + 4, p + 8 + len)), `${type} CRC`);
    if (type === "IHDR") {
      w = b.readUInt32BE(p + 8);
      h = b.readUInt32BE(p + 12);
      assert.is(b[p + 16], 8);
      assert.is(b[p + 17], 6);
    } else if (type === "IDAT") idat.push(b.subarray(p + 8, p + 8 + len));
    p += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const data = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    assert.is(raw[y * (w * 4 + 1)], 0, "filter type none");
    data.set(raw.subarray(y * (w * 4 + 1) + 1, (y + 1) * (w * 4 + 1)), y * w * 4);
  }
  return { width: w, height: h, data };
}

test("encodePNG: a zlib/PNG reader gets back the same pixels (also over 65535 bytes: several deflate blocks)", () => {
  for (const [w, h] of [[3, 2], [200, 150]]) {
    const data = new Uint8Array(w * h * 4).map((_, i) => (i * 37) & 255);
    const img = readPNG(sn.viz.encodePNG({ width: w, height: h, data }));
    assert.is(img.width, w);
    assert.is(img.height, h);
    assert.equal(img.data, data);
  }
});

test("encodePNG: data not matching the size is a clear error", () => {
  assert.throws(() => sn.viz.encodePNG({ width: 2, height: 2, data: new Uint8Array(3) }), /3 bytes do not make a 2x2 RGBA image/);
});

test("filterGrid: one tile per filter, each scaled to its own range", async () => {
  await sn.init({ threads: 1 });
  const w = sn.tensor(Float32Array.from({ length: 4 * 1 * 2 * 2 }, (_, i) => i), [4, 1, 2, 2]);
  const img = sn.viz.filterGrid(w, { scale: 1, cols: 4 });
  assert.is(img.width, 4 * 3 + 1);
  assert.is(img.height, 2 + 2);
  // first filter's first pixel is its minimum (black), last pixel its maximum (white)
  const px = (x, y) => img.data[(y * img.width + x) * 4];
  assert.is(px(1, 1), 0);
  assert.is(px(2, 2), 255);
  assert.throws(() => sn.viz.filterGrid(sn.zeros([3, 3])), /rank 4/);
});

test.run();
