// A small protobuf wire-format reader and the decoding of the ONNX messages the importer needs
// (onnx.proto3, IR version 3 to 9). Written here rather than taken from a protobuf library: the
// importer reads seven message types, and a hand-written decoder for them is a few KB of code with
// no schema compiler, no runtime reflection and no dependency (docs/onnx.md has the numbers).
// Hostile input: every length is checked against the bytes that are left before anything is
// sliced or allocated, integers past 2^53 are an error (not a silently rounded number), and
// nested graphs (If branches) are limited in depth, so a damaged file gives an OnnxError, never a
// RangeError, a hang or an allocation larger than the file.

export class OnnxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OnnxError";
  }
}

const MAX_GRAPH_DEPTH = 8;
const TAG: [number, number] = [0, 0];
const utf8 = new TextDecoder("utf-8");

/** A cursor over one message's bytes. `what` names the message for errors. */
class Reader {
  pos: number;
  constructor(readonly buf: Uint8Array, readonly what: string, start = 0, readonly end = buf.length) {
    this.pos = start;
  }

  fail(msg: string): never {
    throw new OnnxError(`onnx: ${this.what}: ${msg} (at byte ${this.pos})`);
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** A varint as a JS number: exact up to 2^53 in magnitude, an error past it. Negative int64
   *  values are ten-byte two's complement. */
  varint(): number {
    let lo = 0, hi = 0, shift = 0, b: number;
    const start = this.pos;
    do {
      if (this.pos >= this.end) this.fail("varint runs past the end of the message");
      if (this.pos - start >= 10) this.fail("varint longer than 10 bytes");
      b = this.buf[this.pos++];
      if (shift < 28) lo |= (b & 0x7f) << shift;
      else if (shift === 28) (lo |= (b & 0x0f) << 28), (hi |= (b & 0x7f) >> 4);
      else hi |= (b & 0x7f) << (shift - 32);
      shift += 7;
    } while (b & 0x80);
    lo >>>= 0;
    hi >>>= 0;
    if (hi & 0x80000000) {
      // negative: -(~value + 1)
      const mag = (~hi >>> 0) * 2 ** 32 + (~lo >>> 0) + 1;
      if (mag > 2 ** 53) this.fail(`integer -${mag} is below -2^53`);
      return -mag;
    }
    const v = hi * 2 ** 32 + lo;
    if (v > 2 ** 53) this.fail(`integer ${v} is past 2^53`);
    return v;
  }

  /** A length-delimited field: [start, end) of its bytes. */
  span(): [number, number] {
    const n = this.varint();
    if (n < 0 || n > this.end - this.pos) this.fail(`length ${n} runs past the end of the message (${this.end - this.pos} bytes left)`);
    const s = this.pos;
    this.pos += n;
    return [s, this.pos];
  }

  string(): string {
    const [s, e] = this.span();
    // names and op types are short ASCII: building them directly is several times faster than
    // TextDecoder on a tiny subarray
    if (e - s <= 64) {
      let out = "";
      for (let i = s; i < e; i++) {
        const c = this.buf[i];
        if (c >= 0x80) return utf8.decode(this.buf.subarray(s, e));
        out += String.fromCharCode(c);
      }
      return out;
    }
    return utf8.decode(this.buf.subarray(s, e));
  }

  sub(what: string): Reader {
    const n = this.varint();
    if (n < 0 || n > this.end - this.pos) this.fail(`length ${n} runs past the end of the message (${this.end - this.pos} bytes left)`);
    const r = new Reader(this.buf, what, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }

  fixed32(): number {
    if (this.end - this.pos < 4) this.fail("fixed32 runs past the end of the message");
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }

  /** The next field's number and wire type (in one reused pair: callers destructure it at once,
   *  and a fresh array per field made the garbage collector the reader's main cost). */
  tag(): [number, number] {
    const t = this.varint();
    const field = Math.floor(t / 8), wire = t % 8;
    if (field < 1) this.fail(`field number ${field} (tag ${t})`);
    TAG[0] = field;
    TAG[1] = wire;
    return TAG;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.advance(8);
    else if (wire === 2) this.span();
    else if (wire === 5) this.advance(4);
    else this.fail(`wire type ${wire} (groups and unknown wire types are not protobuf 3)`);
  }

  private advance(n: number) {
    if (this.end - this.pos < n) this.fail(`fixed field runs past the end of the message`);
    this.pos += n;
  }

  expect(wire: number, want: number, field: string): void {
    if (wire !== want) this.fail(`field '${field}' has wire type ${wire}, expected ${want}`);
  }

  /** A repeated scalar field, packed (wire type 2) or one value per tag. */
  repeated(wire: number, field: string, read: (r: Reader) => number, out: number[]): void {
    if (wire === 2) {
      const r = this.sub(`${this.what}.${field}`);
      while (!r.done()) out.push(read(r));
    } else {
      this.expect(wire, read === fixed32 ? 5 : 0, field);
      out.push(read(this));
    }
  }
}

const varint = (r: Reader) => r.varint();
const fixed32 = (r: Reader) => r.fixed32();

// ---- the ONNX messages (only the fields the importer uses; the rest are skipped) ----

export const DT = { FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13 } as const;
const DT_NAMES: Record<number, string> = Object.fromEntries(Object.entries(DT).map(([k, v]) => [v, k]));
export const dtypeName = (t: number) => DT_NAMES[t] ?? `data type ${t}`;

/** A decoded TensorProto: values as f32 (FLOAT, DOUBLE) or as exact integers (int types, BOOL). */
export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: number;
  data: Float32Array | number[];
}

export interface OnnxAttribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: string;
  t?: OnnxTensor;
  g?: OnnxGraph;
  floats: number[];
  ints: number[];
  strings: string[];
}

