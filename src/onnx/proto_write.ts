// A protobuf wire-format writer with just the ONNX messages an exporter needs (field numbers of
// onnx/onnx.proto). Our own rather than a protobuf library: the messages are seven, the writer
// is ~150 lines, needs no .proto schema at run time, and never copies a weight more than once
// (a message keeps its children's chunks until the model is serialized), which matters for
// models of hundreds of megabytes. See docs/onnx.md ("Why our own protobuf writer").
//
// Wire format: each field is a key varint (field_number << 3 | wire_type) followed by a varint
// (type 0), a length-delimited payload (type 2) or 4 little-endian bytes (type 5).

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

/** TensorProto.DataType */
export const DataType = { FLOAT: 1, INT64: 7 } as const;
/** AttributeProto.AttributeType */
const AttrType = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

const utf8 = new TextEncoder();

/** Collects a message as a list of byte chunks; nesting a message appends its chunks (no copy). */
export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  /** bytes written so far */
  length = 0;
  /** small values (keys, varints) are gathered here and flushed as one chunk */
  private scratch: number[] = [];

  private flush() {
    if (this.scratch.length) {
      this.chunks.push(Uint8Array.from(this.scratch));
      this.scratch = [];
    }
  }

  private byte(b: number) {
    this.scratch.push(b);
    this.length++;
  }

  /** An unsigned varint; a negative int64 is written as its 10-byte two's complement. */
  varint(v: number): this {
    if (!Number.isSafeInteger(v)) throw new Error(`protobuf: ${v} is not an integer that a varint can hold exactly`);
    if (v < 0) {
      let n = BigInt.asUintN(64, BigInt(v));
      for (let i = 0; i < 9; i++, n >>= 7n) this.byte(Number(n & 0x7fn) | 0x80);
      this.byte(Number(n));
      return this;
    }
    while (v >= 0x80) {
      this.byte((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.byte(v);
    return this;
  }

  private key(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  int(field: number, v: number): this {
    return this.key(field, WIRE_VARINT).varint(v);
  }

  float(field: number, v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.key(field, WIRE_FIXED32);
    for (const x of b) this.byte(x);
    return this;
  }

  /** A length-delimited field holding `payload` (kept, not copied, until finish()). */
  bytes(field: number, payload: Uint8Array): this {
    this.key(field, WIRE_LEN).varint(payload.length);
    this.flush();
    this.chunks.push(payload);
    this.length += payload.length;
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, utf8.encode(s));
  }

  /** A nested message: its chunks are appended as they are. */
  message(field: number, m: ProtoWriter): this {
    this.key(field, WIRE_LEN).varint(m.length);
    this.flush();
    m.flush();
    this.chunks.push(...m.chunks);
    this.length += m.length;
    return this;
  }

  /** packed repeated int64 */
  packedInts(field: number, values: readonly number[]): this {
    const w = new ProtoWriter();
    for (const v of values) w.varint(v);
    return this.message(field, w);
  }

  /** The message's bytes, in one buffer (the one copy of every chunk). */
  finish(): Uint8Array {
    this.flush();
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

// ---- the ONNX messages ----

export type AttrValue = number | number[] | string | { float: number } | { floats: number[] };

/** A float attribute even when the value is integral (alpha: 1.0); plain numbers that are
 *  integers are written as ints, others as floats. */
export const f32 = (v: number): { float: number } => ({ float: v });

/** AttributeProto: name=1, f=2, i=3, s=4, floats=7, ints=8, type=20 */
export function attributeProto(name: string, value: AttrValue): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  if (Array.isArray(value)) {
    for (const v of value) w.int(8, v); // unpacked, as onnx's own writers emit them
    return w.int(20, AttrType.INTS);
  }
  if (typeof value === "string") return w.bytes(4, utf8.encode(value)).int(20, AttrType.STRING);
  if (typeof value === "object" && "floats" in value) {
    for (const v of value.floats) w.float(7, v);
    return w.int(20, AttrType.FLOATS);
  }
  if (typeof value === "object") return w.float(2, value.float).int(20, AttrType.FLOAT);
  if (Number.isInteger(value)) return w.int(3, value).int(20, AttrType.INT);
  return w.float(2, value).int(20, AttrType.FLOAT);
}

/** A constant: float32 or int64 values with their dims (read when the model is serialized). */
export interface TensorInit {
  name: string;
  dims: readonly number[];
  data: Float32Array | BigInt64Array;
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** TensorProto: dims=1, data_type=2, name=8, raw_data=9 (little-endian, as ONNX stores it). */
export function tensorProto(t: TensorInit): ProtoWriter {
  if (!littleEndian) throw new Error("onnx: writing tensors needs a little-endian platform");
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== count) throw new Error(`onnx: tensor '${t.name}' has ${t.data.length} values for dims [${t.dims}]`);
  const type = t.data instanceof Float32Array ? DataType.FLOAT : DataType.INT64;
  // not copied here (finish() copies once): the caller's values must stay as they are until then
  const raw = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return new ProtoWriter().packedInts(1, t.dims).int(2, type).string(8, t.name).bytes(9, raw);
}

/** ValueInfoProto: name=1, type=2 -> TypeProto.tensor_type=1 -> {elem_type=1, shape=2 -> dim=1
 *  -> dim_value=1 | dim_param=2}. A string dim is symbolic ("N"). */
export function valueInfoProto(name: string, dims: readonly (number | string)[], elemType: number = DataType.FLOAT): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of dims) shape.message(1, typeof d === "string" ? new ProtoWriter().string(2, d) : new ProtoWriter().int(1, d));
  const tensorType = new ProtoWriter().int(1, elemType).message(2, shape);
  return new ProtoWriter().string(1, name).message(2, new ProtoWriter().message(1, tensorType));
}

export interface NodeSpec {
  op: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrValue>;
}

/** NodeProto: input=1, output=2, name=3, op_type=4, attribute=5 */
export function nodeProto(n: NodeSpec): ProtoWriter {
  const w = new ProtoWriter();
  for (const name of n.inputs) w.string(1, name);
  for (const name of n.outputs) w.string(2, name);
  w.string(3, n.name).string(4, n.op);
  for (const [k, v] of Object.entries(n.attrs ?? {})) w.message(5, attributeProto(k, v));
  return w;
}

export interface ValueSpec {
  name: string;
  dims: readonly (number | string)[];
}

export interface GraphSpec {
  name?: string;
  nodes: NodeSpec[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  initializers?: TensorInit[];
  opset?: number;
  producer?: string;
  producerVersion?: string;
  docString?: string;
}

/** IR version 8 reads opsets up to 18 (onnx/docs/Versioning.md). */
const IR_VERSION = 8;

/** A ModelProto around one graph, serialized. Nodes must be in topological order. */
export function encodeModel(g: GraphSpec): Uint8Array {
  // GraphProto: node=1, name=2, initializer=5, doc_string=10, input=11, output=12
  const graph = new ProtoWriter();
  for (const n of g.nodes) graph.message(1, nodeProto(n));
  graph.string(2, g.name ?? "graph");
  for (const t of g.initializers ?? []) graph.message(5, tensorProto(t));
  for (const v of g.inputs) graph.message(11, valueInfoProto(v.name, v.dims));
  for (const v of g.outputs) graph.message(12, valueInfoProto(v.name, v.dims));
  // ModelProto: ir_version=1, producer_name=2, producer_version=3, doc_string=6, graph=7,
  // opset_import=8 -> OperatorSetIdProto {domain=1, version=2}
  const model = new ProtoWriter().int(1, IR_VERSION).string(2, g.producer ?? "simdnet");
  if (g.producerVersion) model.string(3, g.producerVersion);
  if (g.docString) model.string(6, g.docString);
  return model
    .message(7, graph)
    .message(8, new ProtoWriter().string(1, "").int(2, g.opset ?? 13))
    .finish();
}
