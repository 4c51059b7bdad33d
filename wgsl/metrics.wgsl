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
