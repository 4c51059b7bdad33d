// The whole wasm interface: re-exports only.
export * from "./eltwise";
export * from "./debug";
