// WebGPU kernels of the ops in src/ops/norm.ts (wgsl/norm.wgsl), attached to their op-table entries.
export {};
