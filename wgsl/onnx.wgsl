// Kernels of the ops that simdnet/onnx adds to the op table (src/onnx/ops.ts): broadcast
// arithmetic, reductions over axes, constant padding, gather at constant indices and linear
// resize with asymmetric coordinates. Host side: src/onnx/gpu.ts, which prepends act_math.wgsl
// (exp_, log_, nan_). Offsets and sizes in elements.
// Shapes come as argument words: up to 6 dimensions (the host merges dimensions that need not be
// apart), dims and strides in fixed slots. No atomics: every gradient element is one thread that
// adds its terms in a fixed order, so the same bits every run.

// The offset, in a tensor with strides at arg(stAt + k), of element i of a contiguous tensor of
// dims arg(dimAt + k), k < R (stride 0 on a broadcast dimension).
fn offset_of(i0: u32, R: u32, dimAt: u32, stAt: u32) -> u32 {
  var i = i0;
  var off = 0u;
  for (var k = R; k > 0u; k--) {
    let d = arg(dimAt + k - 1u);
    off += (i % d) * arg(stAt + k - 1u);
    i /= d;
  }
  return off;
}

// The flat index (contiguous over dims arg(dimAt + k)) of the m-th element that target element j
// gathers: on the dimensions where the target has a stride (arg(stAt + k) != 0) the target's own
// coordinate, on the others the digits of m (row-major). Increasing m is the summation order.
fn spread(j: u32, m0: u32, R: u32, dimAt: u32, stAt: u32) -> u32 {
  var m = m0;
  var i = 0u;
  var s = 1u;
  for (var k = R; k > 0u; k--) {
    let d = arg(dimAt + k - 1u);
    let st = arg(stAt + k - 1u);
    var c: u32;
    if (st != 0u) { c = (j / st) % d; } else { c = m % d; m /= d; }
    i += c * s;
    s *= d;
  }
  return i;
}

fn inf_() -> f32 { var b = 0x7f800000u; return bitcast<f32>(b); }

// Math.pow in float32 (exp_ and log_ from act_math.wgsl, prepended by gpu.ts): a negative base with an integer exponent has the exponent's parity sign,
// with another exponent it is NaN; 0 to a negative power is inf.
fn pow_js(x: f32, z: f32) -> f32 {
  if (z == 0.0) { return 1.0; }
  let m = abs(x);
  var r: f32;
  if (m == 0.0) { r = select(inf_(), 0.0, z > 0.0); } else { r = exp_(z * log_(m)); }
  if (x < 0.0) {
    if (fract(z) != 0.0) { return nan_(); }
    if (fract(z * 0.5) != 0.0) { r = -r; }
  }
  return r;
}

// kinds: 0 add, 1 sub, 2 mul, 3 div, 4 pow (src/onnx/ops.ts BinaryKind order)
fn binary_of(kind: u32, x: f32, z: f32) -> f32 {
  switch kind {
    case 0u: { return x + z; }
    case 1u: { return x - z; }
    case 2u: { return x * z; }
    case 3u: { return x / z; }
    default: { return pow_js(x, z); }
  }
}

// bin_fwd(a, b, y, n, kind, R, dims[6], sa[6], sb[6]): y[i] = a[.] kind b[.], broadcast.
@compute @workgroup_size(256)
fn bin_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i >= arg(3u)) { return; }
  let R = arg(5u);
  let x = mem[arg(0u) + offset_of(i, R, 6u, 12u)];
  let z = mem[arg(1u) + offset_of(i, R, 6u, 18u)];
  mem[arg(2u) + i] = binary_of(arg(4u), x, z);
}

