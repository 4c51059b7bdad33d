// ONNX import: loadOnnx(bytes) -> a Module (placeholder until the importer lands).
import type { Module } from "../index.js";

export class OnnxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OnnxError";
  }
}

export interface LoadOnnxOptions {}

export async function loadOnnx(_bytes: Uint8Array | ArrayBuffer, _options: LoadOnnxOptions = {}): Promise<Module> {
  throw new OnnxError("loadOnnx: not implemented yet");
}
