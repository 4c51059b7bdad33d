// safetensors (https://github.com/huggingface/safetensors): 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets}, __metadata__: {string: string}}, then the data.
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
    let data: Float32Array;
    if (h.dtype === "F32") {
      if (e - s !== count * 4) throw new SafetensorsError(`${what}: tensor '${name}': shape [${h.shape}] needs ${count * 4} bytes, data has ${e - s}`);
      data = new Float32Array(count);
      new Uint8Array(data.buffer).set(bytes.subarray(base + s, base + e));
    } else if (h.dtype === "F64") {
      const f = new Float64Array(count);
      new Uint8Array(f.buffer).set(bytes.subarray(base + s, base + e));
      data = Float32Array.from(f);
    } else if (h.dtype === "I64") {
      const f = new BigInt64Array(count);
      new Uint8Array(f.buffer).set(bytes.subarray(base + s, base + e));
      data = Float32Array.from(f, (v) => Number(v));
    } else throw new SafetensorsError(`${what}: tensor '${name}': dtype ${h.dtype} is not supported (F32, F64, I64)`);
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
