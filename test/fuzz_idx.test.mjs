// Fuzzing the IDX reader, its gunzip and the labels check of loadIdxFolder (what
// `train --data DIR` reads): valid files made here, mutated thousands of ways (seeded, so every
// run tries the same inputs). Each mutated file must either parse or throw an IdxError naming
// the file; never another error, never a hang, never a large allocation. What parses is checked
// against an oracle written here from the format alone (magic 0x0000TTDD, DD big-endian uint32
// sizes, none 0, then exactly product(sizes) big-endian values) and by the kind of mutation: a
// truncated or extended file always throws; a flipped bit in the values parses the original
// with at most the one value holding that byte changed.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { gzipSync, gunzipSync } from "node:zlib";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as sn from "../dist/index.js";
import { fuzzRng } from "./helpers.mjs";
const { data } = sn;

const WHAT = "fuzz-idx1-ubyte";
const RUNS = 6000, GZ_RUNS = 600;

const rand = fuzzRng(1998);
const int = (n) => Math.floor(rand() * n);
const pick = (xs) => xs[int(xs.length)];

const TYPES = { 0x08: ["u8", 1], 0x09: ["i8", 1], 0x0b: ["i16", 2], 0x0c: ["i32", 4], 0x0d: ["f32", 4], 0x0e: ["f64", 8] };

// ---- seed files: every type, 1 to 4 dimensions ----
const seeds = [
  data.writeIdx({ type: "u8", shape: [3, 4, 5], data: Array.from({ length: 60 }, () => int(256)) }),
  data.writeIdx({ type: "u8", shape: [7], data: [7, 2, 1, 0, 4, 1, 9] }),
  data.writeIdx({ type: "i8", shape: [2, 5], data: Array.from({ length: 10 }, () => int(256) - 128) }),
  data.writeIdx({ type: "i16", shape: [2, 3], data: Array.from({ length: 6 }, () => int(65536) - 32768) }),
  data.writeIdx({ type: "i32", shape: [4], data: Array.from({ length: 4 }, () => int(2 ** 32) - 2 ** 31) }),
  data.writeIdx({ type: "f32", shape: [1, 2, 2, 2], data: Array.from({ length: 8 }, () => (rand() - 0.5) * 100) }),
  data.writeIdx({ type: "f64", shape: [3], data: [0.5, -1e300, 3] }),
];

/** the values the file holds by the format, or null where it breaks a rule */
function oracle(b) {
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0 || !TYPES[b[2]] || b[3] === 0) return null;
  const [type, size] = TYPES[b[2]], nd = b[3], head = 4 + 4 * nd;
  if (b.length < head) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const shape = Array.from({ length: nd }, (_, i) => dv.getUint32(4 + 4 * i));
  if (shape.includes(0)) return null;
  if (BigInt(head) + shape.reduce((a, d) => a * BigInt(d), 1n) * BigInt(size) !== BigInt(b.length)) return null;
  const get = { u8: "getUint8", i8: "getInt8", i16: "getInt16", i32: "getInt32", f32: "getFloat32", f64: "getFloat64" }[type];
  const values = Array.from({ length: (b.length - head) / size }, (_, i) => dv[get](head + i * size));
  return { type, shape, values };
}

const same = (a, b) => a === b || (Number.isNaN(a) && Number.isNaN(b));
function diff(got, want, skip = -1) {
  if (got.type !== want.type || JSON.stringify(got.shape) !== JSON.stringify(want.shape) || got.data.length !== want.values.length) return `type/shape ${got.type} [${got.shape}] vs ${want.type} [${want.shape}]`;
  for (let i = 0; i < want.values.length; i++) if (i !== skip && !same(got.data[i], want.values[i])) return `value ${i}: ${got.data[i]} vs ${want.values[i]}`;
  return "";
}

