// Loss kernels (after act_math.wgsl): the twins of assembly/loss.ts. Forward and backward side by
// side. Every forward writes the unreduced loss (one value per element, or per row / position
// for the classification losses); "mean" and "sum" then reduce it with sum_partials +
// sum_finish (below), a deterministic two-pass sum. Every backward takes the output gradient as
// an offset and a stride (gs = 0: one scalar, for "mean"/"sum"; gs = 1: per element, "none") and
// a scale (1/N for "mean", else 1).
//
// Class indices are floats holding integers. A target that is neither ignore_index nor an
// integer class in [0, C), and for binary_cross_entropy an input outside [0, 1], is what the
// CPU op rejects before running; the GPU op cannot look at values without a readback, so its
// kernels check instead: they write NaN there and report the element with report_bad() (the
// prelude; a device-side assert), and the next read rejects with the op's error. The tag of
// report_bad is each kernel's last argument.

const NONE = 0xffffffffu;

/** is k an integer class index in [0, C)? (NaN on the bits: see is_nan_bits) */
fn is_class(k: f32, C: u32) -> bool {
  return !is_nan_bits(k) && k >= 0.0 && k < f32(C) && floor(k) == k;
}

// ---- cross entropy: logits [N, C, P] (P = 1 for rows [N, C]) and class indices t [N, P] ----
// The classes of position r = n*P + p start at n*C*P + p, P apart (row_base in act_math.wgsl). As softmax in
// activation.wgsl: *_t one thread a position (few classes), *_wg one workgroup a position (many
// classes: a strided loop then a fixed tree). Stable: m = max, s = sum exp(x - m), and the loss
// lse - x[k] = (m - x[k]) + log(s), which keeps its accuracy when x[k] is the max.
// Forward arguments: (x, t, loss, N, C, P, ignore as f32 bits, tag).

/** the loss of position r from its max m and sum s (0 where ignored, NaN for a bad target,
 *  which is reported) */
fn ce_loss(r: u32, xb: u32, P: u32, C: u32, k: f32, m: f32, s: f32) -> f32 {
  if (k == argf(6)) { return 0.0; }
  if (!is_class(k, C)) { report_bad(arg(7), r); return nan_(); }
  return (m - mem[xb + u32(k) * P]) + log_(s);
}

@compute @workgroup_size(256)
fn ce_fwd_t(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let r = wid(g) * 256u + l;
  let C = arg(4);
  let P = arg(5);
  if (r >= arg(3) * P) { return; }
  let xb = arg(0) + row_base(r, C, P);
  var m = neg_inf();
  for (var c = 0u; c < C; c++) { m = max(m, mem[xb + c * P]); }
  var s = 0.0;
  for (var c = 0u; c < C; c++) { s += exp_(mem[xb + c * P] - m); }
  mem[arg(2) + r] = ce_loss(r, xb, P, C, mem[arg(1) + r], m, s);
}

@compute @workgroup_size(256)
fn ce_fwd_wg(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let r = wid(g);
  let C = arg(4);
  let P = arg(5);
  if (r >= arg(3) * P) { return; }
  let xb = arg(0) + row_base(r, C, P);
  var m = neg_inf();
  for (var c = l; c < C; c += WG) { m = max(m, mem[xb + c * P]); }
  m = wg_max(l, m);
  var s = 0.0;
  for (var c = l; c < C; c += WG) { s += exp_(mem[xb + c * P] - m); }
  s = wg_sum(l, s);
  if (l == 0u) { mem[arg(2) + r] = ce_loss(r, xb, P, C, mem[arg(1) + r], m, s); }
}

// Backward: dx[n, c, p] = (exp(x - m) / s - [c == k]) * gn, gn = g[r*gs] * scale (0 where
// ignored, NaN for a bad target). For "mean" the scale is 1 / the count of targets that count,
// read from the GPU (cnt: its offset; NONE: use the scale argument).
// Arguments: (x, t, g, gs, scale, cnt, dx, N, C, P, ignore as f32 bits, tag).

/** report: whether this thread reports a bad target (one thread of a workgroup-per-row kernel) */
fn ce_gn(r: u32, C: u32, k: f32, report: bool) -> f32 {
  if (k == argf(10)) { return 0.0; }
  if (!is_class(k, C)) {
    if (report) { report_bad(arg(11), r); }
    return nan_();
  }
  let sc = select(1.0 / mem[arg(5)], argf(4), arg(5) == NONE);
  return mem[arg(2) + r * arg(3)] * sc;
}

