// The geometry block every convolution kernel reads (assembly/conv2d.ts and its siblings):
// 17 i32 in the engine's memory for the duration of fn.
import type { Engine } from "../engine/engine.js";
import type { ConvGeometry } from "./conv.js";

/** g (N, C, H, W, O, G, KH, KW, SH, SW, PH, PW, DH, DW, HO, WO) and padf (the padded block's
 *  floats, 0 where the kernel takes no padded path) in a block the kernels read, freed after fn. */
export function withGeometry<T>(eng: Engine, g: ConvGeometry, padf: number, fn: (geo: number) => T): T {
  const geo = eng.alloc(68, "conv geometry");
  try {
    new Int32Array(eng.memory.buffer, geo, 17).set([g.N, g.C, g.H, g.W, g.O, g.G, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.DH, g.DW, g.HO, g.WO, padf]);
    return fn(geo);
  } finally {
    eng.release(geo);
  }
}
