// ONNX import: loadOnnx(bytes) -> a Module that runs the graph. Float initializers become
// parameters under their ONNX names (PyTorch's state_dict names for a training-mode export;
// "onnx::Conv_193" and the like for an eval export), batch-norm statistics become buffers, so
// stateDict, optimisers, fit(), summary() and checkpoints work as for any model. Everything that
// can be checked without running is checked at load (op types, attributes, that every input is
// defined before use), and constant-only subgraphs are folded there.
import { Module, Tensor, tensor, keep, noGrad, tidy, zeros, checkOptions, nn } from "../index.js";
import { OnnxError, readModel, DT, dtypeName, type OnnxGraph, type OnnxModel, type OnnxNode } from "./proto_read.js";
import { Const } from "./consts.js";
import { fuseLrn, fusePads } from "./fuse.js";
import { OPS, SUPPORTED, constFromTensor, dropoutRatio, nodeName, int, type NodeRun, type Value } from "./nodes.js";

export { OnnxError };

type SummaryRow = Parameters<Module["summarize"]>[1][number];
type Flow = Parameters<Module["summarize"]>[0];

export interface LoadOnnxOptions {
  /** false: run every node as the file has it, without the load-time rewrites (a zero Pad folded
   *  into the next pool or conv, torch's LocalResponseNorm graph as one LRN node); they give the
   *  same results, and this is how the tests check that. Default true. */
  fuse?: boolean;
}

const MIN_OPSET = 7, MAX_OPSET = 18;

/** A module that only holds parameters (one level of a dotted initializer name). */
class OnnxScope extends Module {
  readonly type = "OnnxScope";
  forward(): Tensor {
    throw new Error("OnnxScope holds parameters; it does not run");
  }
}

/** Called after each node while a summary traces the graph. */
type NodeHook = (node: OnnxNode, inputs: (Value | null)[], outputs: Value[]) => void;

export class OnnxModule extends Module {
  readonly type = "OnnxModel";
  private readonly graph: OnnxGraph;
  private readonly opset: number;
  /** initializers that are weights: parameters and buffers, by ONNX name */
  private readonly weights = new Map<string, Tensor>();
  /** constants: non-weight initializers, Constant nodes and everything folded from them */
  private readonly consts = new Map<string, Const>();
  /** constants used where a tensor is needed, made once */
  private readonly constTensors = new Map<string, Tensor>();
  /** nodes that still run at forward (the others were folded into consts) */
  private readonly live: OnnxNode[];
  readonly inputName: string;
  readonly inputShape: (number | string | null)[] | null;
  readonly outputName: string;

  /** one nn.Dropout per Dropout node (train()/eval() and checkpoints reach them as children) */
  private readonly dropouts = new Map<OnnxNode, Module>();

  constructor(model: OnnxModel, fuse: boolean) {
    super();
    const g = model.graph;
    this.graph = g;
    this.opset = model.opsets.get("")!;
    const inits = new Map(g.initializers.map((t) => [t.name, t]));
    const dataInputs = g.inputs.filter((v) => !inits.has(v.name));
    if (dataInputs.length !== 1) throw new OnnxError(`onnx: the graph has ${dataInputs.length} inputs (${dataInputs.map((v) => `'${v.name}'`).join(", ") || "none"}); an imported model takes exactly one`);
    if (g.outputs.length !== 1) throw new OnnxError(`onnx: the graph has ${g.outputs.length} outputs (${g.outputs.map((v) => `'${v.name}'`).join(", ") || "none"}); an imported model gives exactly one`);
    const input = dataInputs[0];
    if (input.elemType && input.elemType !== DT.FLOAT) throw new OnnxError(`onnx: input '${input.name}' is ${dtypeName(input.elemType)}; only FLOAT inputs are supported`);
    this.inputName = input.name;
    this.inputShape = input.shape;
    this.outputName = g.outputs[0].name;

    // how each initializer is used decides what it becomes
    const constUse = new Set<string>(), bufferUse = new Set<string>();
    for (const n of walk(g)) {
      const spec = OPS[n.opType];
      n.inputs.forEach((name, i) => {
        if (spec.constInputs?.includes(i)) constUse.add(name);
        if (spec.bufferInputs?.includes(i)) bufferUse.add(name);
      });
    }
    try {
      for (const t of g.initializers) {
        const isFloat = t.dataType === DT.FLOAT || t.dataType === DT.DOUBLE;
        if (!isFloat || constUse.has(t.name)) this.consts.set(t.name, constFromTensor(t));
        else {
          this.addWeight(t.name, t.data as Float32Array, t.dims, bufferUse.has(t.name));
        }
      }
      const nodes = this.fold(g);
      this.live = fuse ? fuseLrn(fusePads(nodes, this.consts, this.outputName, this.opset), this.consts, this.outputName) : nodes;
      this.addDropouts(g);
    } catch (e) {
      this.dispose(); // a model that failed to load keeps no memory
      throw e;
    }
  }

