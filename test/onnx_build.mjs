// A small ONNX writer for the import tests: builds ModelProto bytes from a plain description, so
// that tests can make graphs the fixtures do not have (unsupported ops, bad attributes, broken
// wiring) and the fuzz test has valid seeds to mutate. Written from the protobuf encoding rules
// and onnx.proto's field numbers, independently of src/onnx.
const enc = new TextEncoder();

function varint(n) {
  const out = [];
  let v = BigInt.asUintN(64, BigInt(n));
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}

const concat = (parts) => {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
};

export const field = {
  varint: (f, v) => Uint8Array.from([...varint(f * 8), ...varint(v)]),
  bytes: (f, b) => concat([Uint8Array.from([...varint(f * 8 + 2), ...varint(b.length)]), b]),
  string: (f, s) => field.bytes(f, enc.encode(s)),
  float: (f, v) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    return concat([Uint8Array.from(varint(f * 8 + 5)), b]);
  },
};

/** TensorProto: { name, dims, floats } (FLOAT raw_data) or { name, dims, ints } (INT64 raw_data). */
export function tensorProto(t) {
  const parts = t.dims.map((d) => field.varint(1, d));
  if (t.ints) {
    const raw = new Uint8Array(8 * t.ints.length);
    t.ints.forEach((v, i) => new DataView(raw.buffer).setBigInt64(8 * i, BigInt(v), true));
    parts.push(field.varint(2, 7), field.bytes(9, raw));
  } else {
    const raw = new Uint8Array(Float32Array.from(t.floats).buffer);
    parts.push(field.varint(2, 1), field.bytes(9, raw));
  }
  if (t.name) parts.push(field.string(8, t.name));
  return concat(parts);
}

/** attribute value: integer -> INT, { f } -> FLOAT, string -> STRING, int array -> INTS,
 *  { floats } -> FLOATS, { tensor } -> TENSOR */
function attribute(name, v) {
  const parts = [field.string(1, name)];
  if (typeof v === "number") parts.push(field.varint(3, v), field.varint(20, 2));
  else if (typeof v === "string") parts.push(field.string(4, v), field.varint(20, 3));
  else if (Array.isArray(v)) parts.push(...v.map((x) => field.varint(8, x)), field.varint(20, 7));
  else if (v.f !== undefined) parts.push(field.float(2, v.f), field.varint(20, 1));
  else if (v.floats) parts.push(...v.floats.map((x) => field.float(7, x)), field.varint(20, 6));
  else if (v.tensor) parts.push(field.bytes(5, tensorProto(v.tensor)), field.varint(20, 4));
  return concat(parts);
}

function node(n) {
  const parts = [...n.inputs.map((s) => field.string(1, s)), ...n.outputs.map((s) => field.string(2, s))];
  if (n.name) parts.push(field.string(3, n.name));
  parts.push(field.string(4, n.op));
  if (n.domain) parts.push(field.string(7, n.domain));
  for (const [k, v] of Object.entries(n.attrs ?? {})) parts.push(field.bytes(5, attribute(k, v)));
  return concat(parts);
}

function valueInfo(name, dims) {
  const shape = dims ? concat(dims.map((d) => field.bytes(1, field.varint(1, d)))) : null;
  const tensorType = concat([field.varint(1, 1), ...(shape ? [field.bytes(2, shape)] : [])]);
  return concat([field.string(1, name), field.bytes(2, field.bytes(1, tensorType))]);
}

/** { opset, input: [name, dims], output: name, nodes: [{ op, inputs, outputs, name?, attrs? }],
 *  inits: [tensor descriptions] } -> the bytes of an .onnx file */
export function buildModel(m) {
  const graph = concat([
    ...m.nodes.map((n) => field.bytes(1, node(n))),
    field.string(2, "test"),
    ...(m.inits ?? []).map((t) => field.bytes(5, tensorProto(t))),
    field.bytes(11, valueInfo(m.input[0], m.input[1])),
    field.bytes(12, valueInfo(m.output, null)),
  ]);
  const opset = concat([field.string(1, ""), field.varint(2, m.opset ?? 13)]);
  return concat([field.varint(1, 8), field.string(2, "onnx_build.mjs"), field.bytes(7, graph), field.bytes(8, opset)]);
}

/** A small valid model: Conv (with bias) -> Relu -> MaxPool -> Flatten -> Gemm. */
export function smallModel(extra = {}) {
  const w = Array.from({ length: 4 * 2 * 3 * 3 }, (_, i) => Math.sin(i) * 0.3);
  const fc = Array.from({ length: 3 * 16 }, (_, i) => Math.cos(i) * 0.2);
  return buildModel({
    opset: 13,
    input: ["x", [1, 2, 4, 4]],
    output: "y",
    nodes: [
      { op: "Conv", inputs: ["x", "conv.weight", "conv.bias"], outputs: ["c"], name: "conv", attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } },
      { op: "Relu", inputs: ["c"], outputs: ["r"], name: "relu" },
      { op: "MaxPool", inputs: ["r"], outputs: ["p"], name: "pool", attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
      { op: "Flatten", inputs: ["p"], outputs: ["f"], name: "flatten", attrs: { axis: 1 } },
      { op: "Gemm", inputs: ["f", "fc.weight", "fc.bias"], outputs: ["y"], name: "fc", attrs: { transB: 1, alpha: { f: 1 } } },
    ],
    inits: [
      { name: "conv.weight", dims: [4, 2, 3, 3], floats: w },
      { name: "conv.bias", dims: [4], floats: [0.1, -0.2, 0.3, 0] },
      { name: "fc.weight", dims: [3, 16], floats: fc },
      { name: "fc.bias", dims: [3], floats: [0, 0.5, -0.5] },
    ],
    ...extra,
  });
}