export interface OnnxNode {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Map<string, OnnxAttribute>;
}

export interface OnnxValueInfo {
  name: string;
  /** dims: a number, or a symbolic name (dim_param), or null when unknown */
  shape: (number | string | null)[] | null;
  elemType: number;
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
}

export interface OnnxModel {
  irVersion: number;
  opsets: Map<string, number>;
  producer: string;
  graph: OnnxGraph;
}

/** Decodes an .onnx file (a ModelProto). */
export function readModel(bytes: Uint8Array): OnnxModel {
  const r = new Reader(bytes, "ModelProto");
  const m: OnnxModel = { irVersion: 0, opsets: new Map(), producer: "", graph: null as any };
  while (!r.done()) {
    const [f, w] = r.tag();
    if (f === 1) (r.expect(w, 0, "ir_version"), (m.irVersion = r.varint()));
    else if (f === 2) (r.expect(w, 2, "producer_name"), (m.producer = r.string()));
    else if (f === 7) (r.expect(w, 2, "graph"), (m.graph = readGraph(r.sub("GraphProto"), 0)));
    else if (f === 8) {
      r.expect(w, 2, "opset_import");
      const o = r.sub("OperatorSetIdProto");
      let domain = "", version = 0;
      while (!o.done()) {
        const [g, v] = o.tag();
        if (g === 1) (o.expect(v, 2, "domain"), (domain = o.string()));
        else if (g === 2) (o.expect(v, 0, "version"), (version = o.varint()));
        else o.skip(v);
      }
      m.opsets.set(domain === "ai.onnx" ? "" : domain, version);
    } else r.skip(w);
  }
  if (!m.graph) throw new OnnxError("onnx: the file has no graph (not an ONNX model, or truncated)");
  return m;
}

function readGraph(r: Reader, depth: number): OnnxGraph {
  if (depth > MAX_GRAPH_DEPTH) r.fail(`graphs nested more than ${MAX_GRAPH_DEPTH} deep`);
  const g: OnnxGraph = { name: "", nodes: [], initializers: [], inputs: [], outputs: [] };
  while (!r.done()) {
    const [f, w] = r.tag();
    if (f === 1) (r.expect(w, 2, "node"), g.nodes.push(readNode(r.sub("NodeProto"), depth)));
    else if (f === 2) (r.expect(w, 2, "name"), (g.name = r.string()));
    else if (f === 5) (r.expect(w, 2, "initializer"), g.initializers.push(readTensor(r.sub("TensorProto"))));
    else if (f === 11) (r.expect(w, 2, "input"), g.inputs.push(readValueInfo(r.sub("ValueInfoProto"))));
    else if (f === 12) (r.expect(w, 2, "output"), g.outputs.push(readValueInfo(r.sub("ValueInfoProto"))));
    else if (f === 15) r.fail("sparse initializers are not supported");
    else r.skip(w);
  }
  return g;
}