  /** Registers a weight under its ONNX name: a dotted name ("layer1.0.conv1.weight") is stored
   *  in nested scopes, so that the module's state dict uses the same name. */
  private addWeight(name: string, values: Float32Array, dims: number[], buffer: boolean) {
    const parts = name.split(".");
    if (parts.some((p) => !p)) throw new OnnxError(`onnx: initializer name '${name}' has an empty part between dots`);
    let m: Module = this;
    for (const p of parts.slice(0, -1)) {
      let child = (m as any)._modules.get(p) as Module | undefined;
      if (!child) {
        if ((m as any)._parameters.has(p) || (m as any)._buffers.has(p)) throw new OnnxError(`onnx: initializer names '${name}' and another that ends in '${p}' collide`);
        child = m.registerModule(p, new OnnxScope());
      }
      m = child;
    }
    const leaf = parts[parts.length - 1];
    if ((m as any)._modules.has(leaf)) throw new OnnxError(`onnx: initializer '${name}' collides with a longer initializer name`);
    if ((m as any)._parameters.has(leaf) || (m as any)._buffers.has(leaf)) throw new OnnxError(`onnx: two initializers named '${name}'`);
    const t = tensor(values, dims);
    if (buffer) m.registerBuffer(leaf, t);
    else m.registerParameter(leaf, t);
    this.weights.set(name, t);
  }

  /** Checks that every node's inputs are defined before it, and folds the nodes whose inputs are
   *  all constants. Returns the nodes left to run. */
  private fold(g: OnnxGraph): OnnxNode[] {
    const defined = new Set<string>([this.inputName, ...this.consts.keys(), ...this.weights.keys()]);
    const live: OnnxNode[] = [];
    for (const n of g.nodes) {
      for (const name of n.inputs)
        if (name && !defined.has(name)) throw new OnnxError(`onnx: ${nodeName(n)} uses '${name}', which no graph input, initializer or earlier node defines (the nodes must be in topological order)`);
      const spec = OPS[n.opType];
      const allConst = n.inputs.every((name) => !name || this.consts.has(name));
      if (spec.foldable !== false && allConst) {
        const outs = this.runNode(n, new Map(), null);
        n.outputs.forEach((name, i) => {
          const v = outs[i];
          if (v instanceof Const) this.consts.set(name, v);
        });
        if (n.outputs.every((name, i) => !name || outs[i] instanceof Const)) {
          n.outputs.forEach((name) => name && defined.add(name));
          continue;
        }
      }
      n.outputs.forEach((name) => name && defined.add(name));
      live.push(n);
    }
    if (!defined.has(this.outputName)) throw new OnnxError(`onnx: the graph output '${this.outputName}' is not produced by any node`);
    return live;
  }

  /** An nn.Dropout child per Dropout node, named after the node ('.' made '_': names hold no dots). */
  private addDropouts(g: OnnxGraph) {
    for (const n of walk(g)) {
      if (n.opType !== "Dropout") continue;
      const p = dropoutRatio(n, this.opset, () => {
        const c = this.consts.get(n.inputs[1]);
        if (!c) throw new OnnxError(`onnx: ${nodeName(n)}: ratio must be a constant`);
        return c;
      }, !!n.inputs[1]);
      let name = (n.name || n.outputs[0] || "dropout").replace(/\./g, "_");
      for (let k = 2; (this as any)._modules.has(name); k++) name = `${name.replace(/#\d+$/, "")}#${k}`;
      this.dropouts.set(n, this.registerModule(name, new nn.Dropout(p)));
    }
  }

  private value(name: string, env: Map<string, Value>): Value | null {
    if (!name) return null;
    const v = env.get(name) ?? this.consts.get(name) ?? this.weights.get(name);
    if (v === undefined) throw new OnnxError(`onnx: value '${name}' is not defined`);
    return v;
  }

  private constTensor(name: string, c: Const): Tensor {
    if (!c.isFloat) throw new OnnxError(`onnx: '${name}' holds integers [${c.dims.join(", ")}] where a float tensor is needed`);
    let t = this.constTensors.get(name);
    if (!t || t.disposed || t.device !== this.device) {
      t?.dispose();
      // on the device of the weights (a model moved with .to("webgpu"))
      t = keep(tensor(Float32Array.from(c.data), c.dims).to(this.device));
      if (this.consts.get(name) === c) this.constTensors.set(name, t);
    }
    return t;
  }

