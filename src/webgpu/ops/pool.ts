// WebGPU kernels of the ops in src/ops/pool.ts (wgsl/pool.wgsl), attached to their op-table entries.
export {};
