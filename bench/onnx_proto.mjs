// The ONNX importer's protobuf reader (src/onnx/proto_read.ts) against protobufjs 7 (a
// well-kept protobuf library, already installed as a dependency of onnxruntime-web) decoding the
// same files with onnx.proto loaded by reflection: decode time, and the bundled size of each
// (esbuild, minified, gzip). Usage, after node tools/build.mjs:
//   node bench/onnx_proto.mjs <path to onnx.proto3 or onnx-ml.proto> [weights in millions]
// (onnx.proto ships with the onnx Python package: python3 -c "import onnx, os; print(os.path.dirname(onnx.__file__))")
import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import protobuf from "protobufjs";
import { buildModel } from "../test/onnx_build.mjs";

const [protoPath, millions = "8"] = process.argv.slice(2);
if (!protoPath) throw new Error("usage: node bench/onnx_proto.mjs <onnx.proto path> [weights in millions]");

async function bundledSize(contents) {
  const r = await build({ stdin: { contents, resolveDir: process.cwd(), loader: "ts" }, bundle: true, minify: true, format: "esm", write: false, platform: "neutral", mainFields: ["module", "main"], logLevel: "silent" });
  const bytes = r.outputFiles[0].contents;
  return `${(bytes.length / 1024).toFixed(1)} KB min, ${(gzipSync(bytes).length / 1024).toFixed(1)} KB gz`;
}

// a model with many weights (one Gemm per million) and one with many small nodes
const n = Math.round(+millions);
const big = buildModel({
  opset: 13, input: ["x", [1, 1000]], output: `h${n}`,
  nodes: Array.from({ length: n }, (_, i) => ({ op: "Gemm", inputs: [i ? `h${i}` : "x", `w${i}`], outputs: [`h${i + 1}`], attrs: { transB: 1 } })),
  inits: Array.from({ length: n }, (_, i) => ({ name: `w${i}`, dims: [1000, 1000], floats: new Float32Array(1e6).fill(i) })),
});
const many = buildModel({
  opset: 13, input: ["x", [1, 4]], output: "r20000",
  nodes: Array.from({ length: 20000 }, (_, i) => ({ op: "Relu", name: `relu_${i}`, inputs: [i ? `r${i}` : "x"], outputs: [`r${i + 1}`] })),
});

const { readModel } = await import("../src/onnx/proto_read.ts").catch(() => ({}));
const ours = readModel ?? (await loadOurs());
async function loadOurs() {
  const r = await build({ entryPoints: ["src/onnx/proto_read.ts"], bundle: true, format: "esm", write: false, platform: "neutral", logLevel: "silent" });
  const url = "data:text/javascript;base64," + Buffer.from(r.outputFiles[0].contents).toString("base64");
  return (await import(url)).readModel;
}
const root = await protobuf.load(protoPath);
const ModelProto = root.lookupType("onnx.ModelProto");

function time(fn, reps = 5) {
  fn();
  const t = [];
  for (let i = 0; i < reps; i++) {
    const s = performance.now();
    fn();
    t.push(performance.now() - s);
  }
  return Math.min(...t).toFixed(1);
}

for (const [what, bytes] of [[`${n} M weights (${(big.length / 2 ** 20).toFixed(0)} MB)`, big], ["20000 Relu nodes", many]]) {
  // protobufjs leaves raw_data as bytes; the float copy the importer needs is added to be fair
  const pb = () => {
    const m = ModelProto.decode(bytes);
    for (const t of m.graph.initializer) new Float32Array(t.rawData.slice().buffer);
  };
  console.log(`${what}: proto_read ${time(() => ours(bytes))} ms, protobufjs ${time(pb)} ms (best of 5)`);
}
console.log(`bundled: proto_read ${await bundledSize('export { readModel } from "./src/onnx/proto_read.ts";')}; protobufjs/light (reflection, plus the schema as JSON) ${await bundledSize('export { Root } from "protobufjs/light";')}; protobufjs/minimal (generated code only) ${await bundledSize('export * from "protobufjs/minimal";')}`);