  private runNode(n: OnnxNode, env: Map<string, Value>, hook: NodeHook | null): Value[] {
    const spec = OPS[n.opType];
    const inputs = n.inputs.map((name) => this.value(name, env));
    const r: NodeRun = {
      node: n,
      opset: this.opset,
      training: this.training,
      inputs,
      has: (i) => !!inputs[i],
      tensor: (i) => {
        const v = inputs[i];
        if (!v) throw new OnnxError(`onnx: ${nodeName(n)}: input ${i} is missing`);
        return v instanceof Tensor ? v : this.constTensor(n.inputs[i], v);
      },
      konst: (i, what) => {
        const v = inputs[i];
        if (!v) throw new OnnxError(`onnx: ${nodeName(n)}: input ${what} is missing`);
        if (v instanceof Tensor) throw new OnnxError(`onnx: ${nodeName(n)}: ${what} ('${n.inputs[i]}') is computed from data, not from shapes or constants, which is not supported`);
        return v;
      },
      dropout: () => this.dropouts.get(n)!.call(r.tensor(0)),
      subgraph: (sg) => {
        const inner = new Map(env);
        for (const m of sg.nodes) {
          const outs = this.runNode(m, inner, hook);
          m.outputs.forEach((name, i) => name && outs[i] && inner.set(name, outs[i]));
        }
        return sg.outputs.map((o) => this.value(o.name, inner)!);
      },
    };
    let outs: Value[];
    try {
      outs = spec.run(r);
    } catch (e) {
      // a TypeError or RangeError is a bug here, not a message for the user: never dressed up
      if (e instanceof OnnxError || e instanceof TypeError || e instanceof RangeError) throw e;
      const shapes = inputs.map((v) => (!v ? "-" : `[${(v instanceof Tensor ? v.shape : v.dims).join(", ")}]`)).join(", ");
      throw new OnnxError(`onnx: ${nodeName(n)} with inputs ${shapes}: ${e instanceof Error ? e.message : String(e)}`);
    }
    hook?.(n, inputs, outs);
    return outs;
  }

  forward(x: Tensor): Tensor {
    return this.run(x, null);
  }

  private run(x: Tensor, hook: NodeHook | null): Tensor {
    this.checkInput(x.shape);
    const env = new Map<string, Value>([[this.inputName, x]]);
    for (const n of this.live) {
      const outs = this.runNode(n, env, hook);
      n.outputs.forEach((name, i) => name && outs[i] && env.set(name, outs[i]));
    }
    const y = this.value(this.outputName, env)!;
    return y instanceof Tensor ? y : this.constTensor(this.outputName, y);
  }

  /** The exported graph may have sizes baked in (torch traces x.shape[-2:] into constants): an
   *  input must match the declared shape, except for the batch dimension. */
  private checkInput(shape: readonly number[]) {
    const want = this.inputShape;
    if (!want) return;
    const fits = shape.length === want.length && want.every((d, i) => i === 0 || typeof d !== "number" || d === shape[i]);
    if (!fits) throw new OnnxError(`onnx: input '${this.inputName}' must have shape [${want.map((d, i) => (i === 0 || typeof d !== "number" ? "N" : d)).join(", ")}] (as exported), got [${shape.join(", ")}]`);
  }

  /** set while call() runs: Module.call checks a module without children by outputShape() first,
   *  which here would run the whole graph a second time (the graph checks its input itself) */
  private calling = false;

  call(x: Tensor): Tensor {
    this.calling = true;
    try {
      return super.call(x);
    } finally {
      this.calling = false;
    }
  }

  outputShape(input: number[]): number[] {
    if (this.calling) return input;
    return this.trace(input, null);
  }

  /** One row per node that runs: its op, output shape, the weights it uses and its multiply-adds
   *  (receptive fields are not tracked through a graph: rf stays the input's). */
  summarize(flow: Flow, rows: SummaryRow[], name: string): Flow {
    const counted = new Set<Tensor>(), weights = new Set(this.weights.values());
    const hook: NodeHook = (n, inputs, outs) => {
      const y = outs[0];
      if (!(y instanceof Tensor)) return;
      const own = inputs.filter((v): v is Tensor => v instanceof Tensor && weights.has(v) && !counted.has(v));
      own.forEach((t) => counted.add(t));
      const x = inputs.find((v): v is Tensor => v instanceof Tensor);
      const params = own.filter((t) => t.requiresGrad);
      rows.push({
        name: name ? `${name}.${n.name}` : n.name || n.outputs[0],
        layer: describe(n),
        inputShape: x ? [...x.shape] : [],
        outputShape: [...y.shape],
        weightShape: params[0] ? [...params[0].shape] : null,
        params: params.reduce((a, t) => a + t.size, 0),
        trainable: params.reduce((a, t) => a + t.size, 0),
        macs: macs(n, inputs, y),
        rf: flow.rf,
      });
    };
    return { ...flow, shape: this.trace(flow.shape, hook) };
  }

