// Fuzzing the safetensors reader: valid files made here, mutated thousands of ways (seeded, so
// every run tries the same inputs). Each mutated file must either load or throw a
// SafetensorsError naming the file; never another error (a RangeError from allocating what a
// damaged header claims), never a hang, never a large allocation. What loads is checked:
// - against an oracle written here from the format's rules alone (u64 header length, a JSON
//   object header, [begin, end] offsets that tile the data section exactly, shapes of
//   non-negative integers, bytes = product(shape) * dtype size, __metadata__ of strings), so a
//   header edit that still gives a valid file (two same-size tensors' offsets swapped, a shape
//   [2,3] made [3,2]) must load as that file says, and one that does not must throw;
// - and by the kind of mutation: a changed header length, a truncated or extended file always
//   throws (every tensor would be shifted or cut); an edit that leaves the header's JSON value
//   as it was loads exactly the original; a flipped bit in the data section loads the original
//   with at most the one element holding that byte changed.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { fuzzRng } from "./helpers.mjs";

const WHAT = "fuzz.safetensors";
const RUNS = 6000;

const rand = fuzzRng(20240611);
const int = (n) => Math.floor(rand() * n);
const pick = (xs) => xs[int(xs.length)];

const enc = new TextEncoder();
const SIZES = { F32: 4, F64: 8, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** a file from a header object (JSON.stringify'd, plus `pad` spaces) and the data bytes */
function build(header, data, pad = 0) {
  const h = enc.encode(JSON.stringify(header) + " ".repeat(pad));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function split(file) {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return { n, header: JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))), data: file.subarray(8 + n) };
}

// ---- seed files ----
const seeds = [];
{
  // what serializeSafetensors writes (F32, a header padded with spaces to 8 bytes, which makes
  // a header length a few bytes short still parse as JSON): a scalar, an empty tensor, metadata
  const t = new Map();
  for (const [name, shape] of [["conv.weight", [4, 2, 3, 3]], ["conv.bias", [4]], ["bn.num_batches_tracked", []], ["empty", [0, 3]], ["fc.weight", [3, 8]]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    t.set(name, { shape, data: Float32Array.from({ length: n }, () => (rand() - 0.5) * 4) });
  }
  seeds.push(sn.serializeSafetensors(t, { format: "pt", note: "fuzz seed" }));
  // every dtype the reader takes, random bytes (so NaNs and infinities too), an odd header length
  const header = { __metadata__: { a: "1" } }, chunks = [];
  let off = 0;
  for (const [i, dtype] of Object.keys(SIZES).entries()) {
    const shape = i % 3 === 0 ? [2, 3] : i % 3 === 1 ? [5] : [1, 2, 2];
    const bytes = Uint8Array.from({ length: shape.reduce((a, b) => a * b, 1) * SIZES[dtype] }, () => int(256));
    header[`t${i}_${dtype}`] = { dtype, shape, data_offsets: [off, off + bytes.length] };
    chunks.push(bytes);
    off += bytes.length;
  }
  const data = new Uint8Array(off);
  let at = 0;
  for (const c of chunks) (data.set(c, at), (at += c.length));
  seeds.push(build(header, data, (enc.encode(JSON.stringify(header)).length % 2) ? 0 : 1));
  // two tensors of the same size (offset swaps are then valid files), keys out of offset order
  const two = { b: { dtype: "F32", shape: [2, 2], data_offsets: [16, 32] }, a: { dtype: "F32", shape: [4], data_offsets: [0, 16] } };
  seeds.push(build(two, Uint8Array.from({ length: 32 }, () => int(256)), 3));
}

// ---- the oracle: the format's rules, written independently of the reader ----
function half(b) {
  const s = b & 0x8000 ? -1 : 1, e = (b >> 10) & 31, m = b & 1023;
  return e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
}
function decode(dtype, dv, at) {
  switch (dtype) {
    case "F32": return dv.getFloat32(at, true);
    case "F64": return dv.getFloat64(at, true);
    case "F16": return half(dv.getUint16(at, true));
    case "BF16": {
      const f = new DataView(new ArrayBuffer(4));
      f.setUint32(0, dv.getUint16(at, true) << 16);
      return f.getFloat32(0);
    }
    case "I64": return Number(dv.getBigInt64(at, true));
    case "I32": return dv.getInt32(at, true);
    case "I16": return dv.getInt16(at, true);
    case "I8": return dv.getInt8(at);
    default: return dv.getUint8(at);
  }
}
const plain = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const index = (v) => Number.isSafeInteger(v) && v >= 0;

/** the tensors the file holds by the rules, or null where it breaks one */
function oracle(file) {
  if (file.length < 8) return null;
  const n = new DataView(file.buffer, file.byteOffset).getBigUint64(0, true);
  if (n > BigInt(file.length - 8)) return null;
  let h;
  try {
    h = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(file.subarray(8, 8 + Number(n))));
  } catch {
    return null;
  }
  if (!plain(h)) return null;
  // null: no metadata (as the reference reader's Option reads it)
  if (h.__metadata__ != null && !(plain(h.__metadata__) && Object.values(h.__metadata__).every((v) => typeof v === "string"))) return null;
  const base = 8 + Number(n), len = file.length - base, list = [];
  for (const [name, e] of Object.entries(h)) {
    if (name === "__metadata__") continue;
    if (!plain(e) || !(e.dtype in SIZES) || !Array.isArray(e.shape) || !e.shape.every(index)) return null;
    const o = e.data_offsets;
    if (!Array.isArray(o) || o.length !== 2 || !o.every(index) || o[0] > o[1] || o[1] > len) return null;
    if (e.shape.reduce((a, b) => a * b, 1) * SIZES[e.dtype] !== o[1] - o[0]) return null;
    list.push({ name, dtype: e.dtype, shape: e.shape, begin: o[0], end: o[1] });
  }
  let at = 0;
  for (const e of [...list].sort((a, b) => a.begin - b.begin || a.end - b.end)) {
    if (e.begin !== at) return null;
    at = e.end;
  }
  if (at !== len) return null;
  const dv = new DataView(file.buffer, file.byteOffset + base, len);
  const tensors = new Map();
  for (const e of list) {
    const size = SIZES[e.dtype], data = new Float32Array((e.end - e.begin) / size);
    for (let i = 0; i < data.length; i++) data[i] = decode(e.dtype, dv, e.begin + i * size);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata: h.__metadata__ ?? {} };
}

