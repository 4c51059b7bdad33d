// Load-time rewrites of an ONNX graph that give the same results with fewer, faster ops.
import type { OnnxAttribute, OnnxNode } from "./proto_read.js";
import type { Const } from "./consts.js";

/** torch exports nn.AvgPool2d(padding=p) as Pad + AveragePool, and F.pad before a conv is common:
 *  a zero Pad of H and W (the same at both ends) whose only reader is an AveragePool (floor mode,
 *  no pads of its own) or a Conv becomes that op's own padding (counted in the average, as the
 *  explicit zeros were). Same result, and the library's pooling and conv kernels (WebGPU ones
 *  included) do the padding instead of the CPU-only Pad op. */
export function fusePads(nodes: OnnxNode[], consts: Map<string, Const>, output: string, opset: number): OnnxNode[] {
  const readers = new Map<string, OnnxNode[]>();
  for (const n of nodes) for (const i of n.inputs) if (i) readers.set(i, [...(readers.get(i) ?? []), n]);
  const replaced = new Map<OnnxNode, OnnxNode>(), dropped = new Set<OnnxNode>();
  for (const pad of nodes) {
    if (pad.opType !== "Pad" || (pad.attributes.get("mode")?.s ?? "constant") !== "constant") continue;
    const out = pad.outputs[0], next = readers.get(out);
    if (out === output || next?.length !== 1 || next[0].inputs[0] !== out || next[0].inputs.slice(1).includes(out)) continue;
    const reader = next[0];
    let pads: number[] | undefined, value = 0;
    if (opset < 11) (pads = pad.attributes.get("pads")?.ints), (value = pad.attributes.get("value")?.f ?? 0);
    else {
      const pc = consts.get(pad.inputs[1]);
      pads = pc && Array.from(pc.data).every(Number.isInteger) ? Array.from(pc.data) : undefined;
      const v = pad.inputs[2] ? consts.get(pad.inputs[2]) : undefined;
      if (pad.inputs[2] && !v) continue;
      value = v ? v.data[0] : 0;
      if (pad.inputs[3]) continue; // opset 18 axes: left to the Pad op
    }
    if (!pads || pads.length !== 8 || value !== 0 || pads[0] || pads[1] || pads[4] || pads[5] || pads[2] !== pads[6] || pads[3] !== pads[7]) continue;
    const attr = (n: OnnxNode, name: string) => n.attributes.get(name);
    if ((attr(reader, "auto_pad")?.s ?? "NOTSET") !== "NOTSET") continue;
    const own = attr(reader, "pads")?.ints ?? [0, 0, 0, 0];
    if (own.length !== 4) continue;
    const merged = [own[0] + pads[2], own[1] + pads[3], own[2] + pads[6], own[3] + pads[7]];
    const attributes = new Map(reader.attributes);
    attributes.set("pads", { name: "pads", type: 7, ints: merged, floats: [], strings: [] });
    if (reader.opType === "AveragePool") {
      // the explicit zeros were counted in the average: only then is it the same pool
      if (own.some(Boolean) || attr(reader, "ceil_mode")?.i) continue;
      const k = attr(reader, "kernel_shape")?.ints ?? [];
      if (k.length !== 2 || merged[0] > k[0] >> 1 || merged[1] > k[1] >> 1) continue; // the pool's limit
      attributes.set("count_include_pad", { name: "count_include_pad", type: 2, i: 1, ints: [], floats: [], strings: [] });
    } else if (reader.opType !== "Conv") continue;
    replaced.set(reader, { ...reader, inputs: [pad.inputs[0], ...reader.inputs.slice(1)], attributes });
    dropped.add(pad);
  }
  return nodes.filter((n) => !dropped.has(n)).map((n) => replaced.get(n) ?? n);
}


const floatAttr = (name: string, f: number): OnnxAttribute => ({ name, type: 1, f, ints: [], floats: [], strings: [] });
const intAttr = (name: string, i: number): OnnxAttribute => ({ name, type: 2, i, ints: [], floats: [], strings: [] });

/** torch exports nn.LocalResponseNorm(size, alpha, beta, k) as about twenty nodes:
 *    Mul(x, x) -> Unsqueeze/Reshape to 5-d -> Pad (size/2 before, (size-1)/2 after, on channels)
 *    -> AveragePool [size, 1, 1] -> (If on the shape) Squeeze/Reshape back -> Mul alpha -> Add k
 *    -> Pow beta -> Div(x, .)
 *  with shape arithmetic around it. That is one LRN node: PyTorch's formula, which the library's
 *  local_response_norm follows (kernels on the CPU and WebGPU, instead of eight element-wise
 *  passes). Anything that differs from this pattern is left as it is (and runs node by node). */
