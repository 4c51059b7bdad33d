// ONNX export: exportOnnx(model, inputShape, { opset }) -> the bytes of an .onnx file.
//
// The graph is traced, not rebuilt from the module tree: the model runs once, in eval mode and
// without gradients, on zeros of `inputShape`, while every op-table entry's apply() records the
// call (docs/onnx.md, "How export works"). Every op a forward can run goes through the op table,
// so any composition of layers, containers and custom forward() code (GoogLeNet's trunk and
// heads, the FCNs' skips, PartialConv2d's selections) exports without a per-class exporter, and
// the graph is exactly what our forward computes. Ops map to ONNX nodes in export_ops.ts.
// Parameters and buffers become initializers under their state-dict names.
import { Module, Tensor, opTable, noGrad, tidy, zeros, shapeStr, checkOptions, withoutFusion, type OpEntry } from "../index.js";
import { OnnxError } from "./import.js";
import { encodeModel, type AttrValue, type NodeSpec, type TensorInit } from "./proto_write.js";
import { emitters, type GraphSink } from "./export_ops.js";

export interface ExportOnnxOptions {
  /** the ONNX opset to write (13 to 18; default 17) */
  opset?: number;
}

export const OPSET_MIN = 13;
export const OPSET_MAX = 18;
export const OPSET_DEFAULT = 17;

/** The ops that are losses: a model to export ends before them. */
const LOSSES = new Set(["cross_entropy", "multi_margin_loss", "mse_loss", "l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits"]);

/** Nodes and constants as the trace adds them; a value is named after the node that makes it. */
class GraphBuilder implements GraphSink {
  nodes: NodeSpec[] = [];
  initializers: TensorInit[] = [];
  /** the module whose forward is running (its path), for node names */
  scope = "";
  private taken = new Set<string>();

  constructor(readonly opset: number) {}

  unique(base: string): string {
    let name = base;
    for (let i = 1; this.taken.has(name); i++) name = `${base}_${i}`;
    this.taken.add(name);
    return name;
  }

  node(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    const name = this.unique(this.scope ? `${this.scope}/${op}` : op);
    this.nodes.push({ op, name, inputs, outputs: [name], attrs });
    return name;
  }

  constant(what: string, dims: number[], data: Float32Array | BigInt64Array): string {
    const name = this.unique(`${this.scope || "const"}/${what}`);
    this.initializers.push({ name, dims, data });
    return name;
  }

  /** keeps a name for a parameter or buffer, so that no node takes it first */
  reserve(name: string): void {
    if (this.taken.has(name)) throw new OnnxError(`exportOnnx: the model's tensor '${name}' has the name of the graph's ${name}; rename it`);
    this.taken.add(name);
  }

  /** a parameter or buffer, under its (reserved) state-dict name (a copy: the engine's memory
   *  may move) */
  tensor(name: string, t: Tensor): string {
    this.initializers.push({ name, dims: [...t.shape], data: Float32Array.from(t.data) });
    return name;
  }
}

/**
 * The model as an ONNX file for an input of `inputShape` (the batch included, e.g.
 * [1, 3, 224, 224]): the inference graph (eval mode: batch norm with its running statistics,
 * no dropout), with the parameters and buffers as initializers named as in the state dict.
 * Throws OnnxError, naming the layer and the shapes, for what ONNX cannot express as we compute
 * it (e.g. a local response norm of even size).
 */
export function exportOnnx(model: Module, inputShape: number[], options: ExportOnnxOptions = {}): Uint8Array {
  checkOptions("exportOnnx", options, ["opset"], { error: OnnxError });
  if (!(model instanceof Module)) throw new OnnxError(`exportOnnx: the model must be a Module (a layer or a zoo model), got ${describe(model)}`);
  if (!Array.isArray(inputShape) || !inputShape.length || inputShape.some((d) => !Number.isSafeInteger(d) || d < 1))
    throw new OnnxError(`exportOnnx: inputShape must be an array of positive integers with the batch first (e.g. [1, 3, 224, 224]), got ${describe(inputShape)}`);
  const opset = options.opset ?? OPSET_DEFAULT;
  if (!Number.isInteger(opset) || opset < OPSET_MIN || opset > OPSET_MAX)
    throw new OnnxError(`exportOnnx: opset must be an integer from ${OPSET_MIN} to ${OPSET_MAX}, got ${describe(opset)}`);
  if (model.device !== "cpu") throw new OnnxError(`exportOnnx: the model is on ${model.device}; move it to the CPU first (await model.cpu())`);
  return encodeModel(trace(model, inputShape, opset));
}

