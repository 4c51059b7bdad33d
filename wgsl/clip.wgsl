// Gradient clipping and the L1 penalty on the GPU: the twins of assembly/optim.ts's
// f32_norm_partials / f32_scale_inplace / f32_clamp_inplace / f32_l1_grad. Every sum is taken in
// a fixed order (per 4096-element chunk, then the chunks in order by one thread), so the result
// does not depend on scheduling and a rerun gives the same bits. WGSL's min/max may drop a NaN, so
// NaN is tested on the bits and kept, as torch keeps it.

fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
fn nan_() -> f32 { var b = 0x7fc00000u; return bitcast<f32>(b); }
fn is_finite(v: f32) -> bool { return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u; }

/** One step of Kahan's compensated sum: returns the new sum, updates the compensation (reset
 *  once the sum is infinite or NaN, where (s - acc) - y would turn an infinity into NaN). */
fn kahan(acc: f32, t: f32, comp: ptr<function, f32>) -> f32 {
  let y = t - *comp;
  let s = acc + y;
  if (is_finite(s)) { *comp = (s - acc) - y; } else { *comp = 0.0; }
  return s;
}

/** a ⊕ b for the norm of the given kind: Σx² (0) or Σ|x| (1) add, max|x| (2) keeps NaN */
fn fold(kind: u32, a: f32, b: f32) -> f32 {
  if (kind == 2u) {
    if (is_nan(a) || is_nan(b)) { return nan_(); }
    return max(a, b);
  }
  return a + b;
}

// norm_partials(x, n, kind, out): out[c] = the chunk's Σx², Σ|x| or max|x| for each chunk c of
// 4096 elements (one workgroup a chunk; each thread 16 elements, compensated, then a fixed tree)
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(256)
fn norm_partials(@builtin(workgroup_id) gr: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let c = wid(gr); let n = arg(1); let kind = arg(2);
  var acc = 0.0; var comp = 0.0;
  for (var k = 0u; k < 16u; k++) {
    let i = c * 4096u + k * 256u + l;
    if (i < n) {
      let v = mem[arg(0) + i];
      var t = abs(v);
      if (kind == 0u) { t = v * v; }
      if (kind == 2u) { acc = fold(2u, acc, t); } else { acc = kahan(acc, t, &comp); }
    }
  }
  part[l] = acc;
  workgroupBarrier();
  for (var w = 128u; w > 0u; w >>= 1u) {
    if (l < w) { part[l] = fold(kind, part[l], part[l + w]); }
    workgroupBarrier();
  }
  if (l == 0u) { mem[arg(3) + c] = part[0]; }
}

// norm_total(partials, count, kind, maxNorm, norm, coef): mem[norm] = the total norm (the
// partials folded in order, sums with Kahan's compensation; the square root for the 2-norm),
// mem[coef] = torch's clipping coefficient maxNorm / (norm + 1e-6) (the CPU's f32 formula). One
// thread.
@compute @workgroup_size(1)
fn norm_total() {
  let p = arg(0); let count = arg(1); let kind = arg(2);
  var s = 0.0; var comp = 0.0;
  for (var i = 0u; i < count; i++) {
    let v = mem[p + i];
    if (kind == 2u) { s = fold(2u, s, v); } else { s = kahan(s, v, &comp); }
  }
  if (kind == 0u) { s = sqrt(s); }
  mem[arg(4)] = s;
  mem[arg(5)] = argf(3) / (s + 1e-6);
}

// scale_by(x, n, coef): x *= mem[coef] unless the coefficient is >= 1 (clamped to 1: a no-op);
// a NaN coefficient multiplies, and spreads, as in torch
@compute @workgroup_size(256)
fn scale_by(@builtin(workgroup_id) gr: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(gr) * 256u + l;
  if (i >= arg(1)) { return; }
  let c = mem[arg(2)];
  if (!(c >= 1.0)) { mem[arg(0) + i] = mem[arg(0) + i] * c; }
}

// clamp_inplace(x, n, lo, hi): x = min(max(x, lo), hi), NaN kept
@compute @workgroup_size(256)
fn clamp_inplace(@builtin(workgroup_id) gr: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(gr) * 256u + l;
  if (i >= arg(1)) { return; }
  let v = mem[arg(0) + i];
  if (!is_nan(v)) { mem[arg(0) + i] = min(max(v, argf(2)), argf(3)); }
}

// l1_grad(w, g, n, l1): g += l1·sign(w), sign(0) = 0 (and NaN: 0, as the CPU kernel's compares give)
@compute @workgroup_size(256)
fn l1_grad(@builtin(workgroup_id) gr: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(gr) * 256u + l;
  if (i >= arg(2)) { return; }
  let w = mem[arg(0) + i];
  var t = 0.0;
  if (w > 0.0) { t = argf(3); } else if (w < 0.0) { t = -argf(3); }
  mem[arg(1) + i] = mem[arg(1) + i] + t;
}
