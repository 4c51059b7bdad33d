// Every op module registers its ops in the op table when imported.
export * from "./eltwise.js";
export * from "./linalg.js";
export * from "./conv.js";
export * from "./pool.js";
export * from "./activation.js";
export * from "./loss.js";
export * from "./norm.js";
export * from "./shape.js";
export * from "./fused.js";
import "./warmup.js";
