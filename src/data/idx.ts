// The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a magic
// number 0x0000TTDD (TT the element type, DD the number of dimensions), DD big-endian uint32
// sizes, then the values, big-endian. The reader takes bytes; gunzip() unpacks .gz files.

export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  type: "u8" | "i8" | "i16" | "i32" | "f32" | "f64";
  shape: number[];
  data: IdxData;
}

export class IdxError extends Error {}

const TYPES: Record<number, { type: IdxArray["type"]; bytes: number }> = {
  0x08: { type: "u8", bytes: 1 },
  0x09: { type: "i8", bytes: 1 },
  0x0b: { type: "i16", bytes: 2 },
  0x0c: { type: "i32", bytes: 4 },
  0x0d: { type: "f32", bytes: 4 },
  0x0e: { type: "f64", bytes: 8 },
};

const hex = (v: number) => "0x" + (v >>> 0).toString(16).padStart(8, "0");

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Parse an IDX file. `what` names it in errors (e.g. the file name). */
export function parseIdx(bytes: Uint8Array, what = "IDX file"): IdxArray {
  if (!(bytes instanceof Uint8Array)) throw new IdxError(`${what}: expected a Uint8Array of bytes`);
  if (isGzip(bytes)) throw new IdxError(`${what}: the bytes are gzip-compressed; gunzip them first (await gunzip(bytes))`);
  if (bytes.length < 4) throw new IdxError(`${what}: ${bytes.length} bytes is too short for an IDX header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = dv.getUint32(0, false);
  const t = TYPES[bytes[2]];
  const ndim = bytes[3];
  if (bytes[0] !== 0 || bytes[1] !== 0 || !t || ndim === 0)
    throw new IdxError(`${what}: bad magic number ${hex(magic)}: an IDX file starts with 0x0000TTDD (TT the type 08/09/0B/0C/0D/0E, DD the number of dimensions)`);
  const headerBytes = 4 + 4 * ndim;
  if (bytes.length < headerBytes) throw new IdxError(`${what}: truncated header: ${ndim} dimensions need ${headerBytes} bytes, the file has ${bytes.length}`);
  const shape: number[] = [];
  for (let i = 0; i < ndim; i++) shape.push(dv.getUint32(4 + 4 * i, false));
  const count = shape.reduce((a, b) => a * b, 1);
  const need = headerBytes + count * t.bytes;
  if (bytes.length < need)
    throw new IdxError(`${what}: truncated: shape [${shape}] of ${t.type} needs ${count * t.bytes} bytes of data, the file has ${bytes.length - headerBytes}`);
  if (bytes.length > need) throw new IdxError(`${what}: ${bytes.length - need} bytes after the end of the data for shape [${shape}] (wrong shape or a corrupt file)`);
  let data: IdxData;
  const body = bytes.subarray(headerBytes, need);
  switch (t.type) {
    case "u8":
      data = body.slice();
      break;
    case "i8":
      data = new Int8Array(body.slice().buffer);
      break;
    default: {
      // big-endian to native, element by element
      const C = { i16: Int16Array, i32: Int32Array, f32: Float32Array, f64: Float64Array }[t.type];
      const out = new C(count);
      const bd = new DataView(body.buffer, body.byteOffset, body.byteLength);
      const get = { i16: bd.getInt16, i32: bd.getInt32, f32: bd.getFloat32, f64: bd.getFloat64 }[t.type].bind(bd);
      for (let i = 0; i < count; i++) out[i] = get(i * t.bytes, false);
      data = out;
    }
  }
  return { type: t.type, shape, data };
}

/** Write an IDX file (tests, and exporting data sets). */
export function writeIdx(arr: { type?: IdxArray["type"]; shape: number[]; data: ArrayLike<number> }): Uint8Array {
  const type = arr.type ?? "u8";
  const code = Number(Object.entries(TYPES).find(([, v]) => v.type === type)![0]);
  const size = TYPES[code].bytes;
  const count = arr.shape.reduce((a, b) => a * b, 1);
  if (count !== arr.data.length) throw new IdxError(`writeIdx: ${arr.data.length} values do not fill shape [${arr.shape}]`);
  const out = new Uint8Array(4 + 4 * arr.shape.length + count * size);
  const dv = new DataView(out.buffer);
  out[2] = code;
  out[3] = arr.shape.length;
  arr.shape.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  const base = 4 + 4 * arr.shape.length;
  const set = { u8: dv.setUint8, i8: dv.setInt8, i16: dv.setInt16, i32: dv.setInt32, f32: dv.setFloat32, f64: dv.setFloat64 }[type].bind(dv) as (o: number, v: number, le?: boolean) => void;
  for (let i = 0; i < count; i++) set(base + i * size, arr.data[i], false);
  return out;
}

/** Unpack gzip: node:zlib in Node, DecompressionStream in browsers. */
export async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  if (typeof process !== "undefined" && process.versions?.node) {
    const zlib = await import("node:zlib");
    return new Uint8Array(zlib.gunzipSync(bytes));
  }
  if (typeof DecompressionStream === "undefined") throw new IdxError("gunzip: this runtime has neither node:zlib nor DecompressionStream");
  const stream = new Blob([bytes.slice() as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