function readNode(r: Reader, depth: number): OnnxNode {
  const n: OnnxNode = { name: "", opType: "", domain: "", inputs: [], outputs: [], attributes: new Map() };
  while (!r.done()) {
    const [f, w] = r.tag();
    if (f === 1) (r.expect(w, 2, "input"), n.inputs.push(r.string()));
    else if (f === 2) (r.expect(w, 2, "output"), n.outputs.push(r.string()));
    else if (f === 3) (r.expect(w, 2, "name"), (n.name = r.string()));
    else if (f === 4) (r.expect(w, 2, "op_type"), (n.opType = r.string()));
    else if (f === 7) (r.expect(w, 2, "domain"), (n.domain = r.string()));
    else if (f === 5) {
      r.expect(w, 2, "attribute");
      const a = readAttribute(r.sub(`attribute of node '${n.name || n.opType}'`), depth);
      n.attributes.set(a.name, a);
    } else r.skip(w);
  }
  return n;
}

function readAttribute(r: Reader, depth: number): OnnxAttribute {
  const a: OnnxAttribute = { name: "", type: 0, floats: [], ints: [], strings: [] };
  while (!r.done()) {
    const [f, w] = r.tag();
    if (f === 1) (r.expect(w, 2, "name"), (a.name = r.string()));
    else if (f === 20) (r.expect(w, 0, "type"), (a.type = r.varint()));
    else if (f === 2) (r.expect(w, 5, "f"), (a.f = r.fixed32()));
    else if (f === 3) (r.expect(w, 0, "i"), (a.i = r.varint()));
    else if (f === 4) (r.expect(w, 2, "s"), (a.s = r.string()));
    else if (f === 5) (r.expect(w, 2, "t"), (a.t = readTensor(r.sub("TensorProto"))));
    else if (f === 6) (r.expect(w, 2, "g"), (a.g = readGraph(r.sub("GraphProto"), depth + 1)));
    else if (f === 7) r.repeated(w, "floats", fixed32, a.floats);
    else if (f === 8) r.repeated(w, "ints", varint, a.ints);
    else if (f === 9) (r.expect(w, 2, "strings"), a.strings.push(r.string()));
    else if (f === 21) r.fail(`attribute '${a.name}' refers to a function attribute (ref_attr_name), which is not supported`);
    else r.skip(w);
  }
  return a;
}

function readValueInfo(r: Reader): OnnxValueInfo {
  const v: OnnxValueInfo = { name: "", shape: null, elemType: 0 };
  while (!r.done()) {
    const [f, w] = r.tag();
    if (f === 1) (r.expect(w, 2, "name"), (v.name = r.string()));
    else if (f === 2) {
      r.expect(w, 2, "type");
      const t = r.sub("TypeProto");
      while (!t.done()) {
        const [g, x] = t.tag();
        if (g !== 1) {
          t.skip(x);
          continue;
        }
        t.expect(x, 2, "tensor_type");
        const tt = t.sub("TypeProto.Tensor");
        while (!tt.done()) {
          const [h, y] = tt.tag();
          if (h === 1) (tt.expect(y, 0, "elem_type"), (v.elemType = tt.varint()));
          else if (h === 2) (tt.expect(y, 2, "shape"), (v.shape = readShape(tt.sub("TensorShapeProto"))));
          else tt.skip(y);
        }
      }
    } else r.skip(w);
  }
  return v;
}

function readShape(r: Reader): (number | string | null)[] {
  const dims: (number | string | null)[] = [];
  while (!r.done()) {
    const [f, w] = r.tag();
    if (f !== 1) {
      r.skip(w);
      continue;
    }
    r.expect(w, 2, "dim");
    const d = r.sub("Dimension");
    let dim: number | string | null = null;
    while (!d.done()) {
      const [g, x] = d.tag();
      if (g === 1) (d.expect(x, 0, "dim_value"), (dim = d.varint()));
      else if (g === 2) (d.expect(x, 2, "dim_param"), (dim = d.string()));
      else d.skip(x);
    }
    dims.push(dim);
  }
  return dims;
}

/** Bytes per element in raw_data, for the types the importer reads. */
const RAW_SIZE: Record<number, number> = { [DT.FLOAT]: 4, [DT.DOUBLE]: 8, [DT.INT64]: 8, [DT.INT32]: 4, [DT.INT16]: 2, [DT.INT8]: 1, [DT.UINT8]: 1, [DT.UINT16]: 2, [DT.UINT32]: 4, [DT.BOOL]: 1 };