const same = (a, b) => a === b || (Number.isNaN(a) && Number.isNaN(b));

/** where two loaded files differ ("" if nowhere); skip(name, i) excuses one element */
function diff(got, want, skip = () => false) {
  const names = (f) => [...f.tensors.keys()].sort().join("|");
  if (names(got) !== names(want)) return `names ${names(got)} vs ${names(want)}`;
  if (JSON.stringify(got.metadata) !== JSON.stringify(want.metadata)) return "metadata";
  for (const [name, w] of want.tensors) {
    const g = got.tensors.get(name);
    if (g.dtype !== w.dtype || JSON.stringify(g.shape) !== JSON.stringify(w.shape) || g.data.length !== w.data.length) return `${name}: dtype/shape`;
    for (let i = 0; i < w.data.length; i++) if (!skip(name, i) && !same(g.data[i], w.data[i])) return `${name}[${i}]: ${g.data[i]} vs ${w.data[i]}`;
  }
  return "";
}

const sameBytes = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

// ---- mutations: each returns { file, kind } ----
function flipBits(file, from, to, bits = 1 + int(3)) {
  const b = file.slice();
  for (let k = 0; k < bits; k++) b[from + int(to - from)] ^= 1 << int(8);
  return b;
}

const WEIRD = [-1, -8, 0.5, 1e300, 2 ** 53, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, "8", null, true, [], {}, 1e-7];

