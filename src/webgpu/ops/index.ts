// Importing these attaches the WebGPU kernels to the op table's entries (OpDef.webgpu).
import "./eltwise.js";
