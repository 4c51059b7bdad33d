// The reference runtimes of bench/models.mjs, rebuilt from one of our models: its config
// (`model.config()`: layer types, arguments and names), its weights (state-dict name ->
// { shape, data }) and its shapes (summary rows by layer name). Each builder knows the layer
// types of the zoo's ResNets, VGG and LeNet and throws Na (the reason goes in the table) for
// anything else. `w.input` is the input shape [N, C, H, W].
import { setupTfjs, oihwToHwio } from "./refs.mjs";
import { GraphBuilder, f32 } from "./onnx.mjs";

/** A reference that cannot run a workload (or be compared): the reason goes in the table. */
export class Na extends Error {}

// ---------------------------------------------------------------- ONNX Runtime Web

/** An ONNX graph of our model from its config and weights (inference: batch norm with the
 *  running statistics, dropout as identity). */
export function onnxOf(w, ours) {
  const b = new GraphBuilder([{ name: "input", dims: w.input }]);
  const init = (name) => b.init(name, ours.weights.get(name).shape, ours.weights.get(name).data);
  const at = (p, n) => (p ? `${p}.${n}` : n);
  const build = (c, x, path) => {
    const a = c.args ?? [];
    switch (c.type) {
      case "Sequential":
        for (const [n, k] of c.children) x = build(k, x, at(path, n));
        return x;
      case "Conv2d": {
        const [, , k, o] = a;
        const ins = [x, init(`${path}.weight`), ...(o.bias ? [init(`${path}.bias`)] : [])];
        return b.node("Conv", ins, { kernel_shape: k, strides: o.stride, pads: [...o.padding, ...o.padding], dilations: o.dilation, group: o.groups }, path);
      }
      case "BatchNorm2d":
        return b.node("BatchNormalization", [x, ...["weight", "bias", "running_mean", "running_var"].map((p) => init(`${path}.${p}`))], { epsilon: f32(a[1].eps) }, path);
      case "ReLU":
        return b.node("Relu", [x]);
      case "MaxPool2d": {
        const o = a[1];
        return b.node("MaxPool", [x], { kernel_shape: a[0], strides: o.stride, pads: [...o.padding, ...o.padding], ...(o.ceilMode ? { ceil_mode: 1 } : {}) }, path);
      }
      case "AdaptiveAvgPool2d": {
        const inShape = ours.shapes.get(path).inputShape;
        if (a[0][0] === 1 && a[0][1] === 1) return b.node("GlobalAveragePool", [x], {}, path);
        if (a[0][0] === inShape[2] && a[0][1] === inShape[3]) return x; // the same size: nothing to do
        throw new Error(`onnx: AdaptiveAvgPool2d to ${a[0]} from ${inShape} is not written here`);
      }
      case "Flatten":
        return b.node("Flatten", [x], { axis: 1 });
      case "Dropout":
        return x;
      case "Linear":
        return b.node("Gemm", [x, init(`${path}.weight`), ...(a[2]?.bias === false ? [] : [init(`${path}.bias`)])], { transB: 1 }, path);
      case "ResidualBlock": {
        let y = x;
        for (const [n, k] of c.children) if (n !== "downsample" && n !== "relu") y = build(k, y, at(path, n));
        const ds = c.children.find(([n]) => n === "downsample");
        const s = ds ? build(ds[1], x, at(path, "downsample")) : x;
        return b.node("Relu", [b.node("Add", [y, s])]);
      }
      case "ZeroPadShortcut": {
        // the first in channels of a strided input, zeros above: a 1x1 convolution by a 0/1 matrix
        const [cin, cout, s] = a;
        const sel = new Float32Array(cout * cin);
        for (let i = 0; i < cin; i++) sel[i * cin + i] = 1;
        return b.node("Conv", [x, b.init(`${path}.select`, [cout, cin, 1, 1], sel)], { kernel_shape: [1, 1], strides: [s, s] }, path);
      }
    }
    throw new Error(`onnx: no rule for ${c.type} at '${path}'`);
  };
  const out = build(ours.config, "input", "");
  return b.finish(out, [w.input[0], ours.shapes.get([...ours.shapes.keys()].pop()).outputShape[1]]);
}

// ---------------------------------------------------------------- TF.js

/** tfjs-layers from our config and weights, NHWC. PyTorch's padding as explicit zero padding
 *  then 'valid' (TF's 'same' pads stride-2 layers on one side only); a max pool's zero padding
 *  equals PyTorch's -inf padding only after a ReLU, which is where the zoo's padded pools are
 *  (checked). Flatten puts NHWC back into NCHW order first, so the Linear weights fit. */
