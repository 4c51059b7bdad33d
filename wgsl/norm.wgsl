// Normalisation kernels: the twins of assembly/norm.ts (batch norm, local response norm,
// dropout). Element-wise passes: one thread an element, 256 a workgroup.
//
// Batch norm sees its input as [N, C, HW]. Per-channel reductions run in two passes of fixed
// shape (no atomics, the same bits run to run): pass 1 gives each (channel, chunk of CH values)
// a workgroup that writes a partial; pass 2 gives each channel a workgroup that combines its S
// partials. Inside a workgroup each thread sums a strided share in order, then a fixed tree.

var<workgroup> red: array<f32, 256>;

/** Σ of v over the workgroup (a fixed tree); every thread gets it. Call in uniform control flow. */
fn wg_sum(l: u32, v: f32) -> f32 {
  red[l] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (l < s) { red[l] += red[l + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

/** Offset of value j (of the N*HW of channel c) in an [N, C, HW] tensor. */
fn bn_at(j: u32, c: u32, C: u32, HW: u32) -> u32 { return ((j / HW) * C + c) * HW + j % HW; }

// The statistics are the CPU's two-pass scheme: a first mean m0, then the deviations from it,
// Σ(x - m0) and Σ(x - m0)², give mean = m0 + Σ(x - m0)/M and var = Σ(x - m0)²/M - (mean - m0)²
// (the small shift term corrects m0's rounding; no cancellation of large squares).

// bn_partials(x, part, N, C, HW, S, CH, m0, shifted): per (channel, chunk): Σ(x - m0) and
// Σ(x - m0)² at part[2*(c*S + s)]; m0 = mem[m0 + c] when shifted, else 0 (the first pass).
@compute @workgroup_size(256)
fn bn_partials(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let C = arg(3u); let HW = arg(4u); let S = arg(5u); let CH = arg(6u);
  let o = wid(g);
  if (o >= C * S) { return; }
  let c = o / S;
  var m0 = 0.0;
  if (arg(8u) == 1u) { m0 = mem[arg(7u) + c]; }
  let j0 = (o % S) * CH;
  let j1 = min(arg(2u) * HW, j0 + CH);
  var s1 = 0.0;
  var s2 = 0.0;
  for (var j = j0 + l; j < j1; j += 256u) {
    let d = mem[arg(0u) + bn_at(j, c, C, HW)] - m0;
    s1 += d;
    s2 += d * d;
  }
  let t1 = wg_sum(l, s1);
  let t2 = wg_sum(l, s2);
  if (l == 0u) {
    mem[arg(1u) + 2u * o] = t1;
    mem[arg(1u) + 2u * o + 1u] = t2;
  }
}

/** Σ over a channel's S partials, word w (0 or 1) of each; every thread gets it. */
fn part_sum(l: u32, p: u32, S: u32, w: u32) -> f32 {
  var acc = 0.0;
  for (var i = l; i < S; i += 256u) { acc += mem[p + 2u * i + w]; }
  return wg_sum(l, acc);
}

// bn_mean0(part, m0, C, S, M): the first pass's mean per channel
@compute @workgroup_size(256)
fn bn_mean0(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let c = wid(g);
  let S = arg(3u);
  if (c >= arg(2u)) { return; }
  let m = part_sum(l, arg(0u) + 2u * c * S, S, 0u) / f32(arg(4u));
  if (l == 0u) { mem[arg(1u) + c] = m; }
}

// bn_stats(part, mean, invstd, rmean, rvar, C, S, M, eps, momentum, running): from the shifted
// partials and m0 (in mean, replaced by the mean): invstd from the biased variance; the running
// statistics (when given) updated in place with the unbiased one, as PyTorch:
// r = momentum * batch + (1 - momentum) * r.
@compute @workgroup_size(256)
fn bn_stats(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let c = wid(g);
  let S = arg(6u);
  let M = f32(arg(7u));
  if (c >= arg(5u)) { return; }
  let p = arg(0u) + 2u * c * S;
  let d = part_sum(l, p, S, 0u) / M;
  let ss = max(part_sum(l, p, S, 1u) - M * d * d, 0.0);
  if (l == 0u) {
    let mu = mem[arg(1u) + c] + d;
    mem[arg(1u) + c] = mu;
    mem[arg(2u) + c] = 1.0 / sqrt(ss / M + argf(8u));
    if (arg(10u) == 1u) {
      let mom = argf(9u);
      mem[arg(3u) + c] = mom * mu + (1.0 - mom) * mem[arg(3u) + c];
      mem[arg(4u) + c] = mom * (ss / (M - 1.0)) + (1.0 - mom) * mem[arg(4u) + c];
    }
  }
}

// Few values per channel (N·HW <= SMALL_M, e.g. BatchNorm1d's [N, C]): a workgroup of 256 for a
// handful of values is waste; one thread a channel runs the same two passes in order.
fn bn_small_at(n: u32, i: u32, c: u32, C: u32, HW: u32) -> u32 { return (n * C + c) * HW + i; }

// bn_stats_small(x, mean, invstd, rmean, rvar, N, C, HW, eps, momentum, running)
@compute @workgroup_size(64)
fn bn_stats_small(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let N = arg(5u); let C = arg(6u); let HW = arg(7u);
  let c = wid(g) * 64u + l;
  if (c >= C) { return; }
  let M = f32(N * HW);
  var s0 = 0.0;
  for (var n = 0u; n < N; n++) { for (var i = 0u; i < HW; i++) { s0 += mem[arg(0u) + bn_small_at(n, i, c, C, HW)]; } }
  let m0 = s0 / M;
  var s1 = 0.0;
  var s2 = 0.0;
  for (var n = 0u; n < N; n++) {
    for (var i = 0u; i < HW; i++) {
      let d = mem[arg(0u) + bn_small_at(n, i, c, C, HW)] - m0;
      s1 += d;
      s2 += d * d;
    }
  }
  let d = s1 / M;
  let ss = max(s2 - M * d * d, 0.0);
  let mu = m0 + d;
  mem[arg(1u) + c] = mu;
  mem[arg(2u) + c] = 1.0 / sqrt(ss / M + argf(8u));
  if (arg(10u) == 1u) {
    let mom = argf(9u);
    mem[arg(3u) + c] = mom * mu + (1.0 - mom) * mem[arg(3u) + c];
    mem[arg(4u) + c] = mom * (ss / (M - 1.0)) + (1.0 - mom) * mem[arg(4u) + c];
  }
}

// bn_invstd(rvar, invstd, C, eps): inference: 1/sqrt(running var + eps)
@compute @workgroup_size(256)
fn bn_invstd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let c = wid(g) * 256u + l;
  if (c < arg(2u)) { mem[arg(1u) + c] = 1.0 / sqrt(mem[arg(0u) + c] + argf(3u)); }
}

// bn_fwd(x, y, mean, invstd, w, b, total, C, HW, hasW, hasB): y = (x - mean)·(invstd·w) + b
@compute @workgroup_size(256)
fn bn_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i >= arg(6u)) { return; }
  let c = (i / arg(8u)) % arg(7u);
  var a = mem[arg(3u) + c];
  if (arg(9u) == 1u) { a *= mem[arg(4u) + c]; }
  var b = 0.0;
  if (arg(10u) == 1u) { b = mem[arg(5u) + c]; }
  mem[arg(1u) + i] = (mem[arg(0u) + i] - mem[arg(2u) + c]) * a + b;
}