@compute @workgroup_size(256)
fn ce_bwd_t(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let r = wid(g) * 256u + l;
  let C = arg(8);
  let P = arg(9);
  if (r >= arg(7) * P) { return; }
  let b = row_base(r, C, P);
  let xb = arg(0) + b;
  let db = arg(6) + b;
  var m = neg_inf();
  for (var c = 0u; c < C; c++) { m = max(m, mem[xb + c * P]); }
  var s = 0.0;
  for (var c = 0u; c < C; c++) { s += exp_(mem[xb + c * P] - m); }
  let k = mem[arg(1) + r];
  let gn = ce_gn(r, C, k, true);
  for (var c = 0u; c < C; c++) {
    let v = exp_(mem[xb + c * P] - m) / s * gn;
    mem[db + c * P] = select(v, v - gn, f32(c) == k);
  }
}

@compute @workgroup_size(256)
fn ce_bwd_wg(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let r = wid(g);
  let C = arg(8);
  let P = arg(9);
  if (r >= arg(7) * P) { return; }
  let b = row_base(r, C, P);
  let xb = arg(0) + b;
  let db = arg(6) + b;
  var m = neg_inf();
  for (var c = l; c < C; c += WG) { m = max(m, mem[xb + c * P]); }
  m = wg_max(l, m);
  var s = 0.0;
  for (var c = l; c < C; c += WG) { s += exp_(mem[xb + c * P] - m); }
  s = wg_sum(l, s);
  let k = mem[arg(1) + r];
  let gn = ce_gn(r, C, k, l == 0u);
  for (var c = l; c < C; c += WG) {
    let v = exp_(mem[xb + c * P] - m) / s * gn;
    mem[db + c * P] = select(v, v - gn, f32(c) == k);
  }
}

// ---- multi-class hinge (multi_margin_loss): x [N, C], t [N], p in {1, 2} ----
// One thread a row (C is a class count; the loop is PyTorch's).

// margin_fwd(x, t, loss, N, C, p, margin, tag): loss[n] = sum_{j != k} max(0, margin - x[k] + x[j])^p / C
@compute @workgroup_size(256)
fn margin_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let n = wid(g) * 256u + l;
  let C = arg(4);
  if (n >= arg(3)) { return; }
  let xr = arg(0) + n * C;
  let kf = mem[arg(1) + n];
  if (!is_class(kf, C)) { report_bad(arg(7), n); mem[arg(2) + n] = nan_(); return; }
  let k = u32(kf);
  let xt = mem[xr + k];
  var s = 0.0;
  for (var j = 0u; j < C; j++) {
    let z = argf(6) - xt + mem[xr + j];
    if (j != k && z > 0.0) { s += select(z * z, z, arg(5) == 1u); }
  }
  mem[arg(2) + n] = s / f32(C);
}

// margin_bwd(x, t, g, gs, scale, dx, N, C, p, margin, tag)
@compute @workgroup_size(256)
fn margin_bwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let n = wid(g) * 256u + l;
  let C = arg(7);
  if (n >= arg(6)) { return; }
  let xr = arg(0) + n * C;
  let dr = arg(5) + n * C;
  let kf = mem[arg(1) + n];
  if (!is_class(kf, C)) {
    report_bad(arg(10), n);
    for (var j = 0u; j < C; j++) { mem[dr + j] = nan_(); }
    return;
  }
  let k = u32(kf);
  let xt = mem[xr + k];
  let gn = mem[arg(2) + n * arg(3)] * argf(4) / f32(C);
  var dt = 0.0;
  for (var j = 0u; j < C; j++) {
    if (j == k) { continue; }
    let z = argf(9) - xt + mem[xr + j];
    let h = select(0.0, select(2.0 * z * gn, gn, arg(8) == 1u), z > 0.0);
    mem[dr + j] = h;
    dt -= h;
  }
  mem[dr + k] = dt;
}

// ---- element-wise losses: x and target t of n elements, one thread an element ----
// forward (x, t, loss, n); backward (x, t, g, gs, scale, dx, n): gi = g[i*gs] * ...

/** the output gradient of element i */
fn gout(i: u32) -> f32 { return mem[arg(2) + i * arg(3)]; }

// (x - t)^2
@compute @workgroup_size(256)
fn mse_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(3)) {
    let d = mem[arg(0) + i] - mem[arg(1) + i];
    mem[arg(2) + i] = d * d;
  }
}

// 2 (x - t) g scale
@compute @workgroup_size(256)
fn mse_bwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(6)) { mem[arg(5) + i] = (mem[arg(0) + i] - mem[arg(1) + i]) * (2.0 * argf(4)) * gout(i); }
}

// |x - t|
@compute @workgroup_size(256)
fn l1_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(3)) { mem[arg(2) + i] = abs(mem[arg(0) + i] - mem[arg(1) + i]); }
}

