// safetensors (https://github.com/huggingface/safetensors): 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets}, __metadata__: {string: string}}, then the data
// (little-endian, which every platform that runs wasm is). Read: F32, F64, F16, BF16 and the
// integer types, as float32; written: F32.
export interface SafeTensor {
  dtype: string;
  shape: number[];
  data: Float32Array;
}

export interface SafeFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

export class SafetensorsError extends Error {}

/** Bytes per element of the dtypes read (all become float32: what the engine computes in). */
const DTYPE_BYTES: Record<string, number> = { F32: 4, F64: 8, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** IEEE half precision bits to a number (normals, subnormals, infinities, NaN). */
function halfToFloat(b: number): number {
  const sign = b & 0x8000 ? -1 : 1, e = (b >> 10) & 0x1f, m = b & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

function toFloat32(dtype: string, raw: ArrayBuffer, count: number): Float32Array {
  switch (dtype) {
    case "F32":
      return new Float32Array(raw);
    case "F64":
      return Float32Array.from(new Float64Array(raw));
    case "F16":
      return Float32Array.from(new Uint16Array(raw), halfToFloat);
    case "BF16": {
      // bfloat16 is the top half of a float32
      const out = new Uint32Array(count), src = new Uint16Array(raw);
      for (let i = 0; i < count; i++) out[i] = src[i] << 16;
      return new Float32Array(out.buffer);
    }
    case "I64":
      return Float32Array.from(new BigInt64Array(raw), (v) => Number(v));
    case "I32":
      return Float32Array.from(new Int32Array(raw));
    case "I16":
      return Float32Array.from(new Int16Array(raw));
    case "I8":
      return Float32Array.from(new Int8Array(raw));
    default: // U8, BOOL
      return Float32Array.from(new Uint8Array(raw));
  }
}

/** The reference implementation's limit on the header (100 MB): a larger length is damage, and
 *  refusing it up front keeps a corrupt length from making us decode and parse a huge string. */
const MAX_HEADER = 100_000_000;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isIndex = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
/** What a value is, for an error message (never its contents: it may be a whole file). */
const kindOf = (v: unknown): string =>
  v === null || v === undefined ? String(v) : Array.isArray(v) ? `an array of ${v.length}` : ArrayBuffer.isView(v) ? `a ${v.constructor.name}` : typeof v === "object" ? "an object" : typeof v;

/** Read a safetensors file. Everything the header says is checked against the format's rules
 *  before any tensor is allocated, so a damaged file throws a SafetensorsError naming `what`,
 *  the tensor and the problem instead of loading shifted or overlapping bytes as weights. */
export function parseSafetensors(bytes: Uint8Array, what = "safetensors file"): SafeFile {
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${what}: ${msg}`);
  };
  if (!(bytes instanceof Uint8Array)) fail(`expected the file's bytes as a Uint8Array, got ${kindOf(bytes)}`);
  if (bytes.byteLength < 8) fail(`too short (${bytes.byteLength} bytes) to be safetensors`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // a u64: compared as a BigInt so that a length above 2^53 cannot round into range
  const n64 = dv.getBigUint64(0, true);
  if (n64 > BigInt(bytes.byteLength - 8)) fail(`bad header: length ${n64} is past the end of the file (${bytes.byteLength} bytes)`);
  const n = Number(n64);
  if (n > MAX_HEADER) fail(`bad header: length ${n} is over the format's limit of ${MAX_HEADER} bytes`);
  let header: unknown;
  try {
    // fatal: the format requires UTF-8; a replacement character could hide a damaged name
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`bad header: not JSON (${(e as Error).message})`);
  }
  if (!isObject(header)) fail(`bad header: a JSON object of tensors is needed, got ${Array.isArray(header) ? "an array" : JSON.stringify(header)}`);
  const head = header as Record<string, unknown>;
  const meta = head.__metadata__ ?? {};
  if (!isObject(meta)) fail(`bad header: __metadata__ must be an object of strings, got ${JSON.stringify(meta)}`);
  for (const [k, v] of Object.entries(meta as object)) if (typeof v !== "string") fail(`bad header: __metadata__ '${k}' is ${JSON.stringify(v)}, not a string`);

  // pass 1: check every entry (nothing allocated yet, so a lying header costs nothing)
  const base = 8 + n, dataLen = bytes.byteLength - base;
  const entries: { name: string; dtype: string; shape: number[]; begin: number; end: number; count: number }[] = [];
  for (const [name, h] of Object.entries(head)) {
    if (name === "__metadata__") continue;
    const bad = (msg: string): never => fail(`tensor '${name}': ${msg}`);
    if (!isObject(h)) bad(`bad header entry ${JSON.stringify(h)}: needs dtype, shape and data_offsets`);
    const { dtype, shape, data_offsets: off } = h as Record<string, unknown>;
    if (typeof dtype !== "string" || DTYPE_BYTES[dtype] === undefined) bad(`dtype ${dtype} is not supported (${Object.keys(DTYPE_BYTES).join(", ")})`);
    if (!Array.isArray(shape) || !shape.every(isIndex)) bad(`shape ${JSON.stringify(shape)} is not a list of sizes (integers >= 0)`);
    if (!Array.isArray(off) || off.length !== 2 || !off.every(isIndex) || off[0] > off[1]) bad(`data_offsets ${JSON.stringify(off)} is not [begin, end] with 0 <= begin <= end`);
    const [begin, end] = off as number[];
    if (end > dataLen) bad(`data [${begin}, ${end}) is past the end of the file (truncated?)`);
    const size = DTYPE_BYTES[dtype as string];
    // the product of sizes loses precision past 2^53: stop once it passes the data (a zero
    // size anywhere makes it 0 however large the others are)
    let count = (shape as number[]).includes(0) ? 0 : 1;
    for (const d of shape as number[]) if ((count *= d) * size > dataLen) break;
    if (count * size !== end - begin) bad(`shape [${shape}] of ${dtype} needs ${count * size > dataLen ? `more than ${dataLen}` : count * size} bytes, data has ${end - begin}`);
    entries.push({ name, dtype: dtype as string, shape: [...(shape as number[])], begin, end, count });
  }
  // the tensors must tile the data section: sorted by offset, each starts where the last ended
  // (a gap or an overlap means a damaged header), and the last ends where the file does (a
  // header length a few bytes off shifts the data section and shows up here)
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0, prev = "";
  for (const e of sorted) {
    if (e.begin !== at) fail(`tensor '${e.name}': data [${e.begin}, ${e.end}) ${e.begin > at ? `leaves a gap after byte ${at}` : `overlaps tensor '${prev}' (which ends at byte ${at})`}`);
    (at = e.end), (prev = e.name);
  }
  if (at !== dataLen) fail(`the tensors' data ends at byte ${at} but the data section has ${dataLen} bytes (bad header length or trailing bytes)`);

  // pass 2: convert
  const tensors = new Map<string, SafeTensor>();
  for (const { name, dtype, shape, begin, end, count } of entries) {
    // a copy (the data may sit at any byte offset, and typed arrays need aligned ones); not
    // bytes.slice: on a Node Buffer that is a view into a larger, shared buffer
    const raw = new Uint8Array(bytes.subarray(base + begin, base + end)).buffer;
    tensors.set(name, { dtype, shape, data: toFloat32(dtype, raw, count) });
  }
  return { tensors, metadata: { ...(meta as Record<string, string>) } };
}

export function serializeSafetensors(tensors: Map<string, { shape: readonly number[]; data: Float32Array }> | Record<string, { shape: readonly number[]; data: Float32Array }>, metadata: Record<string, string> = {}): Uint8Array {
  if (!(tensors instanceof Map) && !isObject(tensors))
    throw new SafetensorsError(`serializeSafetensors: the tensors must be a Map or an object of name -> { shape, data }, got ${kindOf(tensors)}`);
  if (!isObject(metadata)) throw new SafetensorsError(`serializeSafetensors: the metadata must be an object of strings, got ${kindOf(metadata)}`);
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [name, t] of entries)
    if (!isObject(t) || !Array.isArray(t.shape) || !t.shape.every(isIndex) || !(t.data instanceof Float32Array))
      throw new SafetensorsError(`serializeSafetensors: tensor '${name}' must be { shape: sizes, data: Float32Array }, got ${isObject(t) ? `{ shape: ${kindOf(t.shape)}, data: ${kindOf(t.data)} }` : kindOf(t)}`);
  // what the reader would refuse is refused here, before a file is written
  for (const [k, v] of Object.entries(metadata)) if (typeof v !== "string") throw new SafetensorsError(`serializeSafetensors: metadata '${k}' is ${JSON.stringify(v)}, not a string`);
  const header: any = { __metadata__: metadata };
  let off = 0;
  for (const [name, t] of entries) {
    if (name === "__metadata__") throw new SafetensorsError("serializeSafetensors: '__metadata__' is reserved, not a tensor name");
    if (t.shape.reduce((a, b) => a * b, 1) !== t.data.length) throw new SafetensorsError(`serializeSafetensors: tensor '${name}': ${t.data.length} values do not fill shape [${t.shape}]`);
    header[name] = { dtype: "F32", shape: [...t.shape], data_offsets: [off, off + t.data.length * 4] };
    off += t.data.length * 4;
  }
  let h = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (h.length % 8)) % 8;
  if (pad) {
    const p = new Uint8Array(h.length + pad).fill(0x20);
    p.set(h);
    h = p;
  }
  const out = new Uint8Array(8 + h.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  let p = 8 + h.length;
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.length * 4), p);
    p += t.data.length * 4;
  }
  return out;
}
