// simdnet: CNNs on WebAssembly SIMD and threads, training included.
export { init, engine, dispose, Engine, type InitOptions, type EngineInfo } from "./engine/engine.js";
export { setWasmPath } from "./engine/wasm.js";
export { Tensor, tensor, empty, zeros, ones, full, tidy, keep, shapeStr } from "./tensor.js";
export { noGrad, isGradEnabled } from "./autograd.js";
export { opTable, OpError, type OpEntry } from "./ops/table.js";
export * from "./ops/index.js";
export { parseSafetensors, serializeSafetensors, SafetensorsError, type SafeFile, type SafeTensor } from "./io/safetensors.js";
export * from "./optim/index.js";