// bn_bwd_partials(x, g, mean, part, N, C, HW, S, CH): per (channel, chunk): Σ g, Σ g·(x - mean)
@compute @workgroup_size(256)
fn bn_bwd_partials(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let C = arg(5u); let HW = arg(6u); let S = arg(7u); let CH = arg(8u);
  let o = wid(g);
  if (o >= C * S) { return; }
  let c = o / S;
  let m = mem[arg(2u) + c];
  let j0 = (o % S) * CH;
  let j1 = min(arg(4u) * HW, j0 + CH);
  var sg = 0.0;
  var sgx = 0.0;
  for (var j = j0 + l; j < j1; j += 256u) {
    let at = bn_at(j, c, C, HW);
    let gv = mem[arg(1u) + at];
    sg += gv;
    sgx += gv * (mem[arg(0u) + at] - m);
  }
  let tg = wg_sum(l, sg);
  let tgx = wg_sum(l, sgx);
  if (l == 0u) {
    mem[arg(3u) + 2u * o] = tg;
    mem[arg(3u) + 2u * o + 1u] = tgx;
  }
}

// bn_bwd_params(part, invstd, dw, db, C, S): db = Σ g, dw = invstd · Σ g·(x - mean)
@compute @workgroup_size(256)
fn bn_bwd_params(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let c = wid(g);
  let S = arg(5u);
  if (c >= arg(4u)) { return; }
  let p = arg(0u) + 2u * c * S;
  var sg = 0.0;
  var sgx = 0.0;
  for (var i = l; i < S; i += 256u) {
    sg += mem[p + 2u * i];
    sgx += mem[p + 2u * i + 1u];
  }
  let tg = wg_sum(l, sg);
  let tgx = wg_sum(l, sgx);
  if (l == 0u) {
    mem[arg(3u) + c] = tg;
    mem[arg(2u) + c] = tgx * mem[arg(1u) + c];
  }
}

