// simdnet/onnx: ONNX in (loadOnnx) and out (exportOnnx). A separate entry point so that the
// browser bundle of the library stays small for apps that never touch ONNX. Everything here
// imports the library through its public API ("../index.js"), which the build maps to the
// library's own bundle, so both entry points share one engine, one Tensor and one Module class.
// the WebGPU kernels of the ops in ops.ts
import "./gpu.js";
export { loadOnnx, OnnxError, type LoadOnnxOptions } from "./import.js";
export { exportOnnx, OPSET_MIN, OPSET_MAX, OPSET_DEFAULT, type ExportOnnxOptions } from "./export.js";
// the protobuf writer, for tools that write ONNX graphs of their own (bench/onnx.mjs)
export { encodeModel, f32, type GraphSpec, type NodeSpec, type TensorInit, type ValueSpec, type AttrValue } from "./proto_write.js";
