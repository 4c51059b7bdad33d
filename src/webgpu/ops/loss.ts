// WebGPU kernels of the ops in src/ops/loss.ts (wgsl/loss.wgsl), attached to their op-table entries.
export {};