function mutate(seed) {
  const len = seed.length, head = 4 + 4 * seed[3];
  const b = seed.slice(), dv = new DataView(b.buffer);
  switch (int(9)) {
    case 0: // bits anywhere
      for (let k = 1 + int(3); k > 0; k--) b[int(len)] ^= 1 << int(8);
      return { kind: "any bits", file: b };
    case 1: // bits in the header
      for (let k = 1 + int(2); k > 0; k--) b[int(head)] ^= 1 << int(8);
      return { kind: "header bits", file: b };
    case 2: // a size: 0, off by one, doubled, halved, huge (products past 2^32 and 2^53)
      dv.setUint32(4 + 4 * int(seed[3]), pick([0, 1, 2 ** 32 - 1, 2 ** 31, 65536, dv.getUint32(4) + 1, dv.getUint32(4) - 1, dv.getUint32(4) * 2, dv.getUint32(4) >>> 1]) >>> 0);
      return { kind: "size", file: b };
    case 3: // the type code or the number of dimensions
      if (rand() < 0.5) b[2] = pick([0, 7, 8, 9, 10, 11, 12, 13, 14, 15, 255, int(256)]);
      else b[3] = pick([0, 1, 2, 3, 4, 5, 255, int(256)]);
      return { kind: "magic", file: b };
    case 4: return { kind: "truncated", file: seed.slice(0, int(len)) };
    case 5: { // extended with zeros or random bytes
      const e = new Uint8Array(len + 1 + int(32));
      e.set(seed);
      if (rand() < 0.5) for (let i = len; i < e.length; i++) e[i] = int(256);
      return { kind: "extended", file: e };
    }
    case 6: { // a byte deleted or inserted somewhere
      const at = int(len);
      return { kind: "shifted", file: rand() < 0.5 ? new Uint8Array([...seed.subarray(0, at), ...seed.subarray(at + 1)]) : new Uint8Array([...seed.subarray(0, at), int(256), ...seed.subarray(at)]) };
    }
    default: { // a bit of the values
      const at = head + int(len - head);
      b[at] ^= 1 << int(8);
      return { kind: "data", file: b, value: Math.floor((at - head) / TYPES[seed[2]][1]) };
    }
  }
}

test(`IDX: ${RUNS} mutated files each parse as the format says or throw an IdxError naming the file`, () => {
  const rss0 = process.memoryUsage().rss;
  let rssMax = rss0, slowest = 0;
  const counts = {};
  for (let run = 0; run < RUNS; run++) {
    const si = int(seeds.length), m = mutate(seeds[si]);
    const where = `run ${run} (seed ${si}, ${m.kind})`;
    const t0 = performance.now();
    let got = null, err = null;
    try {
      got = data.parseIdx(m.file, WHAT);
    } catch (e) {
      err = e;
    }
    slowest = Math.max(slowest, performance.now() - t0);
    if (run % 250 === 0) rssMax = Math.max(rssMax, process.memoryUsage().rss);
    const want = oracle(m.file);
    const c = (counts[m.kind] ??= { parsed: 0, refused: 0 });
    if (err) {
      c.refused++;
      if (!(err instanceof data.IdxError)) throw new Error(`${where}: threw ${err?.constructor?.name}: ${err?.message}, not an IdxError`);
      assert.ok(err.message.startsWith(`${WHAT}: `), `${where}: the error names the file: ${err.message}`);
      if (want) throw new Error(`${where}: refused a valid file: ${err.message}`);
      continue;
    }
    c.parsed++;
    if (!want) throw new Error(`${where}: parsed a file that breaks the format's rules`);
    const d = diff(got, want);
    if (d) throw new Error(`${where}: parsed other values than the file holds: ${d}`);
    if (m.kind === "truncated" || m.kind === "extended") throw new Error(`${where}: a ${m.kind} file parsed`);
    if (m.kind === "data") {
      const dd = diff(got, oracle(seeds[si]), m.value);
      if (dd) throw new Error(`${where}: a flipped bit changed more than its value: ${dd}`);
    }
  }
  rssMax = Math.max(rssMax, process.memoryUsage().rss);
  console.log(`  IDX fuzz: ${Object.entries(counts).map(([k, v]) => `${k} ${v.parsed} parsed / ${v.refused} refused`).join("; ")}; slowest ${slowest.toFixed(1)} ms; rss +${((rssMax - rss0) / 2 ** 20).toFixed(0)} MiB`);
  assert.ok(counts.data.parsed > 0 && counts.data.refused === 0, "every values-only mutation parses");
  assert.ok(slowest < 1000, `no input takes a second (slowest ${slowest.toFixed(0)} ms)`);
  assert.ok(rssMax - rss0 < 200 * 2 ** 20, `memory stays bounded (rss grew ${((rssMax - rss0) / 2 ** 20).toFixed(0)} MiB)`);
});