/** one random edit of the header's JSON value (the data section as it was) */
function jsonEdit(header) {
  const h = structuredClone(header);
  const names = Object.keys(h).filter((k) => k !== "__metadata__");
  const name = pick(names), e = h[name];
  switch (int(14)) {
    case 0: e.data_offsets[int(2)] += pick([-1, 1, -4, 4, 8, -8, 1000]); break;
    case 1: e.data_offsets[int(2)] = pick(WEIRD); break;
    case 2: e.data_offsets = pick([[...e.data_offsets].reverse(), [e.data_offsets[0]], [...e.data_offsets, 0], "0,8", null, [-16, 0]]); break;
    case 3: e.shape[int(Math.max(1, e.shape.length))] = pick(WEIRD); break;
    case 4: e.shape = pick([[...e.shape].reverse(), [e.shape.reduce((a, b) => a * b, 1)], [1, ...e.shape], [...e.shape, 2], e.shape.slice(1), [2 ** 40, 2 ** 40], [2 ** 60, 0], "[4]", null]); break;
    case 5: e.dtype = pick([...Object.keys(SIZES), "f32", "C64", "F8_E4M3", "", 4, null]); break;
    case 6: delete h[name]; break;
    case 7: h[`${name}.copy`] = structuredClone(e); break;
    case 8: { // swap two tensors' offsets
      const other = h[pick(names)];
      [e.data_offsets, other.data_offsets] = [other.data_offsets, e.data_offsets];
      break;
    }
    case 9: h.__metadata__ = pick([{ x: 1 }, { x: null }, { x: ["a"] }, [], "pt", 7, null, { y: "ok" }, { x: { y: "z" } }]); break;
    case 10: h[name] = pick([null, 3, "F32", [e], { dtype: e.dtype }, { ...e, extra: 1 }]); break;
    case 11: return pick([[h], "header", 42, null, []]);
    case 12: h[""] = { dtype: "U8", shape: [0], data_offsets: [0, 0] }; break; // a valid extra, empty tensor
    default: { // rename (a different, valid file) or no change at all (the same file)
      if (rand() < 0.5) {
        h[name + "_x"] = e;
        delete h[name];
      }
    }
  }
  return h;
}

function mutate(seed) {
  const { n, header, data } = split(seed);
  const len = seed.length;
  switch (int(11)) {
    case 0: return { kind: "any bits", file: flipBits(seed, 0, len) };
    case 1: return { kind: "header bits", file: flipBits(seed, 8, 8 + n) };
    case 2: { // the header length: a flipped bit, off by a little, or absurd
      const b = seed.slice();
      const dv = new DataView(b.buffer);
      const v = pick([() => BigInt(n ^ (1 << int(20))), () => BigInt(n + pick([-7, -6, -5, -4, -3, -2, -1, 1, 2, 3, 7, 8])), () => 1n << BigInt(int(64)), () => 2n ** 64n - 1n, () => 2n ** 53n + 1n])();
      dv.setBigUint64(0, v & (2n ** 64n - 1n), true);
      if (v === BigInt(n)) dv.setBigUint64(0, BigInt(n + 1), true);
      return { kind: "length", file: b };
    }
    case 3: return { kind: "truncated", file: seed.slice(0, int(len)) };
    case 4: { // extended with zeros, spaces or random bytes
      const extra = 1 + int(64), b = new Uint8Array(len + extra);
      b.set(seed);
      const fill = pick([0, 0x20, -1]);
      for (let i = len; i < b.length; i++) b[i] = fill < 0 ? int(256) : fill;
      return { kind: "extended", file: b };
    }
    case 5: case 6: { // a byte of the header deleted, inserted or replaced, the length kept right
      const h = seed.subarray(8, 8 + n), at = int(n), op = int(3);
      const nh = op === 0 ? new Uint8Array([...h.subarray(0, at), ...h.subarray(at + 1)]) : op === 1 ? new Uint8Array([...h.subarray(0, at), pick([0x20, 0x30 + int(10), int(256), 0x2c, 0x7d, 0x22]), ...h.subarray(at)]) : Uint8Array.from(h, (c, i) => (i === at ? 0x20 + int(95) : c));
      const b = new Uint8Array(8 + nh.length + data.length);
      new DataView(b.buffer).setBigUint64(0, BigInt(nh.length), true);
      b.set(nh, 8);
      b.set(data, 8 + nh.length);
      return { kind: "header bytes", file: b };
    }
    case 7: case 8: return { kind: "json", file: build(jsonEdit(header), data, int(3)), json: true };
    default: { // data section only: flip one bit
      const b = seed.slice(), at = int(data.length);
      b[8 + n + at] ^= 1 << int(8);
      return { kind: "data", file: b, dataAt: at };
    }
  }
}

