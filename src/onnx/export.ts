// ONNX export: exportOnnx(model, inputShape, { opset }) -> the bytes of an .onnx file
// (placeholder until the exporter lands).
import type { Module } from "../index.js";
import { OnnxError } from "./import.js";

export interface ExportOnnxOptions {
  opset?: number;
}

export function exportOnnx(_model: Module, _inputShape: number[], _options: ExportOnnxOptions = {}): Uint8Array {
  throw new OnnxError("exportOnnx: not implemented yet");
}