export async function tfjsModel(w, ours) {
  const tf = await setupTfjs();
  const tfl = await import("@tensorflow/tfjs-layers");
  const L = tfl.layers;
  const sets = [];
  const id = (p, s = "") => (p || "root").replaceAll(".", "_") + s;
  const wt = (name) => ours.weights.get(name);
  const at = (p, n) => (p ? `${p}.${n}` : n);
  let last = null; // the type of the layer before (padded max pools must follow a ReLU)
  let rank = 4;
  const build = (c, x, path) => {
    const a = c.args ?? [];
    const type = c.type;
    const y = (() => {
      switch (type) {
        case "Sequential":
          for (const [n, k] of c.children) x = build(k, x, at(path, n));
          return x;
        case "Conv2d": {
          const [cin, cout, k, o] = a;
          if (o.groups !== 1) throw new Na("grouped convolutions are not written here");
          if (o.padding[0] || o.padding[1]) x = L.zeroPadding2d({ padding: [[o.padding[0], o.padding[0]], [o.padding[1], o.padding[1]]], name: id(path, "_pad") }).apply(x);
          const layer = L.conv2d({ filters: cout, kernelSize: k, strides: o.stride, dilationRate: o.dilation, padding: "valid", useBias: !!o.bias, name: id(path) });
          const ww = wt(`${path}.weight`);
          sets.push([layer, [tf.tensor4d(oihwToHwio(ww.data, ww.shape), [k[0], k[1], cin, cout]), ...(o.bias ? [tf.tensor1d(wt(`${path}.bias`).data)] : [])]]);
          return layer.apply(x);
        }
        case "BatchNorm2d": {
          const layer = L.batchNormalization({ axis: 3, epsilon: a[1].eps, name: id(path) });
          sets.push([layer, ["weight", "bias", "running_mean", "running_var"].map((p) => tf.tensor1d(wt(`${path}.${p}`).data))]);
          return layer.apply(x);
        }
        case "ReLU":
          return L.reLU({ name: id(path) }).apply(x);
        case "MaxPool2d": {
          const o = a[1];
          if (o.ceilMode || o.dilation.some((d) => d !== 1)) throw new Na("max pools with ceil_mode or dilation are not written here");
          if (o.padding[0] || o.padding[1]) {
            if (last !== "ReLU") throw new Na(`the padded max pool at '${path}' does not follow a ReLU`);
            x = L.zeroPadding2d({ padding: [[o.padding[0], o.padding[0]], [o.padding[1], o.padding[1]]], name: id(path, "_pad") }).apply(x);
          }
          return L.maxPooling2d({ poolSize: a[0], strides: o.stride, padding: "valid", name: id(path) }).apply(x);
        }
        case "AdaptiveAvgPool2d": {
          const inShape = ours.shapes.get(path).inputShape;
          if (a[0][0] === 1 && a[0][1] === 1) {
            rank = 2;
            return L.globalAveragePooling2d({ name: id(path) }).apply(x);
          }
          if (a[0][0] === inShape[2] && a[0][1] === inShape[3]) return x;
          throw new Na(`AdaptiveAvgPool2d to ${a[0]} from ${inShape} is not written here`);
        }
        case "Flatten":
          if (rank === 2) return x;
          rank = 2;
          return L.flatten({ name: id(path) }).apply(L.permute({ dims: [3, 1, 2], name: id(path, "_nchw") }).apply(x));
        case "Dropout":
          return x;
        case "Linear": {
          const [, out, o] = a;
          const layer = L.dense({ units: out, useBias: o?.bias !== false, name: id(path) });
          const ww = wt(`${path}.weight`);
          sets.push([layer, [tf.transpose(tf.tensor2d(ww.data, ww.shape)), ...(o?.bias !== false ? [tf.tensor1d(wt(`${path}.bias`).data)] : [])]]);
          return layer.apply(x);
        }
        case "ResidualBlock": {
          let yb = x;
          for (const [n, k] of c.children) if (n !== "downsample" && n !== "relu") yb = build(k, yb, at(path, n));
          const ds = c.children.find(([n]) => n === "downsample");
          const s = ds ? build(ds[1], x, at(path, "downsample")) : x;
          return L.reLU({ name: id(path, "_relu") }).apply(L.add({ name: id(path, "_add") }).apply([yb, s]));
        }
        case "ZeroPadShortcut": {
          const [cin, cout, s] = a;
          const layer = L.conv2d({ filters: cout, kernelSize: 1, strides: s, padding: "valid", useBias: false, name: id(path) });
          const sel = new Float32Array(cin * cout);
          for (let i = 0; i < cin; i++) sel[i * cout + i] = 1; // HWIO: [1, 1, cin, cout]
          sets.push([layer, [tf.tensor4d(sel, [1, 1, cin, cout])]]);
          return layer.apply(x);
        }
      }
      throw new Na(`no rule for ${type} at '${path}'`);
    })();
    if (type !== "Sequential" && type !== "Dropout") last = type;
    return y;
  };
  const [, C, H, W] = w.input;
  const inp = tfl.input({ shape: [H, W, C], name: "x" });
  const model = tfl.model({ inputs: inp, outputs: build(ours.config, inp, "") });
  for (const [layer, ws] of sets) {
    layer.setWeights(ws);
    tf.dispose(ws);
  }
  return { tf, model };
}