test(`safetensors: ${RUNS} mutated files each load as the format says or throw a SafetensorsError naming the file; none loads shifted, overlapping or cut data`, () => {
  const originals = seeds.map((s) => sn.parseSafetensors(s, WHAT));
  originals.forEach((o, i) => assert.is(diff(o, oracle(seeds[i])), "", `seed ${i} loads as the oracle reads it`));
  const rss0 = process.memoryUsage().rss;
  let rssMax = rss0, slowest = 0;
  const counts = {};
  for (let run = 0; run < RUNS; run++) {
    const si = int(seeds.length), seed = seeds[si];
    const m = mutate(seed);
    const where = `run ${run} (seed ${si}, ${m.kind})`;
    const t0 = performance.now();
    let got = null, err = null;
    try {
      got = sn.parseSafetensors(m.file, WHAT);
    } catch (e) {
      err = e;
    }
    slowest = Math.max(slowest, performance.now() - t0);
    if (run % 250 === 0) rssMax = Math.max(rssMax, process.memoryUsage().rss);
    const want = oracle(m.file);
    const c = (counts[m.kind] ??= { loaded: 0, refused: 0 });
    if (err) {
      c.refused++;
      if (!(err instanceof sn.SafetensorsError)) throw new Error(`${where}: threw ${err?.constructor?.name}: ${err?.message}, not a SafetensorsError`);
      assert.ok(err.message.startsWith(`${WHAT}: `), `${where}: the error names the file: ${err.message}`);
      if (want) throw new Error(`${where}: refused a valid file: ${err.message}`);
      continue;
    }
    c.loaded++;
    if (!want) throw new Error(`${where}: loaded a file that breaks the format's rules: ${new TextDecoder().decode(m.file.subarray(8, 8 + split(m.file).n))}`);
    const d = diff(got, want);
    if (d) throw new Error(`${where}: loaded other values than the file holds: ${d}`);
    if (m.kind === "length" || m.kind === "truncated" || m.kind === "extended") throw new Error(`${where}: a ${m.kind} file loaded`);
    const orig = originals[si];
    if (m.kind === "data") {
      // only the element holding the flipped byte may differ
      const hd = split(seed).header;
      const [name, e] = Object.entries(hd).find(([k, e]) => k !== "__metadata__" && m.dataAt >= e.data_offsets[0] && m.dataAt < e.data_offsets[1]);
      const el = Math.floor((m.dataAt - e.data_offsets[0]) / SIZES[e.dtype]);
      const dd = diff(got, orig, (nm, i) => nm === name && i === el);
      if (dd) throw new Error(`${where}: a flipped data bit changed more than its element: ${dd}`);
    } else if (JSON.stringify(split(m.file).header) === JSON.stringify(split(seed).header) && sameBytes(split(m.file).data, split(seed).data)) {
      const dd = diff(got, orig);
      if (dd) throw new Error(`${where}: the same header loaded other tensors: ${dd}`);
    }
  }
  rssMax = Math.max(rssMax, process.memoryUsage().rss);
  console.log(`  safetensors fuzz: ${Object.entries(counts).map(([k, v]) => `${k} ${v.loaded} loaded / ${v.refused} refused`).join("; ")}; slowest ${slowest.toFixed(1)} ms; rss +${((rssMax - rss0) / 2 ** 20).toFixed(0)} MiB`);
  assert.ok(counts.data.loaded > 0 && counts.data.refused === 0, "every data-only mutation loads");
  assert.ok(slowest < 1000, `no input takes a second (slowest ${slowest.toFixed(0)} ms)`);
  assert.ok(rssMax - rss0 < 200 * 2 ** 20, `memory stays bounded (rss grew ${((rssMax - rss0) / 2 ** 20).toFixed(0)} MiB)`);
});

