// WebGPU kernels of the ops in src/ops/shape.ts (wgsl/shape.wgsl), attached to their op-table entries.
export {};
