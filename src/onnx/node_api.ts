// What an ONNX node handler sees (NodeRun) and declares (OpSpec), and the attribute readers they
// share (nodes.ts, spatial.ts).
import { Tensor } from "../index.js";
import { OnnxError, DT, type OnnxAttribute, type OnnxGraph, type OnnxNode, type OnnxTensor } from "./proto_read.js";
import { Const } from "./consts.js";

export type Value = Tensor | Const;

/** What a node sees when it runs. */
export interface NodeRun {
  node: OnnxNode;
  opset: number;
  training: boolean;
  inputs: (Value | null)[];
  /** a float tensor for input i (a constant becomes one) */
  tensor(i: number): Tensor;
  /** input i as a constant (an error naming the node if it is a data tensor) */
  konst(i: number, what: string): Const;
  has(i: number): boolean;
  /** the nn.Dropout layer made for this node at load (it follows train()/eval()) */
  dropout(p: number): Tensor;
  /** runs a subgraph (If branch) in the current scope; returns its outputs */
  subgraph(g: OnnxGraph): Value[];
}

export interface OpSpec {
  attrs: string[];
  /** inputs that must be constants (known at load, or computed from shapes) */
  constInputs?: number[];
  /** inputs (data positions) whose initializers are batch-norm statistics: buffers, not parameters */
  bufferInputs?: number[];
  /** false: never folded at load even when every input is a constant (data ops) */
  foldable?: boolean;
  check?(node: OnnxNode, opset: number): void;
  run(r: NodeRun): Value[];
}

// ---- attributes ----

export function nodeName(n: OnnxNode): string {
  return `node '${n.name || n.outputs[0] || "?"}' (${n.opType})`;
}

export function bad(n: OnnxNode, msg: string): never {
  throw new OnnxError(`onnx: ${nodeName(n)}: ${msg}`);
}

export function attr(n: OnnxNode, name: string): OnnxAttribute | undefined {
  return n.attributes.get(name);
}

export function int(n: OnnxNode, name: string, def: number): number {
  const a = attr(n, name);
  if (!a) return def;
  if (a.i === undefined) bad(n, `attribute '${name}' must be an int`);
  return a.i;
}

export function ints(n: OnnxNode, name: string, def: number[] | null): number[] | null {
  const a = attr(n, name);
  return a ? a.ints : def;
}

export function float(n: OnnxNode, name: string, def: number): number {
  const a = attr(n, name);
  if (!a) return def;
  if (a.f === undefined) bad(n, `attribute '${name}' must be a float`);
  return a.f;
}

export function str(n: OnnxNode, name: string, def: string): string {
  const a = attr(n, name);
  return a?.s ?? def;
}

export function oneOf(n: OnnxNode, name: string, v: string | number, allowed: (string | number)[], why = "") {
  if (!allowed.includes(v)) bad(n, `attribute ${name} = ${JSON.stringify(v)} is not supported; supported: ${allowed.map((x) => JSON.stringify(x)).join(", ")}${why}`);
}

export const shapeOf = (v: Value) => (v instanceof Tensor ? [...v.shape] : v.dims);

/** A TensorProto as a constant. */
export function constFromTensor(t: OnnxTensor): Const {
  const isFloat = t.dataType === DT.FLOAT || t.dataType === DT.DOUBLE;
  return new Const([...t.dims], t.data, isFloat);
}

