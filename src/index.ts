// simdnet: CNNs on WebAssembly SIMD and threads, training included.
export { init, engine, dispose, Engine, type InitOptions, type EngineInfo } from "./engine/engine.js";
export { setWasmPath } from "./engine/wasm.js";
export { Tensor, tensor, empty, zeros, ones, full, tidy, keep, shapeStr } from "./tensor.js";
export { noGrad, isGradEnabled } from "./autograd.js";
export { opTable, OpError, type OpEntry } from "./ops/table.js";
export * from "./ops/index.js";
export { parseSafetensors, serializeSafetensors, SafetensorsError, type SafeFile, type SafeTensor } from "./io/safetensors.js";
export * as nn from "./nn/index.js";
export { Module, Sequential } from "./nn/index.js";
export { Generator, manualSeed, defaultGenerator, type RngState } from "./random.js";
export { summary, formatSummary, type ModelSummary } from "./summary.js";
export * as models from "./models/index.js";
export { createModel } from "./models/index.js";
export * as data from "./data/index.js";
export { Dataset, DataLoader, fromPixels, loadMnistDigits, loadFashionMnist } from "./data/index.js";
export * as viz from "./viz/index.js";
export { fit, evaluate, packCheckpoint, unpackCheckpoint, saveCheckpoint, loadCheckpoint, historySvg, NonFiniteError, type FitOptions, type EpochRecord } from "./train/index.js";
export { weightsToSafetensors, loadWeights, modelConfig, modelFromConfig, saveModel, loadModel } from "./nn/save.js";
