// WebGPU kernels of the ops in src/ops/activation.ts (wgsl/activation.wgsl), attached to their op-table entries.
export {};
