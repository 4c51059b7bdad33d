// WebGPU kernels of the ops in src/ops/linalg.ts (wgsl/linalg.wgsl), attached to their op-table entries.
export {};
