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

export function parseSafetensors(bytes: Uint8Array, what = "safetensors file"): SafeFile {
  if (bytes.byteLength < 8) throw new SafetensorsError(`${what}: too short (${bytes.byteLength} bytes) to be safetensors`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n > bytes.byteLength - 8) throw new SafetensorsError(`${what}: bad header: length ${n} is past the end of the file (${bytes.byteLength} bytes)`);
  let header: any;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new SafetensorsError(`${what}: bad header: not JSON (${(e as Error).message})`);
  }
  const base = 8 + n;
  const tensors = new Map<string, SafeTensor>();
  for (const [name, h] of Object.entries<any>(header)) {
    if (name === "__metadata__") continue;
    if (!h || !Array.isArray(h.shape) || !Array.isArray(h.data_offsets)) throw new SafetensorsError(`${what}: tensor '${name}': bad header entry`);
    const [s, e] = h.data_offsets;
    const count = h.shape.reduce((a: number, b: number) => a * b, 1);
    if (base + e > bytes.byteLength || s > e) throw new SafetensorsError(`${what}: tensor '${name}': data [${s}, ${e}) is past the end of the file (truncated?)`);
    const size = DTYPE_BYTES[h.dtype];
    if (size === undefined) throw new SafetensorsError(`${what}: tensor '${name}': dtype ${h.dtype} is not supported (${Object.keys(DTYPE_BYTES).join(", ")})`);
    if (e - s !== count * size) throw new SafetensorsError(`${what}: tensor '${name}': shape [${h.shape}] of ${h.dtype} needs ${count * size} bytes, data has ${e - s}`);
    // a copy (the data may sit at any byte offset, and typed arrays need aligned ones); not
    // bytes.slice: on a Node Buffer that is a view into a larger, shared buffer
    const raw = new Uint8Array(bytes.subarray(base + s, base + e)).buffer;
    const data = toFloat32(h.dtype, raw, count);
    tensors.set(name, { dtype: h.dtype, shape: h.shape, data });
  }
  return { tensors, metadata: header.__metadata__ ?? {} };
}

export function serializeSafetensors(tensors: Map<string, { shape: readonly number[]; data: Float32Array }> | Record<string, { shape: readonly number[]; data: Float32Array }>, metadata: Record<string, string> = {}): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: any = { __metadata__: metadata };
  let off = 0;
  for (const [name, t] of entries) {
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
