// Shape and reduction kernels (the ops of src/ops/shape.ts, and the reductions that the linalg
// backward passes use). Host side: src/webgpu/ops/shape.ts. Offsets and sizes in elements.

// copy_rows(src, dst, rows, len, srcStride, dstStride): dst[r * dstStride + i] =
// src[r * srcStride + i] for i < len (cat and its backward). One thread an element.
@compute @workgroup_size(256)
fn copy_rows(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let len = arg(3u);
  let i = wid(g) * 256u + l;
  if (i >= arg(2u) * len) { return; }
  let r = i / len;
  let c = i % len;
  mem[arg(1u) + r * arg(5u) + c] = mem[arg(0u) + r * arg(4u) + c];
}

// bias_add(x, b, y, n, C, inner): y[i] = x[i] + b[(i / inner) % C] for x [N, C, inner].
@compute @workgroup_size(256)
fn bias_add(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i >= arg(3u)) { return; }
  mem[arg(2u) + i] = mem[arg(0u) + i] + mem[arg(1u) + (i / arg(5u)) % arg(4u)];
}

// fill_div(src, y, n, div): y[i] = src[0] / div (the gradient of sum and mean, read on the GPU).
@compute @workgroup_size(256)
fn fill_div(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(2u)) { mem[arg(1u) + i] = mem[arg(0u)] / argf(3u); }
}

// ---- reductions: out[c] = (scale * sum over n < N0, i < I of x[n sN + c sC + i]) / div ----
// args: 0 x, 1 out, 2 C, 3 sC, 4 N0, 5 sN, 6 I, 7 P (chunks per output), 8 chunk length,
//       9 scale, 10 div. With P > 1 the kernels write raw partial sums (the host passes scale 1,
//       div 1) and a second call of the same kernel adds the P partials of each output.
// Both have a fixed summation order that depends only on the sizes: the same bits every run.

var<workgroup> red: array<f32, 256>;

// red_seg: one workgroup per (output c, chunk p); the chunk's elements j (n = j / I, i = j % I,
// contiguous along i) are dealt to the 256 threads round-robin (j = t, t + 256, ...; each thread
// adds its own in order), then a tree of halving steps (128, 64, ..., 1) adds the 256 lanes.
// For long rows: sums, means, row sums, bias gradients over [N, C, H*W].
// partial output: out[c * P + p].
@compute @workgroup_size(256)
fn red_seg(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let P = arg(7u);
  let w = wid(g);
  if (w >= arg(2u) * P) { return; }
  let c = w / P;
  let p = w % P;
  let I = arg(6u);
  let sN = arg(5u);
  let L = arg(4u) * I;
  let ch = arg(8u);
  let start = p * ch;
  let end = min(L, start + ch);
  let base = arg(0u) + c * arg(3u);
  var t = 0.0;
  for (var j = start + l; j < end; j += 256u) { t += mem[base + (j / I) * sN + j % I]; }
  red[l] = t;
  workgroupBarrier();
  for (var h = 128u; h > 0u; h >>= 1u) {
    if (l < h) { red[l] = red[l] + red[l + h]; }
    workgroupBarrier();
  }
  if (l == 0u) { mem[arg(1u) + w] = (red[0] * argf(9u)) / argf(10u); }
}

// red_cols: one thread per output c (consecutive c read consecutive words when sC = 1), adding
// x[n sN + c sC] for n in its chunk in increasing order (I is 1). For column sums of [rows, C]
// (the bias gradient of linear). Workgroups: ceil(C / 256) per chunk; partial output:
// out[p * C + c], so the second pass is red_cols again with N0 = P, sN = C.
@compute @workgroup_size(256)
fn red_cols(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let C = arg(2u);
  let groupsC = (C + 255u) / 256u;
  let w = wid(g);
  let p = w / groupsC;
  let c = (w % groupsC) * 256u + l;
  if (p >= arg(7u) || c >= C) { return; }
  let sN = arg(5u);
  let ch = arg(8u);
  let start = p * ch;
  let end = min(arg(4u), start + ch);
  let base = arg(0u) + c * arg(3u);
  var t = 0.0;
  for (var n = start; n < end; n++) { t += mem[base + n * sN]; }
  mem[arg(1u) + p * C + c] = (t * argf(9u)) / argf(10u);
}

// ---- upsampling (tables built on the CPU from the sizes alone, as src/ops/shape.ts does, and
// kept on the GPU: indices stored as exact float values) ----
// args: 0 src, 1 dst, 2 NC, 3 H, 4 W, 5 OH, 6 OW, 7 table
// nearest table: sh[OH], sw[OW] (source row / column), then for the backward gather the range of
//   outputs that read each input: hs[H], he[H], ws[W], we[W].
// bilinear table: h0[OH], h1[OH], l0[OH], l1[OH], w0[OW], w1[OW], m0[OW], m1[OW], then hs, he,
//   ws, we as above (outputs whose h0 or h1 is the row, w0 or w1 the column).