// ---------------------------------------------------------------- PyTorch

/** Rebuilds the net from our config (the same names, so our state dict loads strictly), runs
 *  the same workload with torch.set_num_threads(threads), prints one JSON line. */
export const TORCH_SCRIPT = String.raw`
import copy, json, sys, time
from collections import OrderedDict
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
m = json.load(open(sys.argv[1]))
torch.set_num_threads(m["threads"])
blob = np.fromfile(m["blob"], dtype=np.float32)
def arr(e):
    return torch.from_numpy(blob[e["offset"]:e["offset"] + e["size"]].copy()).reshape(e["shape"])
class Block(nn.Module):
    def __init__(self, kids):
        super().__init__()
        for n, k in kids: self.add_module(n, k)
        self.body = [n for n, _ in kids if n not in ("downsample", "relu")]
    def forward(self, x):
        y = x
        for n in self.body: y = getattr(self, n)(y)
        s = self.downsample(x) if hasattr(self, "downsample") else x
        return self.relu(y + s)
class ZeroPad(nn.Module):
    def __init__(self, cin, cout, s):
        super().__init__(); self.cout, self.s = cout, s
    def forward(self, x):
        x = x[:, :, ::self.s, ::self.s]
        return F.pad(x, (0, 0, 0, 0, 0, self.cout - x.shape[1]))
def build(c):
    a, t = c.get("args", []), c["type"]
    kids = [(n, build(k)) for n, k in c.get("children", [])]
    if t == "Sequential": return nn.Sequential(OrderedDict(kids))
    if t == "ResidualBlock": return Block(kids)
    if t == "Conv2d":
        o = a[3]
        return nn.Conv2d(a[0], a[1], a[2], stride=o["stride"], padding=o["padding"], dilation=o["dilation"], groups=o["groups"], bias=o["bias"])
    if t == "BatchNorm2d":
        o = a[1]
        return nn.BatchNorm2d(a[0], eps=o["eps"], momentum=o["momentum"], affine=o["affine"], track_running_stats=o["trackRunningStats"])
    if t == "ReLU": return nn.ReLU()
    if t == "MaxPool2d":
        o = a[1]
        return nn.MaxPool2d(a[0], stride=o["stride"], padding=o["padding"], dilation=o["dilation"], ceil_mode=o["ceilMode"])
    if t == "AdaptiveAvgPool2d": return nn.AdaptiveAvgPool2d(tuple(a[0]))
    if t == "Flatten": return nn.Flatten(a[0] if a else 1)
    if t == "Dropout": return nn.Dropout(a[0] if a else 0.5)
    if t == "Linear": return nn.Linear(a[0], a[1], bias=(a[2] if len(a) > 2 else {}).get("bias", True))
    if t == "ZeroPadShortcut": return ZeroPad(*a)
    raise ValueError("no rule for " + t)
model = build(m["config"])
sd = {e["name"]: arr(e) for e in m["weights"]}
missing, unexpected = model.load_state_dict(sd, strict=False)
missing = [k for k in missing if not k.endswith("num_batches_tracked")]
if missing or unexpected: raise ValueError("state dict: missing %s, unexpected %s" % (missing, unexpected))
x = arr(m["input"])
out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
if m["train"]:
    model.train()
    y = torch.tensor(m["labels"], dtype=torch.long)
    opt = torch.optim.SGD(model.parameters(), lr=m["lr"], momentum=m["momentum"])
    first = dict(model.named_parameters())[m["gradName"]]
    def run():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        g = first.grad.detach().clone()
        opt.step()
        return loss.item(), g
    # the same first step in float64 from the same weights: how far float32 rounding alone
    # moves this step's first-layer gradient (ours and PyTorch's are both compared with it)
    model64 = copy.deepcopy(model).double()
    loss64 = F.cross_entropy(model64(x.double()), y)
    loss64.backward()
    out["loss64"], out["grad64"] = loss64.item(), dict(model64.named_parameters())[m["gradName"]].grad.flatten().tolist()
    del model64
    loss, g = run()
    out["loss"], out["grad"] = loss, g.flatten().tolist()
else:
    model.eval()
    def run():
        with torch.no_grad(): return model(x).numpy()
    out["logits"] = run().flatten().tolist()
print(json.dumps(out), flush=True)
# then one call per "run" line, so that the parent can take turns with ours
for line in sys.stdin:
    if line.strip() != "run": break
    run()
    print("done", flush=True)
`;