  private trace(input: number[], hook: NodeHook | null): number[] {
    const modes = this.modules().map((m) => m.training);
    try {
      this.eval();
      return noGrad(() => tidy(() => [...this.run(zeros(input), hook).shape]));
    } finally {
      this.modules().forEach((m, i) => (m.training = modes[i]));
    }
  }

  dispose(): void {
    super.dispose();
    for (const t of this.constTensors.values()) t.dispose();
    this.constTensors.clear();
  }

  protected extraRepr(): string {
    return `${this.graph.nodes.length} nodes, opset ${this.opset}`;
  }
}

function describe(n: OnnxNode): string {
  const shown = ["kernel_shape", "strides", "pads", "group", "dilations", "mode", "axis", "size"];
  const parts = [...n.attributes.values()].filter((a) => shown.includes(a.name)).map((a) => `${a.name}=${a.ints.length ? `[${a.ints.join(",")}]` : a.s ?? a.i ?? a.f}`);
  return `${n.opType}(${parts.join(", ")})`;
}

function macs(n: OnnxNode, inputs: (Value | null)[], y: Tensor): number {
  const w = inputs[1];
  if (!(w instanceof Tensor)) return 0;
  if (n.opType === "Conv") return y.size * (w.size / w.shape[0]);
  if (n.opType === "ConvTranspose") return (inputs[0] as Tensor).size * (w.size / w.shape[0]);
  if (n.opType === "Gemm" || n.opType === "MatMul") {
    const a = inputs[0] as Tensor;
    return y.size * (int(n, "transA", 0) ? a.shape[0] : a.shape[a.rank - 1]);
  }
  return 0;
}

/** Every node, including those inside If branches. */
function* walk(g: OnnxGraph): IterableIterator<OnnxNode> {
  for (const n of g.nodes) {
    yield n;
    for (const a of n.attributes.values()) if (a.g) yield* walk(a.g);
  }
}

/** Checks op types, domains and attributes of every node before anything runs. */
function checkNodes(g: OnnxGraph, opset: number) {
  for (const n of walk(g)) {
    if (n.domain && n.domain !== "ai.onnx") throw new OnnxError(`onnx: ${nodeName(n)} is in domain '${n.domain}'; only the default ONNX domain is supported`);
    const spec = OPS[n.opType];
    if (!spec) throw new OnnxError(`onnx: ${nodeName(n)}: op type '${n.opType}' is not supported; supported: ${SUPPORTED.join(", ")}`);
    for (const a of n.attributes.keys())
      if (!spec.attrs.includes(a)) throw new OnnxError(`onnx: ${nodeName(n)}: attribute '${a}' is not supported; ${n.opType} takes ${spec.attrs.join(", ") || "no attributes"}`);
    n.outputs.forEach((o, i) => {
      // BatchNormalization's statistics, MaxPool's indices, Dropout's mask: not supported
      if (o && i > 0 && usedAnywhere(g, o)) throw new OnnxError(`onnx: ${nodeName(n)}: output ${i} ('${o}') is used, which is not supported (only the first output of ${n.opType})`);
    });
    spec.check?.(n, opset);
  }
}

function usedAnywhere(g: OnnxGraph, name: string): boolean {
  for (const n of walk(g)) if (n.inputs.includes(name)) return true;
  return g.outputs.some((o) => o.name === name);
}

/** Reads an .onnx file and returns a Module that runs it (see docs/onnx.md for the supported
 *  ops). Needs init() first (the weights are tensors). */
export async function loadOnnx(bytes: Uint8Array | ArrayBuffer, options: LoadOnnxOptions = {}): Promise<Module> {
  checkOptions("loadOnnx", options, ["fuse"]);
  const { fuse = true } = options;
  if (typeof fuse !== "boolean") throw new OnnxError(`loadOnnx: fuse must be true or false, got ${JSON.stringify(fuse)}`);
  if (bytes instanceof ArrayBuffer) bytes = new Uint8Array(bytes);
  if (!(bytes instanceof Uint8Array)) throw new OnnxError(`loadOnnx: expects the bytes of an .onnx file (Uint8Array or ArrayBuffer), got ${bytes === null ? "null" : typeof bytes}`);
  const model = readModel(bytes);
  const opset = model.opsets.get("");
  if (opset === undefined) throw new OnnxError("onnx: the model imports no default-domain opset");
  if (opset < MIN_OPSET || opset > MAX_OPSET) throw new OnnxError(`onnx: opset ${opset} is not supported (${MIN_OPSET} to ${MAX_OPSET}; torch.onnx.export's opset_version)`);
  checkNodes(model.graph, opset);
  return new OnnxModule(model, fuse);
}
