// Kernels used by the engine's own tests: a trap on one chosen thread (a worker that throws).
export function debug_trap_on(thread: i32, ith: i32, nth: i32): void {
  if (ith == thread) unreachable();
}

/** Peak micro-benchmark: `chains` independent f32x4 multiply-add chains, `iters` rounds. */
export function bench_simd_peak(out: usize, iters: i32, ith: i32, nth: i32): void {
  // the chains start equal (from a value the compiler cannot fold) and stay independent
  let a0 = f32x4.splat(<f32>(iters & 1) + 1), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
  let a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
  const m = f32x4.splat(0.999999), c = f32x4.splat(1e-7);
  for (let i = 0; i < iters; i++) {
    a0 = madd(a0, m, c); a1 = madd(a1, m, c); a2 = madd(a2, m, c); a3 = madd(a3, m, c);
    a4 = madd(a4, m, c); a5 = madd(a5, m, c); a6 = madd(a6, m, c); a7 = madd(a7, m, c);
    a8 = madd(a8, m, c); a9 = madd(a9, m, c); a10 = madd(a10, m, c); a11 = madd(a11, m, c);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)),
    f32x4.add(f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)), f32x4.add(f32x4.add(a8, a9), f32x4.add(a10, a11))));
  v128.store(out + (<usize>ith << 4), s);
}
import { madd } from "./common";