// bin_bwd(a, b, g, y, out, nOut, kind, which, R, M, dims[6], sa[6], sb[6]): the gradient of
// input `which` (0 a, 1 b): out[j] = sum over the M output elements i that read a[j] (or b[j]),
// in increasing order, of d(y[i])/d(input) * g[i].
@compute @workgroup_size(256)
fn bin_bwd(@builtin(workgroup_id) gr: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let j = wid(gr) * 256u + l;
  if (j >= arg(5u)) { return; }
  let kind = arg(6u);
  let which = arg(7u);
  let R = arg(8u);
  let st = select(16u, 22u, which == 1u);
  var t = 0.0;
  for (var m = 0u; m < arg(9u); m++) {
    let i = spread(j, m, R, 10u, st);
    let x = mem[arg(0u) + offset_of(i, R, 10u, 16u)];
    let z = mem[arg(1u) + offset_of(i, R, 10u, 22u)];
    let d = mem[arg(2u) + i];
    var v: f32;
    switch kind {
      case 0u: { v = d; }
      case 1u: { v = select(d, -d, which == 1u); }
      case 2u: { v = select(d * z, d * x, which == 1u); }
      case 3u: { v = select(d / z, -(d * x) / (z * z), which == 1u); }
      default: { v = select(d * z * pow_js(x, z - 1.0), d * mem[arg(3u) + i] * log_(x), which == 1u); }
    }
    t += v;
  }
  mem[arg(4u) + j] = t;
}

// reduce_fwd(x, out, nOut, div, R, M, dims[6], so[6]): out[j] = (sum of the M elements of x
// that reduce into j, in increasing order) / div; so: out's strides, 0 on the reduced axes.
@compute @workgroup_size(256)
fn reduce_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let j = wid(g) * 256u + l;
  if (j >= arg(2u)) { return; }
  let R = arg(4u);
  var t = 0.0;
  for (var m = 0u; m < arg(5u); m++) { t += mem[arg(0u) + spread(j, m, R, 6u, 12u)]; }
  mem[arg(1u) + j] = t / argf(3u);
}

// reduce_bwd(g, dx, n, div, R, M, dims[6], so[6]): dx[i] = g[the output i reduces into] / div.
@compute @workgroup_size(256)
fn reduce_bwd(@builtin(workgroup_id) gr: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(gr) * 256u + l;
  if (i >= arg(2u)) { return; }
  mem[arg(1u) + i] = mem[arg(0u) + offset_of(i, arg(4u), 6u, 12u)] / argf(3u);
}

// pad(src, dst, n, value, R, dstDims[6], shift[6], srcDims[6]): for each dst element i (its
// coordinates c_k over dstDims), the src element at c_k - shift_k, or value where that is
// outside srcDims. Forward: src x, dst y, shift = the begin pads. Backward: src g, dst dx,
// shift = minus the begin pads, value 0 (cropped input elements get no gradient).
@compute @workgroup_size(256)
fn pad(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i0 = wid(g) * 256u + l;
  if (i0 >= arg(2u)) { return; }
  let R = arg(4u);
  var i = i0;
  var off = 0u;
  var s = 1u;
  var inside = true;
  for (var k = R; k > 0u; k--) {
    let d = arg(5u + k - 1u);
    let p = i32(i % d) - bitcast<i32>(arg(11u + k - 1u));
    i /= d;
    let sd = arg(17u + k - 1u);
    if (p < 0 || p >= i32(sd)) { inside = false; } else { off += u32(p) * s; }
    s *= sd;
  }
  mem[arg(1u) + i0] = select(argf(3u), mem[arg(0u) + off], inside);
}

// gather_fwd(x, y, idx, outer, n, J, inner, total): y[o, j, t] = x[o, idx[j], t] (idx: the
// indices as float values, exact below 2^24).
@compute @workgroup_size(256)
fn gather_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i >= arg(7u)) { return; }
  let inner = arg(6u);
  let J = arg(5u);
  let t = i % inner;
  let j = (i / inner) % J;
  let o = i / (inner * J);
  let src = u32(mem[arg(2u) + j]);
  mem[arg(1u) + i] = mem[arg(0u) + (o * arg(4u) + src) * inner + t];
}

