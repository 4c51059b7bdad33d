// The whole wasm interface: re-exports only.
export * from "./eltwise";
export * from "./debug";
export * from "./gemm";
export * from "./conv2d";
// (only the kernels: `export *` would also export their @inline helpers, each then compiled once
// more as a function of its own)
export { f32_conv2d_dw_fwd } from "./conv_dw";
export { f32_conv_epilogue } from "./conv_epilogue";
export * from "./conv_small";
export * from "./conv_dw_bwd";
export * from "./pool";
export * from "./activation";
export * from "./loss";
export * from "./norm";
export * from "./optim";
export * from "./upsample";
export * from "./shape";
export { f32_winograd_weight, f32_winograd_fwd, f32_winograd_input } from "./winograd";
export * from "./winograd_dw";