function readTensor(r: Reader): OnnxTensor {
  const t = { name: "", dims: [] as number[], dataType: 0 };
  let raw: [number, number] | null = null;
  const floats: number[] = [], ints: number[] = [], doubles: number[] = [];
  let external = false;
  while (!r.done()) {
    const [f, w] = r.tag();
    if (f === 1) r.repeated(w, "dims", varint, t.dims);
    else if (f === 2) (r.expect(w, 0, "data_type"), (t.dataType = r.varint()));
    else if (f === 8) (r.expect(w, 2, "name"), (t.name = r.string()));
    else if (f === 9) (r.expect(w, 2, "raw_data"), (raw = r.span()));
    else if (f === 4) r.repeated(w, "float_data", fixed32, floats);
    else if (f === 5 || f === 7) r.repeated(w, f === 5 ? "int32_data" : "int64_data", varint, ints);
    else if (f === 10) {
      // double_data: fixed64, read as f64
      const read = (x: Reader) => {
        const [s] = [x.pos];
        if (x.end - s < 8) x.fail("double runs past the end of the message");
        x.pos += 8;
        return new DataView(x.buf.buffer, x.buf.byteOffset + s, 8).getFloat64(0, true);
      };
      if (w === 2) {
        const s = r.sub("double_data");
        while (!s.done()) doubles.push(read(s));
      } else (r.expect(w, 1, "double_data"), doubles.push(read(r)));
    } else if (f === 13) (r.skip(w), (external = true));
    else if (f === 14) (r.expect(w, 0, "data_location"), (external ||= r.varint() === 1));
    else if (f === 3) r.fail(`tensor '${t.name}' is split into segments, which is not supported`);
    else r.skip(w);
  }
  const what = `tensor '${t.name}'`;
  if (external) throw new OnnxError(`onnx: ${what} keeps its data in an external file, which is not supported (save the model with its weights inside: onnx.save(model, path, save_as_external_data=False))`);
  let count = 1;
  for (const d of t.dims) {
    if (d < 0) throw new OnnxError(`onnx: ${what} has a negative dimension in ${JSON.stringify(t.dims)}`);
    count *= d;
  }
  const size = RAW_SIZE[t.dataType];
  if (!size) throw new OnnxError(`onnx: ${what} has ${dtypeName(t.dataType)} values; supported: FLOAT, DOUBLE, INT64, INT32, INT16, INT8, UINT8, UINT16, UINT32, BOOL`);
  const shapeStr = `[${t.dims.join(", ")}]`;
  // every element must be backed by bytes actually in the file before anything is allocated
  if (raw) {
    const [s, e] = raw;
    if (e - s !== count * size) throw new OnnxError(`onnx: ${what} of shape ${shapeStr} and ${dtypeName(t.dataType)} needs ${count * size} bytes of raw_data, has ${e - s}`);
    return { ...t, data: decodeRaw(r.buf.subarray(s, e), t.dataType, count, what) };
  }
  const have = t.dataType === DT.FLOAT ? floats : t.dataType === DT.DOUBLE ? doubles : ints;
  if (have.length !== count) throw new OnnxError(`onnx: ${what} of shape ${shapeStr} has ${have.length} values, expected ${count}`);
  const isFloat = t.dataType === DT.FLOAT || t.dataType === DT.DOUBLE;
  return { ...t, data: isFloat ? Float32Array.from(have) : have };
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function decodeRaw(b: Uint8Array, type: number, count: number, what: string): Float32Array | number[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (type === DT.FLOAT) {
    // the weights: one copy of the bytes on little-endian hosts (all current ones); slice() copies
    // without first zero-filling a new buffer (Uint8Array's slice: a Node Buffer's is a view)
    if (LITTLE_ENDIAN) return new Float32Array(Uint8Array.prototype.slice.call(b).buffer);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = dv.getFloat32(4 * i, true);
    return out;
  }
  if (type === DT.DOUBLE) {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = dv.getFloat64(8 * i, true);
    return out;
  }
  const out: number[] = new Array(count);
  for (let i = 0; i < count; i++) {
    switch (type) {
      case DT.INT64: {
        // past 2^53 a JS number is no longer exact: such values become +-Infinity (torch writes
        // INT64_MAX as Slice's "to the end"); Const.ints() rejects them everywhere else
        const v = dv.getBigInt64(8 * i, true);
        out[i] = v > 2n ** 53n ? Infinity : v < -(2n ** 53n) ? -Infinity : Number(v);
        break;
      }
      case DT.INT32: out[i] = dv.getInt32(4 * i, true); break;
      case DT.UINT32: out[i] = dv.getUint32(4 * i, true); break;
      case DT.INT16: out[i] = dv.getInt16(2 * i, true); break;
      case DT.UINT16: out[i] = dv.getUint16(2 * i, true); break;
      case DT.INT8: out[i] = dv.getInt8(i); break;
      default: out[i] = b[i]; // UINT8, BOOL
    }
  }
  return out;
}
