// Load-time rewrites of an ONNX graph that give the same results with fewer, faster ops.
import type { OnnxNode } from "./proto_read.js";
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

