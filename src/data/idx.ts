// The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a magic
// number 0x0000TTDD (TT the element type, DD the number of dimensions), DD big-endian uint32
// sizes, then the values, big-endian. The reader takes bytes; gunzip() unpacks .gz files.
import { isNode, nodeZlib } from "../platform/index.js";
import { badArgument } from "../options.js";

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
  if (!(bytes instanceof Uint8Array)) badArgument("isGzip", "the data", "a Uint8Array", bytes);
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** The header: type, shape and the file's exact length (a BigInt: the product of up to 255
 *  uint32 sizes is past 2^53, where a float product would round and could match a wrong length). */
function readHeader(bytes: Uint8Array, what: string) {
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
  // a zero size is a valid IDX file of no values, but no data set or label file has one; the
  // other sizes would then be unchecked by the length and may be anything
  const zero = shape.indexOf(0);
  if (zero >= 0) throw new IdxError(`${what}: size ${zero} of shape [${shape}] is 0: the file holds no values (a corrupt header?)`);
  const dataBytes = shape.reduce((a, b) => a * BigInt(b), BigInt(t.bytes));
  return { t, shape, headerBytes, dataBytes, total: BigInt(headerBytes) + dataBytes };
}

/** Parse an IDX file. `what` names it in errors (e.g. the file name). */
export function parseIdx(bytes: Uint8Array, what = "IDX file"): IdxArray {
  if (!(bytes instanceof Uint8Array)) throw new IdxError(`${what}: expected a Uint8Array of bytes`);
  if (isGzip(bytes)) throw new IdxError(`${what}: the bytes are gzip-compressed; gunzip them first (await gunzip(bytes))`);
  const { t, shape, headerBytes, dataBytes, total } = readHeader(bytes, what);
  const have = BigInt(bytes.length);
  if (have < total) throw new IdxError(`${what}: truncated: shape [${shape}] of ${t.type} needs ${dataBytes} bytes of data, the file has ${bytes.length - headerBytes}`);
  if (have > total) throw new IdxError(`${what}: ${have - total} bytes after the end of the data for shape [${shape}] (wrong shape or a corrupt file)`);
  const need = bytes.length, count = (need - headerBytes) / t.bytes;
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
  if (arr === null || typeof arr !== "object" || !Array.isArray(arr.shape) || arr.data === null || typeof arr.data !== "object" || typeof arr.data.length !== "number")
    badArgument("writeIdx", "its argument", "{ type?, shape: sizes, data: numbers }", arr);
  const type = arr.type ?? "u8";
  const code = Number(Object.entries(TYPES).find(([, v]) => v.type === type)![0]);
  const size = TYPES[code].bytes;
  // what parseIdx would refuse is refused here, before a file is written
  if (arr.shape.length < 1 || arr.shape.length > 255 || !arr.shape.every((d) => Number.isInteger(d) && d >= 1 && d <= 0xffffffff))
    throw new IdxError(`writeIdx: shape [${arr.shape}] must have 1 to 255 sizes, each from 1 to 2^32 - 1`);
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

/** The most bytes gunzip unpacks (1 GiB; a data set as float32 is 4 times that), unless told
 *  otherwise: a small corrupt or malicious .gz can otherwise claim gigabytes. */
export const GUNZIP_MAX_BYTES = 2 ** 30;

/** Unpack a gzipped IDX file: node:zlib in Node, DecompressionStream in browsers. The output is
 *  read in chunks and stopped as soon as it passes the length the IDX header declares (or
 *  `maxBytes`), so a gzip bomb costs at most that much memory. Errors name `what`. */
export async function gunzip(bytes: Uint8Array, what = "gzip data", maxBytes = GUNZIP_MAX_BYTES): Promise<Uint8Array> {
  if (!(bytes instanceof Uint8Array)) badArgument("gunzip", "the data", "a Uint8Array", bytes);
  let next: () => Promise<Uint8Array | undefined>, stop: () => void;
  if (isNode) {
    const zlib = await nodeZlib();
    const z = zlib.createGunzip({ chunkSize: 1 << 16 });
    z.end(bytes);
    const it = z[Symbol.asyncIterator]();
    next = async () => (await it.next()).value;
    stop = () => z.destroy();
  } else {
    if (typeof DecompressionStream === "undefined") throw new IdxError(`${what}: this runtime has neither node:zlib nor DecompressionStream to gunzip with`);
    const reader = new Blob([bytes.slice() as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream("gzip")).getReader();
    next = async () => (await reader.read()).value;
    stop = () => void reader.cancel().catch(() => {});
  }
  const chunks: Uint8Array[] = [];
  let size = 0, limit = maxBytes, known = false;
  try {
    for (let c; (c = await next()); ) {
      chunks.push(c);
      size += c.length;
      if (!known && size >= 4) {
        // once the header is in (at most 1,020 bytes), the exact length is known; readHeader
        // throws for bytes that are not IDX, as parseIdx would
        const head = chunks.length === 1 ? c : concat(chunks, size);
        if (size >= 4 + 4 * head[3] || head[3] === 0) {
          const { shape, total } = readHeader(head, what);
          if (total > BigInt(maxBytes)) throw new IdxError(`${what}: its IDX header declares shape [${shape}], ${total} bytes, over the limit of ${maxBytes} bytes to unpack`);
          (limit = Number(total)), (known = true);
        }
      }
      if (size > limit)
        throw new IdxError(known ? `${what}: unpacks to more than the ${limit} bytes its IDX header declares (a corrupt file)` : `${what}: unpacks to more than ${limit} bytes`);
    }
  } catch (e) {
    if (e instanceof IdxError) throw e;
    throw new IdxError(`${what}: not valid gzip data (${(e as Error).message})`);
  } finally {
    stop();
  }
  return concat(chunks, size);
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) (out.set(c, at), (at += c.length));
  return out;
}

/** IDX labels as class indices: every value an integer in [0, maxLabel]. A float label would
 *  otherwise be truncated (0.9 and NaN become 0) and a huge one would make as many classes as
 *  its value (1e10 runs out of memory). Errors name `what` and the index. */
export function idxLabels(arr: IdxArray, what = "IDX labels", maxLabel = 65535): Int32Array {
  const d = arr.data;
  // u8 labels are all in range (the common case: no check needed)
  if (d instanceof Uint8Array && maxLabel >= 255) return Int32Array.from(d);
  const out = new Int32Array(d.length);
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    if (!Number.isInteger(v) || v < 0 || v > maxLabel) throw new IdxError(`${what}: label ${i} is ${v}; labels must be integer class indices from 0 to ${maxLabel}`);
    out[i] = v;
  }
  return out;
}