// bn_bwd_params_small(x, g, mean, invstd, dw, db, N, C, HW): one thread a channel (see above)
@compute @workgroup_size(64)
fn bn_bwd_params_small(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let N = arg(6u); let C = arg(7u); let HW = arg(8u);
  let c = wid(g) * 64u + l;
  if (c >= C) { return; }
  let m = mem[arg(2u) + c];
  var sg = 0.0;
  var sgx = 0.0;
  for (var n = 0u; n < N; n++) {
    for (var i = 0u; i < HW; i++) {
      let at = bn_small_at(n, i, c, C, HW);
      let gv = mem[arg(1u) + at];
      sg += gv;
      sgx += gv * (mem[arg(0u) + at] - m);
    }
  }
  mem[arg(5u) + c] = sg;
  mem[arg(4u) + c] = sgx * mem[arg(3u) + c];
}

// bn_bwd_input(x, g, mean, invstd, w, dw, db, total, C, HW, M, training, hasW, dx):
//   dx = (g - db/M - (x - mean)·invstd·dw/M) · invstd·w   (training: the statistics depend on x)
//   dx = (g - 0 - (x - mean)·0) · invstd·w                  (inference, as the CPU writes it)
@compute @workgroup_size(256)
fn bn_bwd_input(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i >= arg(7u)) { return; }
  let c = (i / arg(9u)) % arg(8u);
  let is = mem[arg(3u) + c];
  var a = is;
  if (arg(12u) == 1u) { a *= mem[arg(4u) + c]; }
  let M = argf(10u);
  var gm = 0.0;
  var k = 0.0;
  if (arg(11u) == 1u) {
    gm = mem[arg(6u) + c] / M;
    k = is * mem[arg(5u) + c] / M;
  }
  let d = mem[arg(0u) + i] - mem[arg(2u) + c];
  mem[arg(13u) + i] = (mem[arg(1u) + i] - gm - d * k) * a;
}

// ---- local response norm ----
// s_c = k + alpha/size · Σ_{j = c - size/2 .. c + (size-1)/2} x_j² (channels outside are 0),
// y_c = x_c · s_c^-beta; the window summed j upwards, as the CPU.

const F32_INF = 0x7f800000u;

fn f32_is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > F32_INF; }
/** A float from its bits at run time (a constant infinity or NaN is a shader compile error). */
fn from_bits(b: u32) -> f32 { return bitcast<f32>(b); }

/** s^-beta as the CPU's powNeg: beta = 0.75 by square roots; else IEEE pow's cases, s > 0
 *  through exp2/log2. Infinity and NaN are tested and made on the bits. */