export function fuseLrn(nodes: OnnxNode[], consts: Map<string, Const>, output: string): OnnxNode[] {
  const producer = new Map<string, OnnxNode>();
  for (const n of nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const scalar = (name: string) => {
    const c = consts.get(name);
    return c && c.size === 1 ? c.data[0] : undefined;
  };
  /** (data input, constant) of a binary node with one constant operand */
  const withConst = (n: OnnxNode | undefined, op: string): [string, number] | null => {
    if (!n || n.opType !== op) return null;
    const [a, b] = n.inputs;
    if (scalar(b) !== undefined && !consts.has(a)) return [a, scalar(b)!];
    if (scalar(a) !== undefined && !consts.has(b)) return [b, scalar(a)!];
    return null;
  };
  /** back through shape-only nodes (and an If whose branches only reshape one outer value) */
  const reshapedFrom = (name: string): string => {
    for (;;) {
      const n = producer.get(name);
      if (!n) return name;
      if (["Reshape", "Squeeze", "Unsqueeze", "Identity"].includes(n.opType)) name = n.inputs[0];
      else if (n.opType === "If") {
        const outer = ["then_branch", "else_branch"].map((b) => {
          const g = n.attributes.get(b)?.g;
          if (!g || g.nodes.some((m) => !["Constant", "Squeeze", "Unsqueeze", "Reshape", "Identity"].includes(m.opType))) return null;
          const inside = new Set(g.nodes.flatMap((m) => m.outputs));
          const uses = new Set(g.nodes.flatMap((m) => m.inputs.filter((i) => i && !inside.has(i) && !consts.has(i))));
          return uses.size === 1 ? [...uses][0] : null;
        });
        if (!outer[0] || outer[0] !== outer[1]) return name;
        name = outer[0];
      } else return name;
    }
  };
  const replaced = new Map<OnnxNode, OnnxNode>();
  for (const div of nodes) {
    if (div.opType !== "Div") continue;
    const x = div.inputs[0];
    const pow = withConst(producer.get(div.inputs[1]), "Pow");
    const add = pow && withConst(producer.get(pow[0]), "Add");
    const mul = add && withConst(producer.get(add[0]), "Mul");
    if (!pow || !add || !mul) continue;
    const pool = producer.get(reshapedFrom(mul[0]));
    const at = (n: OnnxNode, a: string) => n.attributes.get(a);
    if (!pool || pool.opType !== "AveragePool" || (at(pool, "auto_pad")?.s ?? "NOTSET") !== "NOTSET" || at(pool, "ceil_mode")?.i) continue;
    const k = at(pool, "kernel_shape")?.ints ?? [];
    const size = k[0];
    if (k.length !== 3 || k[1] !== 1 || k[2] !== 1 || (at(pool, "strides")?.ints ?? [1, 1, 1]).some((s) => s !== 1) || (at(pool, "pads")?.ints ?? []).some(Boolean)) continue;
    // the zero pads on the channel axis (dimension 2 of the 5-d view), possibly in several Pads
    let name = pool.inputs[0], before = 0, after = 0, ok = true;
    for (let p = producer.get(name); p?.opType === "Pad"; p = producer.get(name)) {
      const pads = consts.get(p.inputs[1]), value = p.inputs[2] ? scalar(p.inputs[2]) : 0;
      if (!pads || pads.size !== 10 || value !== 0 || (at(p, "mode")?.s ?? "constant") !== "constant" || p.inputs[3]) {
        ok = false;
        break;
      }
      const v = Array.from(pads.data);
      if (v.some((d, i) => d !== 0 && i !== 2 && i !== 7)) {
        ok = false;
        break;
      }
      before += v[2];
      after += v[7];
      name = p.inputs[0];
    }
    const square = producer.get(reshapedFrom(name));
    if (!ok || before !== size >> 1 || after !== (size - 1) >> 1 || !square || square.opType !== "Mul" || square.inputs[0] !== x || square.inputs[1] !== x) continue;
    replaced.set(div, {
      name: div.name.replace(/\/Div$/, "") || div.outputs[0],
      opType: "LRN",
      domain: "",
      inputs: [x],
      outputs: div.outputs,
      attributes: new Map<string, OnnxAttribute>([["size", intAttr("size", size)], ["alpha", floatAttr("alpha", mul[1])], ["beta", floatAttr("beta", pow[1])], ["bias", floatAttr("bias", add[1])]]),
    });
  }
  if (!replaced.size) return nodes;
  return withoutDeadNodes(nodes.map((n) => replaced.get(n) ?? n), output);
}

/** Drops nodes whose outputs nothing reads (what a fusion left behind). */
function withoutDeadNodes(nodes: OnnxNode[], output: string): OnnxNode[] {
  let live = nodes;
  for (;;) {
    const read = new Set<string>([output]);
    for (const n of live) {
      for (const i of n.inputs) read.add(i);
      for (const a of n.attributes.values()) if (a.g) for (const m of a.g.nodes) for (const i of m.inputs) read.add(i);
    }
    const next = live.filter((n) => n.outputs.some((o) => o && read.has(o)));
    if (next.length === live.length) return live;
    live = next;
  }
}