/** Runs the model once on zeros, recording each op call as ONNX nodes. */
function trace(model: Module, inputShape: number[], opset: number) {
  const g = new GraphBuilder(opset);
  g.unique("input");
  g.unique("output");
  const values = new Map<Tensor, string>();
  const state = new Map<Tensor, string>();
  for (const [n, t] of [...model.namedParameters(), ...model.namedBuffers()])
    if (!state.has(t)) {
      g.reserve(n);
      state.set(t, n);
    }

  const valueOf = (t: Tensor, op: string, i: number): string => {
    const known = values.get(t);
    if (known !== undefined) return known;
    const name = state.get(t);
    if (name === undefined)
      throw new OnnxError(`input ${i} of ${op} (${shapeStr(t.shape)}) is neither the model's input, a parameter or buffer of the model, nor made by an op in this forward, so it cannot be written into the graph; register it with registerBuffer`);
    values.set(t, g.tensor(name, t));
    return values.get(t)!;
  };

  const record = (entry: OpEntry, inputs: (Tensor | null | undefined)[], attrs: unknown, out: Tensor) => {
    const emit = emitters[entry.name];
    if (!emit) {
      if (LOSSES.has(entry.name)) throw new OnnxError(`${entry.name} is a loss: export the model that computes its input, and the loss outside it`);
      throw new OnnxError(`op ${entry.name} has no ONNX form in exportOnnx (it writes ${Object.keys(emitters).join(", ")})`);
    }
    const names = inputs.map((t, i) => (t ? valueOf(t, entry.name, i) : null));
    const call = { inputs: names, inShapes: inputs.map((t) => (t ? [...t.shape] : null)), outShape: [...out.shape], attrs: { ...entry.defaults, ...(attrs as object) } };
    values.set(out, emit(g, call));
  };

  const modes = model.modules().map((m) => m.training);
  let output: { name: string; dims: number[] };
  try {
    model.eval();
    output = noGrad(() =>
      tidy(() =>
        recordOps(record, g, () => {
          const x = zeros(inputShape);
          values.set(x, "input");
          const y = model.call(x);
          if (!(y instanceof Tensor)) throw new Error(`forward returned ${describe(y)}, not a Tensor`);
          return { name: values.get(y) ?? valueOf(y, "the output", 0), dims: [...y.shape] };
        }),
      ),
    );
  } catch (e) {
    throw new OnnxError(`exportOnnx: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    model.modules().forEach((m, i) => (m.training = modes[i]));
  }
  const nodes = finishOutput(g, output.name);
  const { kept, initializers } = prune(nodes, g.initializers);
  return {
    name: model.type,
    nodes: kept,
    initializers,
    inputs: [{ name: "input", dims: inputShape }],
    outputs: [{ name: "output", dims: output.dims }],
    opset,
  };
}

/** Runs fn with every op-table entry's apply() (and Module.call, for the layer names of the
 *  nodes) wrapped: an op called from inside another op's apply is part of it, not recorded. */
function recordOps<T>(record: (e: OpEntry, inputs: (Tensor | null | undefined)[], attrs: unknown, out: Tensor) => void, g: GraphBuilder, fn: () => T): T {
  const entries = [...opTable.values()];
  const applies = entries.map((e) => e.apply);
  const call = Module.prototype.call;
  let depth = 0;
  entries.forEach((e, i) => {
    e.apply = (inputs, attrs) => {
      depth++;
      let out: Tensor;
      try {
        out = applies[i].call(e, inputs, attrs);
      } finally {
        depth--;
      }
      if (depth === 0) record(e, inputs, attrs, out);
      return out;
    };
  });
  Module.prototype.call = function (this: Module, x: Tensor) {
    const outer = g.scope;
    g.scope = this.path();
    try {
      return call.call(this, x);
    } finally {
      g.scope = outer;
    }
  };
  try {
    // the automatic fusion off: the graph keeps Conv, BatchNormalization, Add and Relu
    return withoutFusion(fn);
  } finally {
    entries.forEach((e, i) => (e.apply = applies[i]));
    Module.prototype.call = call;
  }
}

/** The graph's result is the value "output": the node that makes it is renamed, or an Identity
 *  copies the input or a constant (a model that computes nothing). */
function finishOutput(g: GraphBuilder, result: string): NodeSpec[] {
  if (!g.nodes.some((n) => n.outputs.includes(result))) {
    g.nodes.push({ op: "Identity", name: "output", inputs: [result], outputs: ["output"] });
    return g.nodes;
  }
  const rename = (v: string) => (v === result ? "output" : v);
  return g.nodes.map((n) => ({ ...n, inputs: n.inputs.map(rename), outputs: n.outputs.map(rename) }));
}

/** Only the nodes and constants that the output depends on (a forward may compute more). */
function prune(nodes: NodeSpec[], inits: TensorInit[]) {
  const needed = new Set(["output"]);
  const kept: NodeSpec[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!n.outputs.some((o) => needed.has(o))) continue;
    kept.push(n);
    for (const v of n.inputs) if (v) needed.add(v);
  }
  return { kept: kept.reverse(), initializers: inits.filter((t) => needed.has(t.name)) };
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return JSON.stringify(v);
  if (typeof v === "object") return `a ${(v as object).constructor?.name ?? "object"}`;
  return `${typeof v} ${JSON.stringify(v)}`;
}