test("IDX: sizes that are 0, products past 2^53, wrong lengths and unknown types are errors that say which", () => {
  const idx = (type, shape, bodyLen) => {
    const b = new Uint8Array(4 + 4 * shape.length + bodyLen);
    const dv = new DataView(b.buffer);
    b[2] = type;
    b[3] = shape.length;
    shape.forEach((d, i) => dv.setUint32(4 + 4 * i, d));
    return b;
  };
  const refuse = (b, re) => assert.throws(() => data.parseIdx(b, WHAT), (e) => e instanceof data.IdxError && re.test(e.message), String(re));
  refuse(idx(8, [0, 28, 28], 0), /fuzz-idx1-ubyte: size 0 of shape \[0,28,28\] is 0: the file holds no values/);
  refuse(idx(8, [2 ** 32 - 1, 0], 0), /size 1 of shape \[4294967295,0\] is 0/);
  // the exact product (a float product of these is not exact), not just "too big"
  const max = 2 ** 32 - 1;
  refuse(idx(0x0e, [max, max, max], 8), /truncated: shape \[4294967295,4294967295,4294967295\] of f64 needs 633825299671392843082401579000 bytes of data, the file has 8/);
  refuse(idx(8, [3], 5), /2 bytes after the end of the data for shape \[3\]/);
  refuse(idx(0x0a, [3], 3), /bad magic number 0x00000a01/);
  assert.throws(() => data.writeIdx({ shape: [0, 2], data: [] }), /writeIdx: shape \[0,2\] must have 1 to 255 sizes, each from 1 to 2\^32 - 1/);
});

test(`IDX gzip: ${GZ_RUNS} mutated .gz files unpack to what zlib gives or throw an IdxError naming the file; a gzip bomb stops at the header's length`, async () => {
  const gz = seeds.map((s) => gzipSync(s));
  const rss0 = process.memoryUsage().rss;
  let refused = 0;
  for (let run = 0; run < GZ_RUNS; run++) {
    const si = int(gz.length), g = gz[si], len = g.length;
    let b = g.slice();
    const op = int(3);
    if (op === 0) for (let k = 1 + int(3); k > 0; k--) b[int(len)] ^= 1 << int(8);
    else if (op === 1) b = g.slice(0, int(len));
    else (b = new Uint8Array(len + 1 + int(16))), b.set(g);
    let want = null;
    try {
      want = new Uint8Array(gunzipSync(b));
    } catch {}
    try {
      const got = await data.gunzip(b, "fuzz.gz");
      assert.ok(want && got.length === want.length && got.every((v, i) => v === want[i]), `run ${run}: unpacked bytes zlib does not give`);
    } catch (e) {
      refused++;
      if (!(e instanceof data.IdxError) || !e.message.startsWith("fuzz.gz: ")) throw new Error(`run ${run}: ${e?.constructor?.name}: ${e?.message}`);
      // refused only where zlib fails or the bytes are not a whole IDX file
      if (want && oracle(want)) throw new Error(`run ${run}: refused a good file: ${e.message}`);
    }
  }
  assert.ok(refused > 0 && refused < GZ_RUNS, `some refused, some not (${refused})`);

  // a bomb: a header for 16 bytes, then 64 MiB of zeros, as 65 gzip members (about 70 KiB)
  const member = gzipSync(new Uint8Array(1 << 20));
  const parts = [gzipSync(data.writeIdx({ shape: [16], data: new Uint8Array(16) })), ...Array(64).fill(member)];
  const bomb = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  parts.reduce((at, p) => (bomb.set(p, at), at + p.length), 0);
  const t0 = performance.now();
  await data.gunzip(bomb, "bomb.gz").then(() => assert.unreachable("the bomb unpacked"), (e) => assert.match(e.message, /bomb\.gz: unpacks to more than the 24 bytes its IDX header declares/));
  // a header that declares more than the limit stops at once, whatever follows
  const declared = gzipSync(Uint8Array.from([0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, 1, 2, 3]));
  await data.gunzip(declared, "big.gz").then(() => assert.unreachable(), (e) => assert.match(e.message, /big\.gz: its IDX header declares shape \[4294967295,2\], 8589934602 bytes, over the limit of 1073741824 bytes to unpack/));
  await data.gunzip(gzipSync(new Uint8Array(100)), "zeros.gz").then(() => assert.unreachable(), (e) => assert.match(e.message, /zeros\.gz: bad magic number 0x00000000/));
  await data.gunzip(Uint8Array.from([0x1f, 0x8b, 1, 2, 3]), "junk.gz").then(() => assert.unreachable(), (e) => assert.match(e.message, /junk\.gz: not valid gzip data/));
  assert.ok(performance.now() - t0 < 5000, "the bombs are refused quickly");
  assert.ok(process.memoryUsage().rss - rss0 < 100 * 2 ** 20, `memory stays bounded (rss grew ${((process.memoryUsage().rss - rss0) / 2 ** 20).toFixed(0)} MiB)`);
});

