// Activation kernels (after act_math.wgsl): the twins of assembly/activation.ts. Forward and
// backward side by side. Element-wise kernels: one thread an element, 256 a workgroup.

// leaky_fwd(x, y, n, slope): y = x > 0 ? x : x * slope
@compute @workgroup_size(256)
fn leaky_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(2)) {
    let x = mem[arg(0) + i];
    mem[arg(1) + i] = select(x * argf(3), x, x > 0.0);
  }
}

// leaky_bwd(x, dy, dx, n, slope): dx = x > 0 ? dy : dy * slope (the slope side at x == 0, as PyTorch)
@compute @workgroup_size(256)
fn leaky_bwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(3)) {
    let d = mem[arg(1) + i];
    mem[arg(2) + i] = select(d * argf(4), d, mem[arg(0) + i] > 0.0);
  }
}

// sigmoid_fwd(x, y, n)
@compute @workgroup_size(256)
fn sigmoid_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(2)) { mem[arg(1) + i] = sigmoid_(mem[arg(0) + i]); }
}

// sigmoid_bwd(x, dy, dx, n): dx = dy * sigmoid'(x), from the input
@compute @workgroup_size(256)
fn sigmoid_bwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(3)) { mem[arg(2) + i] = mem[arg(1) + i] * dsigmoid_(mem[arg(0) + i]); }
}

// tanh_fwd(x, y, n)
@compute @workgroup_size(256)
fn tanh_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(2)) { mem[arg(1) + i] = tanh_(mem[arg(0) + i]); }
}

// tanh_bwd(x, dy, dx, n): dx = dy * tanh'(x), from the input
@compute @workgroup_size(256)
fn tanh_bwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(3)) { mem[arg(2) + i] = mem[arg(1) + i] * dtanh_(mem[arg(0) + i]); }
}

// ---- softmax / log_softmax over D of an [outer, D, inner] view ----
// A "row" is the D values of one (o, i): they start at o*D*inner + i, inner apart (row_base).
// Two shapes of work, chosen from the shapes only (so a given shape always gets the same bits):
//  *_t:  one thread a row, a sequential loop over D (short rows; with inner > 1, neighbouring
//        threads read neighbouring addresses);
//  *_wg: one workgroup a row (long rows): each of 256 threads takes every 256th value, then a
//        fixed tree over the workgroup (act_math.wgsl).
// Stable: exp(x - max) <= 1. softmax = e / sum(e); log_softmax = (x - max) - log(sum(e)).
// Arguments: (x, y, outer, D, inner, log) forward; (y, dy, dx, outer, D, inner, log) backward.

@compute @workgroup_size(256)
fn softmax_fwd_t(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let r = wid(g) * 256u + l;
  let D = arg(3);
  let inner = arg(4);
  if (r >= arg(2) * inner) { return; }
  let xb = arg(0) + row_base(r, D, inner);
  let yb = arg(1) + row_base(r, D, inner);
  var m = neg_inf();
  for (var d = 0u; d < D; d++) { m = max(m, mem[xb + d * inner]); }
  var s = 0.0;
  for (var d = 0u; d < D; d++) {
    let e = exp_(mem[xb + d * inner] - m);
    s += e;
    mem[yb + d * inner] = e;
  }
  if (arg(5) != 0u) {
    let ls = log_(s);
    for (var d = 0u; d < D; d++) { mem[yb + d * inner] = (mem[xb + d * inner] - m) - ls; }
  } else {
    for (var d = 0u; d < D; d++) { mem[yb + d * inner] = mem[yb + d * inner] / s; }
  }
}

@compute @workgroup_size(256)
fn softmax_fwd_wg(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let r = wid(g);
  let D = arg(3);
  let inner = arg(4);
  if (r >= arg(2) * inner) { return; }
  let xb = arg(0) + row_base(r, D, inner);
  let yb = arg(1) + row_base(r, D, inner);
  var m = neg_inf();
  for (var d = l; d < D; d += WG) { m = max(m, mem[xb + d * inner]); }
  m = wg_max(l, m);
  var s = 0.0;
  for (var d = l; d < D; d += WG) {
    let e = exp_(mem[xb + d * inner] - m);
    s += e;
    mem[yb + d * inner] = e;
  }
  s = wg_sum(l, s);
  // each thread rewrites only the values it wrote above
  if (arg(5) != 0u) {
    let ls = log_(s);
    for (var d = l; d < D; d += WG) { mem[yb + d * inner] = (mem[xb + d * inner] - m) - ls; }
  } else {
    for (var d = l; d < D; d += WG) { mem[yb + d * inner] = mem[yb + d * inner] / s; }
  }
}

// Backward from the forward's output y: softmax dx = y (dy - sum(dy y));
// log_softmax dx = dy - exp(y) sum(dy).

@compute @workgroup_size(256)
fn softmax_bwd_t(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let r = wid(g) * 256u + l;
  let D = arg(4);
  let inner = arg(5);
  if (r >= arg(3) * inner) { return; }
  let b = row_base(r, D, inner);
  let yb = arg(0) + b;
  let gb = arg(1) + b;
  let db = arg(2) + b;
  let lg = arg(6) != 0u;
  var s = 0.0;
  for (var d = 0u; d < D; d++) {
    let dy = mem[gb + d * inner];
    s += select(dy * mem[yb + d * inner], dy, lg);
  }
  for (var d = 0u; d < D; d++) {
    let y = mem[yb + d * inner];
    let dy = mem[gb + d * inner];
    mem[db + d * inner] = select(y * (dy - s), dy - exp_(y) * s, lg);
  }
}

@compute @workgroup_size(256)
fn softmax_bwd_wg(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let r = wid(g);
  let D = arg(4);
  let inner = arg(5);
  if (r >= arg(3) * inner) { return; }
  let b = row_base(r, D, inner);
  let yb = arg(0) + b;
  let gb = arg(1) + b;
  let db = arg(2) + b;
  let lg = arg(6) != 0u;
  var s = 0.0;
  for (var d = l; d < D; d += WG) {
    let dy = mem[gb + d * inner];
    s += select(dy * mem[yb + d * inner], dy, lg);
  }
  s = wg_sum(l, s);
  for (var d = l; d < D; d += WG) {
    let y = mem[yb + d * inner];
    let dy = mem[gb + d * inner];
    mem[db + d * inner] = select(y * (dy - s), dy - exp_(y) * s, lg);
  }
}
