// Training metrics kept on the GPU, so that fit() reads them once per logging interval instead
// of once per step. One workgroup; integer counts are exact in f32 below 2^24.

// step_metrics(scores, labels, rows, k, loss, acc, n): acc[0] += loss·n, acc[1] += n, acc[2] += top-1
// hits, acc[3] += top-5 hits, acc[4] += 1 if the loss is not finite. A row's rank is the number
// of other classes scoring at least as high as its label (train/metrics.ts topkCorrect's rule).
// rows = 0 adds the loss alone.
var<workgroup> h1: array<f32, 256>;
var<workgroup> h5: array<f32, 256>;
@compute @workgroup_size(256)
fn step_metrics(@builtin(local_invocation_index) l: u32) {
  let scores = arg(0); let labels = arg(1); let rows = arg(2); let k = arg(3); let acc = arg(5);
  var c1 = 0.0; var c5 = 0.0;
  for (var i = l; i < rows; i += 256u) {
    let t = u32(mem[labels + i]);
    let s = mem[scores + i * k + t];
    var rank = 0u;
    for (var j = 0u; j < k; j++) {
      if (j != t && !(mem[scores + i * k + j] < s)) { rank++; }
    }
    if (rank < 1u) { c1 += 1.0; }
    if (rank < 5u) { c5 += 1.0; }
  }
  h1[l] = c1; h5[l] = c5;
  workgroupBarrier();
  for (var w = 128u; w > 0u; w >>= 1u) {
    if (l < w) { h1[l] += h1[l + w]; h5[l] += h5[l + w]; }
    workgroupBarrier();
  }
  if (l == 0u) {
    let loss = mem[arg(4)];
    let fn_ = f32(arg(6));
    // a non-finite loss is counted, not summed (the sum stays readable)
    let bits = bitcast<u32>(loss);
    let finite = (bits & 0x7f800000u) != 0x7f800000u;
    if (finite) { mem[acc] += loss * fn_; } else { mem[acc + 4u] += 1.0; }
    mem[acc + 1u] += fn_;
    mem[acc + 2u] += h1[0];
    mem[acc + 3u] += h5[0];
  }
}

// Per-pixel metrics (segmentation), in two passes with no atomics:
// pixel_ranks(scores, labels, n, k, P, ignore, scratch): for each labelled pixel q = i·P + p,
// scratch[3q..3q+2] = (its class t, its rank: the other classes scoring at least as high, the
// predicted class: the highest score, -1 on a tie), as train/metrics.ts pixelCounts counts them;
// an ignored pixel gets t = -1.
@compute @workgroup_size(256)
fn pixel_ranks(@builtin(workgroup_id) gr: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let q = wid(gr) * 256u + l;
  let k = arg(3); let P = arg(4);
  if (q >= arg(2) * P) { return; }
  let i = q / P; let p = q % P;
  let o = arg(6) + 3u * q;
  let tf = mem[arg(1) + q];
  if (tf == bitcast<f32>(arg(5))) { mem[o] = -1.0; return; }
  let t = u32(tf);
  let base = arg(0) + i * k * P + p;
  let s = mem[base + t * P];
  var ninf = 0xff800000u;
  var rank = 0u; var best = bitcast<f32>(ninf); var am = -1i;
  for (var j = 0u; j < k; j++) {
    let v = mem[base + j * P];
    if (j != t && !(v < s)) { rank++; }
    if (v > best) { best = v; am = i32(j); } else if (v == best) { am = -1i; }
  }
  mem[o] = f32(t); mem[o + 1u] = f32(rank); mem[o + 2u] = f32(am);
}

// pixel_counts(scratch, pixels, k, acc): workgroup c adds up counter c over the pixels: 0 the
// labelled ones, 1 top-1 hits, 2 top-5 hits, then per class j: 3 + j predicted, 3 + k + j
// present, 3 + 2k + j both. Each count is exact in f32 (a step has < 2^24 pixels) and is added to
// acc[2c] (multiples of 2^20) and acc[2c + 1] (the rest), so the epoch's sums stay exact to 2^44.
var<workgroup> hc: array<f32, 256>;
@compute @workgroup_size(256)
fn pixel_counts(@builtin(workgroup_id) gr: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let c = wid(gr); let n = arg(1); let k = arg(2);
  var cnt = 0.0;
  for (var q = l; q < n; q += 256u) {
    let o = arg(0) + 3u * q;
    let t = mem[o];
    if (t < 0.0) { continue; }
    let rank = mem[o + 1u]; let am = mem[o + 2u];
    var hit = false;
    if (c == 0u) { hit = true; }
    else if (c == 1u) { hit = rank < 1.0; }
    else if (c == 2u) { hit = rank < 5.0; }
    else if (c < 3u + k) { hit = am == f32(c - 3u); }
    else if (c < 3u + 2u * k) { hit = t == f32(c - 3u - k); }
    else { hit = am == t && t == f32(c - 3u - 2u * k); }
    if (hit) { cnt += 1.0; }
  }
  hc[l] = cnt;
  workgroupBarrier();
  for (var w = 128u; w > 0u; w >>= 1u) {
    if (l < w) { hc[l] += hc[l + w]; }
    workgroupBarrier();
  }
  if (l == 0u) {
    let a = arg(3) + 2u * c;
    var lo = mem[a + 1u] + hc[0];
    let carry = floor(lo / 1048576.0);
    mem[a] += carry;
    mem[a + 1u] = lo - carry * 1048576.0;
  }
}