test("IDX folder labels: integers from 0 to 65535, else an error naming the file and the label (a label of 1e10 once ran out of memory after 43 s)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fuzz-idx-"));
  const labels = join(dir, "t10k-labels-idx1-ubyte");
  try {
    for (const p of ["train", "t10k"]) writeFileSync(join(dir, `${p}-images-idx3-ubyte`), data.writeIdx({ shape: [2, 2, 2], data: new Uint8Array(8) }));
    writeFileSync(join(dir, "train-labels-idx1-ubyte"), data.writeIdx({ shape: [2], data: [1, 0] }));
    const cases = [
      ["f64", [1, 1e10], /label 1 is 10000000000; labels must be integer class indices from 0 to 65535/],
      ["f64", [0.9, 1], /label 0 is 0\.9/],
      ["f32", [1, NaN], /label 1 is NaN/],
      ["i16", [-1, 0], /label 0 is -1/],
      ["i32", [3, 70000], /label 1 is 70000/],
      ["f64", [1, Infinity], /label 1 is Infinity/],
    ];
    for (const [type, y, re] of cases) {
      writeFileSync(labels + ".gz", gzipSync(data.writeIdx({ type, shape: [2], data: y })));
      const t0 = performance.now();
      await data.loadIdxFolder(dir).then(() => assert.unreachable(`${type} [${y}] loaded`), (e) => {
        assert.instance(e, data.IdxError);
        assert.ok(e.message.startsWith(`${labels}.gz: `), `names the file: ${e.message}`);
        assert.match(e.message, re);
      });
      assert.ok(performance.now() - t0 < 2000, `${type} [${y}] is refused at once`);
    }
    // integer labels in any type load; errors in a gzipped file name it
    writeFileSync(labels + ".gz", gzipSync(data.writeIdx({ type: "f64", shape: [2], data: [3, 65535] })));
    assert.equal(Array.from((await data.loadIdxFolder(dir)).test.y), [3, 65535]);
    writeFileSync(labels + ".gz", gzipSync(data.writeIdx({ shape: [2], data: [1, 0] })).subarray(0, 20));
    await data.loadIdxFolder(dir).then(() => assert.unreachable(), (e) => assert.match(e.message, new RegExp(`^${labels}\\.gz: not valid gzip data \\(unexpected end of file\\)`)));
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("Dataset.fromIdxBytes: a float, NaN or huge label is an error naming the file and the index", () => {
  const img = new Uint8Array([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 7, 9]);
  for (const [v, re] of [[0.9, /label 0 is 0\.9/], [NaN, /label 0 is NaN/], [1e10, /label 0 is 10000000000/]]) {
    // a float64 label file: magic 0x0d (f64), one dimension of 2
    const lab = new Uint8Array(8 + 16);
    lab.set([0, 0, 0x0e, 1, 0, 0, 0, 2]);
    const dv = new DataView(lab.buffer);
    dv.setFloat64(8, v, false);
    dv.setFloat64(16, 1, false);
    assert.throws(() => sn.Dataset.fromIdxBytes(img, lab, { what: "bad" }), (e) => re.test(e.message) && /bad labels/.test(e.message), String(v));
  }
});

test.run();
