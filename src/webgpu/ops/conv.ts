// WebGPU kernels of the ops in src/ops/conv.ts (wgsl/conv.wgsl), attached to their op-table entries.
export {};