fn pow_neg(s: f32, beta: f32) -> f32 {
  let inf = from_bits(F32_INF);
  if (beta == 0.75) {
    let r = sqrt(s);
    return 1.0 / (r * sqrt(r));
  }
  if (beta == 0.0) { return 1.0; }
  if (f32_is_nan(s)) { return s; }
  let a = abs(s);
  var v: f32;
  if (bitcast<u32>(a) == F32_INF) { v = select(inf, 0.0, beta > 0.0); }
  else if (a == 0.0) { v = select(0.0, inf, beta > 0.0); }
  else { v = exp2(-beta * log2(a)); }
  if (s > 0.0 || s == 0.0) { return v; }
  // negative base: an integer exponent only, the sign by its parity
  if (floor(beta) != beta) { return from_bits(0x7fc00000u); }
  let odd = abs(beta) < 16777216.0 && (i32(abs(beta)) & 1) == 1;
  return select(v, -v, odd);
}

// lrn_fwd(x, y, scale, N, C, HW, size, alpha/size, beta, k, keepScale): scale kept for backward
@compute @workgroup_size(256)
fn lrn_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let C = i32(arg(4u)); let HW = arg(5u); let size = i32(arg(6u));
  let i = wid(g) * 256u + l;
  if (i >= arg(3u) * u32(C) * HW) { return; }
  let r = i / HW;
  let c = i32(r % u32(C));
  let base = arg(0u) + (r / u32(C)) * u32(C) * HW + i % HW;
  var acc = 0.0;
  for (var j = max(0, c - size / 2); j <= min(C - 1, c + (size - 1) / 2); j++) {
    let v = mem[base + u32(j) * HW];
    acc += v * v;
  }
  let s = argf(9u) + argf(7u) * acc;
  if (arg(10u) == 1u) { mem[arg(2u) + i] = s; }
  mem[arg(1u) + i] = mem[arg(0u) + i] * pow_neg(s, argf(8u));
}

// lrn_bwd(x, y, scale, g, dx, N, C, HW, size, alpha/size, beta):
//   dx_i = g_i·s_i^-beta - 2·beta·alpha/size · x_i · Σ_{c: i in window(c)} g_c·y_c/s_c,
//   window(c) ∋ i ⇔ c in [i - (size-1)/2, i + size/2]
@compute @workgroup_size(256)
fn lrn_bwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let C = i32(arg(6u)); let HW = arg(7u); let size = i32(arg(8u));
  let i = wid(g) * 256u + l;
  if (i >= arg(5u) * u32(C) * HW) { return; }
  let r = i / HW;
  let ch = i32(r % u32(C));
  let base = (r / u32(C)) * u32(C) * HW + i % HW;
  var acc = 0.0;
  for (var c = max(0, ch - (size - 1) / 2); c <= min(C - 1, ch + size / 2); c++) {
    let o = base + u32(c) * HW;
    acc += mem[arg(3u) + o] * mem[arg(1u) + o] / mem[arg(2u) + o];
  }
  let beta = argf(10u);
  let coef = 2.0 * beta * argf(9u);
  let own = mem[arg(3u) + i] * pow_neg(mem[arg(2u) + i], beta);
  mem[arg(4u) + i] = own - coef * mem[arg(0u) + i] * acc;
}

// ---- dropout ----
// The CPU's mask, bit for bit: keep element i when (top 24 bits of h)/2^24 >= p, where
// h = mix32(mix32(i + k1) ^ k2), k1 = mix32(seed), k2 = mix32(seed ^ 0x9e3779b9) (Wellons'
// lowbias32; u32 arithmetic wraps as wasm's i32 does). Kept: x·scale; dropped: 0 (as the CPU).

fn mix32(x: u32) -> u32 {
  var h = x;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

// dropout(x, y, n, seed, p, scale): also the backward (g in, dx out: the same mask)
@compute @workgroup_size(256)
fn dropout(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i >= arg(2u)) { return; }
  let seed = arg(3u);
  let h = mix32(mix32(i + mix32(seed)) ^ mix32(seed ^ 0x9e3779b9u));
  let u = f32(h >> 8u) * (1.0 / 16777216.0);
  // x times the mask (scale or 0), as PyTorch and the CPU: a dropped NaN or infinity gives NaN
  mem[arg(1u) + i] = mem[arg(0u) + i] * select(0.0, argf(5u), u >= argf(4u));
}
