// What every WGSL kernel starts with: the arena (all tensors, like wasm linear memory) and the
// dispatch's arguments. Kernels take element offsets and sizes as u32 words, floats as their bit
// patterns (argf), and index work with wid()/gid(), which undo the engine's folding of large
// x-dimensions into y (engine.ts, dispatch). Kernels that check their data report a bad element
// with report_bad() (engine.ts, "Errors found on the GPU").
//
// wid(): the flat workgroup index (x folded into y past 65,535 groups).
// report_bad(): a device-side assert: element i of the tensor this dispatch checks is bad. tag:
// the dispatch's argument from GpuEngine.checkTag(). The earliest failing dispatch in queue
// order keeps the record (tags grow with the order; the complement makes atomicMax keep the
// smallest, over an empty record of 0; an earlier dispatch's error is kept), and within it the
// lowest i: the same record whatever order threads run. The comments are out here, not in the
// WGSL text: this string ships in the browser download as it is written (the .wgsl files are
// stripped by the build).
export const PRELUDE = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> mem: array<f32>;
struct Args { w: array<vec4<u32>, 8> }
@group(0) @binding(1) var<uniform> args: Args;
fn arg(i: u32) -> u32 { return args.w[i / 4u][i % 4u]; }
fn argf(i: u32) -> f32 { return bitcast<f32>(arg(i)); }
fn wid(g: vec3<u32>) -> u32 { return g.x + g.y * args.w[7].w; }
@group(0) @binding(2) var<storage, read_write> dev_err: array<atomic<u32>, 4>;
fn report_bad(tag: u32, i: u32) {
let prev = atomicMax(&dev_err[0], ~tag);
if (prev != 0u && prev != ~tag) { return; }
atomicMax(&dev_err[1], ~i);
}
`;