// sign(x - t) g scale (sign(0) = 0, PyTorch's gradient of abs)
@compute @workgroup_size(256)
fn l1_bwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(6)) {
    let d = mem[arg(0) + i] - mem[arg(1) + i];
    let sg = select(select(0.0, -1.0, d < 0.0), 1.0, d > 0.0);
    mem[arg(5) + i] = sg * argf(4) * gout(i);
  }
}

/** is input p of binary_cross_entropy a probability? (if not, element i is reported: NaN fails too) */
fn bce_ok(p: f32, i: u32, tag: u32) -> bool {
  let ok = !is_nan_bits(p) && p >= 0.0 && p <= 1.0;
  if (!ok) { report_bad(tag, i); }
  return ok;
}

// -(t log p + (1 - t) log(1 - p)), each log clamped at -100 (PyTorch); NaN for p outside [0, 1],
// reported. bce_fwd(x, t, loss, n, tag)
@compute @workgroup_size(256)
fn bce_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(3)) {
    let p = mem[arg(0) + i];
    let y = mem[arg(1) + i];
    let lp = max(log_(p), -100.0);
    let lq = max(log_(1.0 - p), -100.0);
    mem[arg(2) + i] = select(nan_(), (y - 1.0) * lq - y * lp, bce_ok(p, i, arg(4)));
  }
}

// g (p - t) / max(p (1 - p), 1e-12) (PyTorch's epsilon). bce_bwd(x, t, g, gs, scale, dx, n, tag)
@compute @workgroup_size(256)
fn bce_bwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(6)) {
    let p = mem[arg(0) + i];
    let y = mem[arg(1) + i];
    let d = gout(i) * argf(4) * (p - y) / max((1.0 - p) * p, 1e-12);
    mem[arg(5) + i] = select(nan_(), d, bce_ok(p, i, arg(7)));
  }
}

// on logits: max(x, 0) - x t + log1p(exp(-|x|)) (stable for any x); max(x, 0) - x t as
// x (1 - t) or -x t, which does not cancel in f32 (the CPU has f64 there)
@compute @workgroup_size(256)
fn bcel_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(3)) {
    let v = mem[arg(0) + i];
    let y = mem[arg(1) + i];
    mem[arg(2) + i] = select(-v * y, v * (1.0 - y), v > 0.0) + log1p_(exp_(-abs(v)));
  }
}

// (sigmoid(x) - t) g scale
@compute @workgroup_size(256)
fn bcel_bwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(6)) { mem[arg(5) + i] = (sigmoid_(mem[arg(0) + i]) - mem[arg(1) + i]) * gout(i) * argf(4); }
}

// ---- reduction to a scalar, in two passes with a fixed order (the same bits every run) ----
// Pass 1: workgroup w sums values [1024 w, 1024 w + 1024): thread l adds the values l, l + 256,
// l + 512, l + 768 in that order, then the workgroup's fixed tree; partial w goes to part[w].
// Pass 2 (sum_finish): one workgroup sums the partials the same way and divides.

const CHUNK = 1024u;

fn chunk_value(i: u32, count: bool) -> f32 {
  let v = mem[arg(0) + i];
  return select(v, select(1.0, 0.0, v == argf(3)), count);
}

fn partials(g: vec3<u32>, l: u32, count: bool) {
  let w = wid(g);
  let n = arg(1);
  if (w * CHUNK >= n) { return; }
  var s = 0.0;
  for (var j = 0u; j < CHUNK; j += WG) {
    let i = w * CHUNK + j + l;
    if (i < n) { s += chunk_value(i, count); }
  }
  s = wg_sum(l, s);
  if (l == 0u) { mem[arg(2) + w] = s; }
}

// sum_partials(x, n, part)
@compute @workgroup_size(256)
fn sum_partials(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  partials(g, l, false);
}

// count_partials(t, n, part, ignore as f32 bits): how many targets are not ignore_index
// (exact in f32 up to 2^24 targets)
@compute @workgroup_size(256)
fn count_partials(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  partials(g, l, true);
}

// sum_finish(part, nparts, y, div, divp): y = sum(part) / divisor, the divisor being div or,
// unless divp is NONE, mem[divp] (a count made on the GPU); NaN for a divisor of 0 (a mean of
// nothing, as PyTorch)
@compute @workgroup_size(256)
fn sum_finish(@builtin(local_invocation_index) l: u32) {
  var s = 0.0;
  for (var j = l; j < arg(1); j += WG) { s += mem[arg(0) + j]; }
  s = wg_sum(l, s);
  if (l == 0u) {
    let dv = select(mem[arg(4)], argf(3), arg(4) == NONE);
    mem[arg(2)] = select(s / dv, nan_(), dv == 0.0);
  }
}
