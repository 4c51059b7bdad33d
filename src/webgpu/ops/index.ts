// Importing these attaches the WebGPU kernels to the op table's entries (OpDef.webgpu): each file
// here is the GPU twin of the src/ops/ file of the same name, its WGSL in wgsl/.
import "./eltwise.js";
import "./linalg.js";
import "./shape.js";
import "./conv.js";
import "./pool.js";
import "./activation.js";
import "./loss.js";
import "./norm.js";