fn tabi(i: u32) -> u32 { return u32(mem[i]); }

// nearest forward: one thread an output element.
@compute @workgroup_size(256)
fn up_nearest_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let H = arg(3u); let W = arg(4u); let OH = arg(5u); let OW = arg(6u); let tab = arg(7u);
  let i = wid(g) * 256u + l;
  if (i >= arg(2u) * OH * OW) { return; }
  let ow = i % OW;
  let oh = (i / OW) % OH;
  let nc = i / (OW * OH);
  mem[arg(1u) + i] = mem[arg(0u) + (nc * H + tabi(tab + oh)) * W + tabi(tab + OH + ow)];
}

// nearest backward as a gather (no atomics): one thread an input element adds the gradients of
// the outputs that copied it, rows then columns in increasing order (the CPU kernel's order).
@compute @workgroup_size(256)
fn up_nearest_bwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let H = arg(3u); let W = arg(4u); let OH = arg(5u); let OW = arg(6u); let tab = arg(7u);
  let i = wid(g) * 256u + l;
  if (i >= arg(2u) * H * W) { return; }
  let w = i % W;
  let h = (i / W) % H;
  let nc = i / (W * H);
  let rt = tab + OH + OW;
  let hEnd = tabi(rt + H + h);
  let wBeg = tabi(rt + 2u * H + w);
  let wEnd = tabi(rt + 2u * H + W + w);
  var t = 0.0;
  for (var oh = tabi(rt + h); oh < hEnd; oh++) {
    if (tabi(tab + oh) != h) { continue; }
    let gr = arg(0u) + (nc * OH + oh) * OW;
    for (var ow = wBeg; ow < wEnd; ow++) {
      if (tabi(tab + OH + ow) == w) { t += mem[gr + ow]; }
    }
  }
  mem[arg(1u) + i] = t;
}

// bilinear forward: one thread an output; the two source rows blended first, then the columns,
// as the CPU kernel (same products and sums, so the same values up to fused multiply-adds).
@compute @workgroup_size(256)
fn up_bilinear_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let H = arg(3u); let W = arg(4u); let OH = arg(5u); let OW = arg(6u); let tab = arg(7u);
  let i = wid(g) * 256u + l;
  if (i >= arg(2u) * OH * OW) { return; }
  let ow = i % OW;
  let oh = (i / OW) % OH;
  let nc = i / (OW * OH);
  let ct = tab + 4u * OH;
  let x = arg(0u) + nc * H * W;
  let r0 = x + tabi(tab + oh) * W;
  let r1 = x + tabi(tab + OH + oh) * W;
  let l0 = mem[tab + 2u * OH + oh];
  let l1 = mem[tab + 3u * OH + oh];
  let w0 = tabi(ct + ow);
  let w1 = tabi(ct + OW + ow);
  let v0 = mem[r0 + w0] * l0 + mem[r1 + w0] * l1;
  let v1 = mem[r0 + w1] * l0 + mem[r1 + w1] * l1;
  mem[arg(1u) + i] = v0 * mem[ct + 2u * OW + ow] + v1 * mem[ct + 3u * OW + ow];
}

// bilinear backward as a gather: one thread an input element (h, w). For each output row oh that
// reads row h (in order), the row's gradient at column w is summed over the output columns that
// read w (in order, weights m0 / m1), then added with the row weight l0 and / or l1: the CPU
// kernel's order of operations for this element.
@compute @workgroup_size(256)
fn up_bilinear_bwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let H = arg(3u); let W = arg(4u); let OH = arg(5u); let OW = arg(6u); let tab = arg(7u);
  let i = wid(g) * 256u + l;
  if (i >= arg(2u) * H * W) { return; }
  let w = i % W;
  let h = (i / W) % H;
  let nc = i / (W * H);
  let ct = tab + 4u * OH;
  let rt = ct + 4u * OW;
  let hEnd = tabi(rt + H + h);
  let wBeg = tabi(rt + 2u * H + w);
  let wEnd = tabi(rt + 2u * H + W + w);
  var t = 0.0;
  for (var oh = tabi(rt + h); oh < hEnd; oh++) {
    let a0 = tabi(tab + oh) == h;
    let a1 = tabi(tab + OH + oh) == h;
    if (!a0 && !a1) { continue; }
    let gr = arg(0u) + (nc * OH + oh) * OW;
    var rb = 0.0;
    for (var ow = wBeg; ow < wEnd; ow++) {
      let gv = mem[gr + ow];
      if (tabi(ct + ow) == w) { rb += gv * mem[ct + 2u * OW + ow]; }
      if (tabi(ct + OW + ow) == w) { rb += gv * mem[ct + 3u * OW + ow]; }
    }
    if (a0) { t += rb * mem[tab + 2u * OH + oh]; }
    if (a1) { t += rb * mem[tab + 3u * OH + oh]; }
  }
  mem[arg(1u) + i] = t;
}
