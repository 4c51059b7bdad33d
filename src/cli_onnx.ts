// The CLI's ONNX side: reading an .onnx file as a model (eval, summary) and convert, which
// rebuilds a graph that is a plain chain of layers as an nn.Sequential that saveModel can write.
import { readFileSync } from "node:fs";
import { Module } from "./nn/module.js";
import { Sequential } from "./nn/containers.js";
import { Conv2d, Linear } from "./nn/conv.js";
import { MaxPool2d, AvgPool2d, GlobalAvgPool2d } from "./nn/pool.js";
import { ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, LogSoftmax } from "./nn/activation.js";
import { Dropout, Flatten } from "./nn/misc.js";
import { BatchNorm2d, BatchNorm1d, LocalResponseNorm } from "./nn/norm.js";
import { tensor, tidy } from "./tensor.js";
import { noGrad } from "./autograd.js";
import { loadOnnx } from "./onnx/import.js";
import { readModel, type OnnxNode, type OnnxTensor } from "./onnx/proto_read.js";

export const isOnnxPath = (p: string) => /\.onnx$/i.test(p);

/** An .onnx file as a model in eval mode, with the [C, H, W] its graph input declares (null
 *  where a dimension is symbolic or the input is not an image batch). */
export async function loadOnnxFile(path: string): Promise<{ model: Module; input: number[] | null }> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new Error(`${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let model;
  try {
    model = await loadOnnx(bytes);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  model.eval();
  return { model, input: imageInput(model.inputShape) };
}

/** [N, C, H, W] with numeric C, H, W -> [C, H, W]; anything else -> null. */
function imageInput(shape: readonly (number | string | null)[] | null): number[] | null {
  if (!shape || shape.length !== 4) return null;
  const chw = shape.slice(1);
  return chw.every((d) => typeof d === "number" && d > 0) ? (chw as number[]) : null;
}

const nodeName = (n: OnnxNode) => `node '${n.name || n.outputs[0] || "?"}' (${n.opType})`;

/** Why a graph is not a chain of layers (each names the node): such a graph still runs with loadOnnx. */
export class NotAChain extends Error {}
const refuse = (n: OnnxNode, why: string): never => {
  throw new NotAChain(`${nodeName(n)} ${why}`);
};

/** convert's answer: the Sequential (weights loaded, eval mode) and the input it takes. */
export interface Converted {
  model: Sequential;
  input: number[];
  /** the largest |difference| from the graph run by loadOnnx on a test input, and the output's scale */
  check: { maxDiff: number; scale: number };
}

/**
 * Rebuilds the graph in `bytes` as an nn.Sequential when it is a plain chain (each node reads
 * the previous node's output) of Conv, Gemm, MaxPool, AveragePool, GlobalAveragePool,
 * BatchNormalization, LRN, Relu, LeakyRelu, Sigmoid, Tanh, Softmax, LogSoftmax, Flatten,
 * Reshape to [N, -1], Dropout and Identity, with a zero Pad folded into the next Conv or
 * AveragePool (how torch exports AvgPool2d(padding=p)). Anything else is an error naming the
 * first node that does not map. The result is checked against the graph itself (loadOnnx) on a
 * test input before it is returned, so a mapping mistake is an error, not a wrong model.
 */
export async function convertOnnx(bytes: Uint8Array, what: string): Promise<Converted> {
  let m;
  try {
    m = readModel(bytes);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
  const g = m.graph, opset = m.opsets.get("") ?? 0;
  const inits = new Map<string, OnnxTensor>(g.initializers.map((t) => [t.name, t]));
  const dataInputs = g.inputs.filter((v) => !inits.has(v.name));
  if (dataInputs.length !== 1 || g.outputs.length !== 1) throw new Error(`${what}: convert takes a graph with one input and one output (it has ${dataInputs.length} and ${g.outputs.length})`);
  const input = imageInput(dataInputs[0].shape);
  if (!input) throw new Error(`${what}: the graph's input '${dataInputs[0].name}' is [${(dataInputs[0].shape ?? []).join(", ")}]; convert needs an image batch [N, C, H, W] with fixed C, H and W`);

  const consts = new Map<string, OnnxTensor>(inits);
  const layers: Module[] = [];
  const state = new Map<string, { shape: number[]; data: Float32Array }>();
  let current = dataInputs[0].name, rank = 4;
  let pad: { node: OnnxNode; hw: [number, number] } | null = null;

  const attr = (n: OnnxNode, k: string) => n.attributes.get(k);
  const int = (n: OnnxNode, k: string, def: number) => attr(n, k)?.i ?? def;
  const float = (n: OnnxNode, k: string, def: number) => attr(n, k)?.f ?? def;
  const ints = (n: OnnxNode, k: string, def: number[]) => attr(n, k)?.ints ?? def;
  const weight = (n: OnnxNode, i: number, what: string): OnnxTensor => {
    const t = consts.get(n.inputs[i]);
    if (!t) refuse(n, `has a ${what} ('${n.inputs[i]}') that is computed, not a stored weight`);
    return t!;
  };
  const add = (n: OnnxNode, layer: Module, weights: Record<string, OnnxTensor | Float32Array | undefined> = {}) => {
    const idx = layers.length;
    layers.push(layer);
    const own = layer.stateDict();
    for (const [k, t] of Object.entries(weights)) {
      if (!t) continue;
      const target = own.get(k)!;
      const data = t instanceof Float32Array ? t : Float32Array.from(t.data as ArrayLike<number>);
      if (data.length !== target.size) refuse(n, `has a ${k} of ${data.length} values where the layer needs [${target.shape.join(", ")}]`);
      state.set(`${idx}.${k}`, { shape: [...target.shape], data });
    }
  };
  const noAutoPad = (n: OnnxNode) => {
    const a = attr(n, "auto_pad")?.s ?? "NOTSET";
    if (a !== "NOTSET") refuse(n, `has auto_pad ${a}; convert maps explicit pads only`);
  };
  /** symmetric [top, left, bottom, right] pads -> [h, w], plus a folded Pad */
  const padding = (n: OnnxNode): [number, number] => {
    const p = ints(n, "pads", [0, 0, 0, 0]);
    if (p.length !== 4 || p[0] !== p[2] || p[1] !== p[3]) refuse(n, `has pads [${p.join(", ")}]; convert maps symmetric 2-d pads only`);
    if (!pad) return [p[0], p[1]];
    if (p.some((v) => v !== 0)) refuse(n, `follows a Pad and has pads of its own`);
    const hw = pad.hw;
    pad = null;
    return hw;
  };

  const read = new Set([...g.nodes.flatMap((n) => n.inputs), ...g.outputs.map((v) => v.name)]);
  for (const n of g.nodes) {
    try {
      mapNode(n);
    } catch (e) {
      // a layer's own argument check (a zero LRN size, a kernel larger than the input) names the node too
      if (e instanceof NotAChain) throw e;
      throw new Error(`${what}: ${nodeName(n)}: ${(e as Error).message}`);
    }
  }
  function mapNode(n: OnnxNode) {
    if (n.domain && n.domain !== "ai.onnx") refuse(n, `is in domain '${n.domain}'`);
    if (n.opType === "Constant") {
      const t = attr(n, "value")?.t;
      if (!t) refuse(n, "is a Constant without a tensor value");
      consts.set(n.outputs[0], t!);
      return;
    }
    if (n.inputs[0] !== current) refuse(n, `reads '${n.inputs[0]}', not the previous layer's output '${current}': convert maps plain chains of layers only`);
    if (pad && n.opType !== "Conv" && n.opType !== "AveragePool") refuse(pad.node, "is not followed by a Conv or AveragePool to fold into");
    switch (n.opType) {
      case "Identity":
        break;
      case "Conv": {
        noAutoPad(n);
        const w = weight(n, 1, "weight"), b = n.inputs[2] ? weight(n, 2, "bias") : undefined;
        if (w.dims.length !== 4) refuse(n, `has a weight of shape [${w.dims.join(", ")}]; convert maps 2-d convolutions only`);
        const groups = int(n, "group", 1);
        const conv = new Conv2d(w.dims[1] * groups, w.dims[0], [w.dims[2], w.dims[3]], {
          stride: ints(n, "strides", [1, 1]), padding: padding(n), dilation: ints(n, "dilations", [1, 1]), groups, bias: !!b,
        });
        add(n, conv, { weight: w, bias: b });
        break;
      }
      case "Gemm": {
        if (rank !== 2) refuse(n, "reads a 4-d value (no Flatten before it)");
        if (int(n, "transA", 0) !== 0 || float(n, "alpha", 1) !== 1 || float(n, "beta", 1) !== 1) refuse(n, "has transA, alpha or beta other than 0, 1, 1; convert maps x W^T + b only");
        const w = weight(n, 1, "weight"), b = n.inputs[2] ? weight(n, 2, "bias") : undefined;
        const transB = int(n, "transB", 0) === 1;
        const [outF, inF] = transB ? w.dims : [w.dims[1], w.dims[0]];
        if (b && (b.dims.length !== 1 || b.dims[0] !== outF)) refuse(n, `has a bias of shape [${b.dims.join(", ")}]; convert maps a bias of [${outF}] only`);
        if (w.dims.length !== 2) refuse(n, `has a weight of shape [${w.dims.join(", ")}]; Gemm's B is a matrix`);
        const stored = Float32Array.from(w.data as ArrayLike<number>);
        // Linear keeps [out, in]: a B of [in, out] (transB 0) is transposed
        const weightOutIn = transB ? stored : Float32Array.from(stored, (_, i) => stored[(i % inF) * outF + Math.floor(i / inF)]);
        add(n, new Linear(inF, outF, { bias: !!b }), { weight: weightOutIn, bias: b });
        break;
      }
      case "MaxPool":
      case "AveragePool": {
        noAutoPad(n);
        if (n.outputs[1] && read.has(n.outputs[1])) refuse(n, "has its indices output read by another node");
        if (int(n, "storage_order", 0) !== 0) refuse(n, "has storage_order 1");
        const k = ints(n, "kernel_shape", []);
        if (k.length !== 2) refuse(n, `has kernel_shape [${k.join(", ")}]; convert maps 2-d pools only`);
        const folded = !!pad;
        const common = { stride: ints(n, "strides", [1, 1]), padding: padding(n), ceilMode: int(n, "ceil_mode", 0) === 1 };
        if (n.opType === "MaxPool") add(n, new MaxPool2d(k, { ...common, dilation: ints(n, "dilations", [1, 1]) }));
        // the zeros of a folded Pad were counted in the average
        else add(n, new AvgPool2d(k, { ...common, countIncludePad: folded || int(n, "count_include_pad", 0) === 1 }));
        break;
      }
      case "GlobalAveragePool":
        add(n, new GlobalAvgPool2d());
        break;
      case "Pad": {
        const mode = attr(n, "mode")?.s ?? "constant";
        const p = opset >= 11 ? (n.inputs[1] ? Array.from(weight(n, 1, "pads").data as ArrayLike<number>, Number) : []) : ints(n, "pads", []);
        const value = opset >= 11 ? (n.inputs[2] ? Number((weight(n, 2, "constant value").data as ArrayLike<number>)[0]) : 0) : float(n, "value", 0);
        if (mode !== "constant" || value !== 0) refuse(n, `pads with ${mode} ${value}; convert folds zero pads only`);
        if (p.length !== 8 || p[0] || p[1] || p[4] || p[5] || p[2] !== p[6] || p[3] !== p[7]) refuse(n, `has pads [${p.join(", ")}]; convert folds the same zero pad at both ends of H and W only`);
        pad = { node: n, hw: [p[2], p[3]] };
        break;
      }
      case "BatchNormalization": {
        // a training-mode export names the updated running statistics as outputs; nothing reads them
        if (n.outputs.slice(1).some((o) => o && read.has(o))) refuse(n, "has its running-statistics outputs read by another node");
        const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => weight(n, i, ["scale", "bias", "mean", "variance"][i - 1]));
        const C = scale.dims[0], opts = { eps: float(n, "epsilon", 1e-5), momentum: 1 - float(n, "momentum", 0.9) };
        add(n, rank === 4 ? new BatchNorm2d(C, opts) : new BatchNorm1d(C, opts), { weight: scale, bias, running_mean: mean, running_var: variance });
        break;
      }
      case "LRN":
        add(n, new LocalResponseNorm(int(n, "size", 0), { alpha: float(n, "alpha", 1e-4), beta: float(n, "beta", 0.75), k: float(n, "bias", 1) }));
        break;
      case "Relu":
        add(n, new ReLU());
        break;
      case "LeakyRelu":
        add(n, new LeakyReLU(float(n, "alpha", 0.01)));
        break;
      case "Sigmoid":
        add(n, new Sigmoid());
        break;
      case "Tanh":
        add(n, new Tanh());
        break;
      case "Softmax":
      case "LogSoftmax": {
        let axis = int(n, "axis", opset >= 13 ? -1 : 1);
        if (axis < 0) axis += rank;
        // before opset 13 the softmax is over the flattened dims from axis on: the same only for the last axis
        if (opset < 13 && axis !== rank - 1) refuse(n, `has axis ${axis} on a rank-${rank} value at opset ${opset}`);
        add(n, n.opType === "Softmax" ? new Softmax(axis) : new LogSoftmax(axis));
        break;
      }
      case "Flatten":
        if (int(n, "axis", 1) !== 1) refuse(n, `has axis ${int(n, "axis", 1)}; convert maps Flatten(axis=1) only`);
        add(n, new Flatten());
        rank = 2;
        break;
      case "Reshape": {
        const s = Array.from(weight(n, 1, "shape").data as ArrayLike<number>, Number);
        // [N, -1] where N is -1, 0 (copy) or the batch size the export baked in (x.view(x.size(0), -1))
        if (rank !== 4 || s.length !== 2 || !(s[1] === -1 || s[0] === -1 || s[0] === 0 || s[0] === dataInputs[0].shape![0])) refuse(n, `reshapes to [${s.join(", ")}]; convert maps a flatten to [N, -1] only`);
        add(n, new Flatten());
        rank = 2;
        break;
      }
      case "Dropout": {
        const ratio = opset >= 12 ? (n.inputs[1] ? Number((weight(n, 1, "ratio").data as ArrayLike<number>)[0]) : 0.5) : float(n, "ratio", 0.5);
        add(n, new Dropout(ratio));
        break;
      }
      default:
        refuse(n, "does not map onto a layer (convert maps Conv, Gemm, MaxPool, AveragePool, GlobalAveragePool, BatchNormalization, LRN, Relu, LeakyRelu, Sigmoid, Tanh, Softmax, LogSoftmax, Flatten, Reshape to [N, -1], Dropout, Identity and a zero Pad before a Conv or AveragePool)");
    }
    current = n.outputs[0];
  }
  const trailingPad = pad as { node: OnnxNode } | null; // set inside mapNode, which TypeScript does not follow
  if (trailingPad) refuse(trailingPad.node, "is the last node; nothing to fold it into");
  if (current !== g.outputs[0].name) throw new NotAChain(`the graph's output '${g.outputs[0].name}' is not the end of the chain ('${current}')`);
  if (!layers.length) throw new NotAChain("the graph has no layers");

  const model = new Sequential(...layers);
  const { missing } = model.loadStateDict(state, { strict: false });
  const notCounters = missing.filter((k) => !k.endsWith("num_batches_tracked"));
  if (notCounters.length) throw new Error(`${what}: convert left ${notCounters.join(", ")} without weights`);
  model.eval();
  return { model, input, check: await compareWithGraph(model, bytes, input, dataInputs[0].shape![0]) };
}

/** Both models on one deterministic input of the graph's own batch size. */
async function compareWithGraph(model: Module, bytes: Uint8Array, input: number[], batchDim: number | string | null) {
  const graph = await loadOnnx(bytes);
  graph.eval();
  try {
    const shape = [typeof batchDim === "number" && batchDim > 0 ? batchDim : 2, ...input];
    const size = shape.reduce((a, b) => a * b, 1);
    const x = Float32Array.from({ length: size }, (_, i) => Math.sin(i * 12.9898) * 1.5);
    return noGrad(() => tidy(() => {
      const t = tensor(x, shape);
      const a = model.call(t), b = graph.call(t);
      if (a.shape.join() !== b.shape.join()) throw new Error(`convert built a model that gives [${a.shape.join(", ")}] where the graph gives [${b.shape.join(", ")}]`);
      const av = a.toArray(), bv = b.toArray();
      let maxDiff = 0, scale = 0;
      for (let i = 0; i < av.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(av[i] - bv[i]));
        scale = Math.max(scale, Math.abs(bv[i]));
      }
      return { maxDiff, scale };
    }));
  } finally {
    graph.dispose();
  }
}