// gather_bwd(g, dx, idx, outer, n, J, inner, total): dx[o, h, t] = sum over j with idx[j] = h,
// in increasing j, of g[o, j, t]; total = outer * n * inner.
@compute @workgroup_size(256)
fn gather_bwd(@builtin(workgroup_id) gr: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(gr) * 256u + l;
  if (i >= arg(7u)) { return; }
  let inner = arg(6u);
  let n = arg(4u);
  let J = arg(5u);
  let t = i % inner;
  let h = f32((i / inner) % n);
  let o = i / (inner * n);
  var s = 0.0;
  for (var j = 0u; j < J; j++) {
    if (mem[arg(2u) + j] == h) { s += mem[arg(0u) + (o * J + j) * inner + t]; }
  }
  mem[arg(1u) + i] = s;
}

// ---- linear resize, asymmetric coordinates ----
// tables (floats): rows i0[OH], i1[OH], w1[OH], cols i0[OW], i1[OW], w1[OW], then for the
// backward the first and one past the last output row reading each input row, start[H], end[H],
// and the same for the columns, start[W], end[W] (i0 is non-decreasing, so they are ranges).
// args: 0 x (or g), 1 y (or dx), 2 tables, 3 NC, 4 H, 5 W, 6 OH, 7 OW.

@compute @workgroup_size(256)
fn resize_asym_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let H = arg(4u);
  let W = arg(5u);
  let OH = arg(6u);
  let OW = arg(7u);
  let i = wid(g) * 256u + l;
  if (i >= arg(3u) * OH * OW) { return; }
  let ow = i % OW;
  let oh = (i / OW) % OH;
  let p = i / (OW * OH);
  let tb = arg(2u);
  let r0 = (p * H + u32(mem[tb + oh])) * W;
  let r1 = (p * H + u32(mem[tb + OH + oh])) * W;
  let wr = mem[tb + 2u * OH + oh];
  let cb = tb + 3u * OH;
  let c0 = u32(mem[cb + ow]);
  let c1 = u32(mem[cb + OW + ow]);
  let wc = mem[cb + 2u * OW + ow];
  let x = arg(0u);
  let top = mem[x + r0 + c0] * (1.0 - wc) + mem[x + r0 + c1] * wc;
  let bottom = mem[x + r1 + c0] * (1.0 - wc) + mem[x + r1 + c1] * wc;
  mem[arg(1u) + i] = top * (1.0 - wr) + bottom * wr;
}

// the weight that output row (or column) o gives input row h: (1 - w1) as i0, w1 as i1
fn weight_of(at: u32, n: u32, o: u32, h: f32) -> f32 {
  let w = mem[at + 2u * n + o];
  return select(0.0, 1.0 - w, mem[at + o] == h) + select(0.0, w, mem[at + n + o] == h);
}

@compute @workgroup_size(256)
fn resize_asym_bwd(@builtin(workgroup_id) gr: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let H = arg(4u);
  let W = arg(5u);
  let OH = arg(6u);
  let OW = arg(7u);
  let i = wid(gr) * 256u + l;
  if (i >= arg(3u) * H * W) { return; }
  let w = i % W;
  let h = (i / W) % H;
  let p = i / (W * H);
  let tb = arg(2u);
  let cb = tb + 3u * OH;
  let ranges = cb + 3u * OW;
  let g = arg(0u) + p * OH * OW;
  var s = 0.0;
  for (var oh = u32(mem[ranges + h]); oh < u32(mem[ranges + H + h]); oh++) {
    let wr = weight_of(tb, OH, oh, f32(h));
    for (var ow = u32(mem[ranges + 2u * H + w]); ow < u32(mem[ranges + 2u * H + W + w]); ow++) {
      s += mem[g + oh * OW + ow] * wr * weight_of(cb, OW, ow, f32(w));
    }
  }
  mem[arg(1u) + i] = s;
}