test("safetensors: each rule of the format is enforced, the error naming the file, the tensor and what is wrong", () => {
  const data = new Uint8Array(24).map((_, i) => i * 7);
  const ok = { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2, 2], data_offsets: [8, 24] } };
  const edit = (fn) => {
    const h = structuredClone(ok);
    fn(h);
    return h;
  };
  const refuse = (file, re) => assert.throws(() => sn.parseSafetensors(file, WHAT), (e) => e instanceof sn.SafetensorsError && re.test(e.message), String(re));
  assert.equal([...sn.parseSafetensors(build(ok, data, 5), WHAT).tensors.keys()], ["a", "b"]);
  // negative offsets once read the header's own bytes as weights
  refuse(build(edit((h) => (h.a.data_offsets = [-8, 0])), data), /fuzz\.safetensors: tensor 'a': data_offsets \[-8,0\] is not \[begin, end\] with 0 <= begin <= end/);
  refuse(build(edit((h) => (h.a.data_offsets = [0.5, 8])), data), /tensor 'a': data_offsets \[0\.5,8\]/);
  refuse(build(edit((h) => (h.a.data_offsets = [0, 8, 8])), data), /tensor 'a': data_offsets \[0,8,8\]/);
  // a header length a few bytes short (the header ends in padding, so the JSON still parses)
  // once shifted every tensor
  for (const short of [1, 3, 5]) {
    const f = build(ok, data, 5);
    new DataView(f.buffer).setBigUint64(0, BigInt(split(f).n - short), true);
    refuse(f, new RegExp(`the tensors' data ends at byte 24 but the data section has ${24 + short} bytes \\(bad header length or trailing bytes\\)`));
  }
  const huge = build(ok, data);
  new DataView(huge.buffer).setBigUint64(0, 2n ** 63n, true);
  refuse(huge, /bad header: length 9223372036854775808 is past the end of the file/);
  // shapes: negative, strings, fractions, absurd products
  refuse(build(edit((h) => (h.b.shape = [-2, -2])), data), /tensor 'b': shape \[-2,-2\] is not a list of sizes \(integers >= 0\)/);
  refuse(build(edit((h) => (h.b.shape = ["2", 2])), data), /tensor 'b': shape \["2",2\] is not a list of sizes/);
  refuse(build(edit((h) => (h.b.shape = [2 ** 40, 2 ** 40])), data), /tensor 'b': shape \[1099511627776,1099511627776\] of F32 needs more than 24 bytes, data has 16/);
  refuse(build(edit((h) => (h.b.shape = 4)), data), /tensor 'b': shape 4 is not a list/);
  // gaps, overlaps, trailing bytes, and a last tensor past the end
  refuse(build(edit((h) => ((h.a.data_offsets = [0, 4]), (h.a.shape = [1]))), data), /tensor 'b': data \[8, 24\) leaves a gap after byte 4/);
  refuse(build(edit((h) => ((h.b.data_offsets = [4, 20]))), data), /tensor 'b': data \[4, 20\) overlaps tensor 'a' \(which ends at byte 8\)/);
  refuse(build(ok, new Uint8Array(25)), /data ends at byte 24 but the data section has 25 bytes/);
  refuse(build(ok, new Uint8Array(20)), /tensor 'b': data \[8, 24\) is past the end of the file \(truncated\?\)/);
  // header values of the wrong kind, __metadata__ not strings
  refuse(build([ok], data), /bad header: a JSON object of tensors is needed, got an array/);
  refuse(build(edit((h) => (h.a = null)), data), /tensor 'a': bad header entry null/);
  refuse(build(edit((h) => (h.__metadata__ = { epoch: 3 })), data), /bad header: __metadata__ 'epoch' is 3, not a string/);
  refuse(build(edit((h) => (h.__metadata__ = ["x"])), data), /bad header: __metadata__ must be an object of strings/);
  refuse(build(edit((h) => (h.a.dtype = 32)), data), /tensor 'a': dtype 32 is not supported/);
  // the header must be UTF-8
  const f = build(ok, data);
  f[8 + 3] = 0xff; // inside the name "a"
  refuse(f, /bad header: not JSON/);
  // allowed: empty tensors anywhere (they take no bytes), extra keys in an entry, an empty file
  const empty = edit((h) => ((h.z = { dtype: "F64", shape: [0, 5], data_offsets: [8, 8] }), (h.a.note = "kept")));
  assert.equal(sn.parseSafetensors(build(empty, data), WHAT).tensors.get("z").shape, [0, 5]);
  assert.is(sn.parseSafetensors(build({}, new Uint8Array(0)), WHAT).tensors.size, 0);
  // and the writer refuses what the reader would
  assert.throws(() => sn.serializeSafetensors({ x: { shape: [3], data: new Float32Array(2) } }), /tensor 'x': 2 values do not fill shape \[3\]/);
  assert.throws(() => sn.serializeSafetensors({}, { epoch: 3 }), /metadata 'epoch' is 3, not a string/);
});

test.run();
