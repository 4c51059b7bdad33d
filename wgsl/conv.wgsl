// Convolution kernels (src/webgpu/ops/conv.ts): conv2d forward, input gradient and weight
// gradient as implicit GEMMs, a direct path for depthwise convolutions, and the deterministic
// reductions (bias gradient, split-K partial sums). conv_transpose2d uses the same kernels with
// the roles swapped (its forward is conv2d's input gradient, and so on).
//
// Every kernel takes the geometry of the CONVOLUTION in argument words 0..15 (as the CPU's
// ConvGeometry): N C H W O G KH KW SH SW PH PW DH DW HO WO; input [N,C,H,W], weight
// [O, C/G, KH, KW], output [N,O,HO,WO]. Offsets (words 16..) are in elements.
//
// The GEMM kernels share one tiling: a workgroup computes a 64 x 64 tile of its output matrix
// with 16 x 16 threads, each thread a 4 x 4 block in registers (rows ty + 16i, columns tx + 16j,
// so that neighbouring threads store neighbouring columns and read distinct words of the tile);
// K advances 16 at a time through two 16 x 64 tiles in workgroup memory (rows padded to 65:
// 8.1 KiB), loaded by all 256 threads, 4 values each, with the indices of the tile's 16 k decoded
// once into a small table. The im2col / col2im gathers happen inside these tile loads: no
// column matrix is ever written. Each output is summed by one thread over K in order, so the
// same inputs give the same bits on every run.

struct Geo {
  N: u32, C: u32, H: u32, W: u32, O: u32, G: u32, KH: u32, KW: u32,
  SH: u32, SW: u32, PH: i32, PW: i32, DH: u32, DW: u32, HO: u32, WO: u32,
}

fn geo() -> Geo {
  return Geo(arg(0u), arg(1u), arg(2u), arg(3u), arg(4u), arg(5u), arg(6u), arg(7u),
             arg(8u), arg(9u), i32(arg(10u)), i32(arg(11u)), arg(12u), arg(13u), arg(14u), arg(15u));
}

const TILE = 64u;
const TK = 16u;
const LD = 65u; // a tile row's stride: one word of padding, so that the 16 threads of a half-warp
                // storing one row each (the k-major loads below) hit distinct banks
var<workgroup> As: array<f32, 1040>; // [TK][LD]: the K-tile of the left matrix, by row
var<workgroup> Bs: array<f32, 1040>; // [TK][LD]: the K-tile of the right matrix, by column
// The decoded indices of the 16 k (or reduction indices) of the current K-tile and the next,
// [2][TK]: written by 16 threads during the tile loads of the step before, so the loads do no
// integer division and the step needs no extra barrier.
var<workgroup> tab: array<vec4<i32>, 32>;

// acc[i] += As[kk][ty + 16i] * Bs[kk][tx + 16j] (j = vector lane) over the K-tile.
fn mac_tile(tx: u32, ty: u32, acc: ptr<function, array<vec4<f32>, 4>>) {
  for (var kk = 0u; kk < TK; kk++) {
    let o = kk * LD;
    let a = vec4<f32>(As[o + ty], As[o + ty + 16u], As[o + ty + 32u], As[o + ty + 48u]);
    let b = vec4<f32>(Bs[o + tx], Bs[o + tx + 16u], Bs[o + tx + 32u], Bs[o + tx + 48u]);
    (*acc)[0] += a.x * b;
    (*acc)[1] += a.y * b;
    (*acc)[2] += a.z * b;
    (*acc)[3] += a.w * b;
  }
}

// im2col row k = (c, kh, kw): (c*H*W, kh*DH, kw*DW)
fn col_entry(g: Geo, k: u32) -> vec4<i32> {
  let KK = g.KH * g.KW; let q = k % KK;
  return vec4<i32>(i32((k / KK) * g.H * g.W), i32((q / g.KW) * g.DH), i32((q % g.KW) * g.DW), 0);
}

// conv2d_fused's epilogue (src/ops/fused.ts) after the bias, in the unfused ops' order: words
// 21..24 = scale, shift (per output channel), residual (like y) and flags (1 scale, 2 shift,
// 4 residual, 8 relu); flags 0 for a plain conv2d. oc: the output channel, i: y's index.
fn epilogue(v0: f32, oc: u32, i: u32) -> f32 {
  let f = arg(24u);
  var v = v0;
  if ((f & 1u) != 0u) { v = v * mem[arg(21u) + oc]; }
  if ((f & 2u) != 0u) { v = v + mem[arg(22u) + oc]; }
  if ((f & 4u) != 0u) { v = v + mem[arg(23u) + i]; }
  if ((f & 8u) != 0u) { v = max(v, 0.0); }
  return v;
}

// batch norm's eval mode as a scale and a shift per channel (conv2d_fused's inputs):
// conv_bn_params(rmean 0, rvar 1, w 2, b 3, C 4, eps (f32 bits) 5, hasW 6, hasB 7, scale 8, shift 9)
@compute @workgroup_size(256)
fn conv_bn_params(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let c = wid(wg) * 256u + l;
  if (c >= arg(4u)) { return; }
  var s = 1.0 / sqrt(mem[arg(1u) + c] + bitcast<f32>(arg(5u)));
  if (arg(6u) != 0u) { s = mem[arg(2u) + c] * s; }
  var t = -mem[arg(0u) + c] * s;
  if (arg(7u) != 0u) { t = mem[arg(3u) + c] + t; }
  mem[arg(8u) + c] = s;
  mem[arg(9u) + c] = t;
}

// ---- forward: y[n, g*Og + o, p] = sum_k W[g*Og + o, k] * im2col(x)[n, g, k, p] (+ bias) ----
// conv_fwd(geo, x 16, w 17, bias 18, y 19, hasBias 20, epilogue 21..24)
// GEMM M = Og (output channels of a group), N = N*HO*WO (the batch folded into the positions,
// so small late-layer maps still fill tiles), K = Cg*KH*KW. Workgroups: G x tilesM x tilesN.
// A thread always loads the same column of the B tile (l % 64), so its position's image and
// input window corner are decoded once; it loads the same k of the A tile (l % 16).
@compute @workgroup_size(256)
fn conv_fwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let g = geo();
  let Cg = g.C / g.G; let Og = g.O / g.G; let K = Cg * g.KH * g.KW;
  let P = g.HO * g.WO; let NP = g.N * P;
  let tilesN = (NP + TILE - 1u) / TILE; let tilesM = (Og + TILE - 1u) / TILE;
  var t = wid(wg);
  let tn = t % tilesN; t = t / tilesN;
  let tm = t % tilesM; let grp = t / tilesM;
  if (grp >= g.G) { return; }
  let tx = l % 16u; let ty = l / 16u;

  // this thread's B column: position j of the tile
  let j = tn * TILE + l % TILE;
  let jok = j < NP;
  let jn = j / P; let jp = j % P;
  let ih0 = i32((jp / g.WO) * g.SH) - g.PH;
  let iw0 = i32((jp % g.WO) * g.SW) - g.PW;
  let xb = arg(16u) + (jn * g.C + grp * Cg) * g.H * g.W;
  // this thread's A column (k within the tile) and first row
  let ak = l % TK; let am = l / TK;
  let wb = arg(17u) + (grp * Og + tm * TILE) * K;

  if (l < TK) { tab[l] = col_entry(g, l); }
  workgroupBarrier();
  var acc: array<vec4<f32>, 4>;
  var cur = 0u;
  for (var k0 = 0u; k0 < K; k0 += TK) {
    for (var r = 0u; r < 4u; r++) {
      let m = am + 16u * r;
      var a = 0.0;
      if (tm * TILE + m < Og && k0 + ak < K) { a = mem[wb + m * K + k0 + ak]; }
      As[ak * LD + m] = a;
      let kk = l / TILE + 4u * r;
      var v = 0.0;
      if (jok && k0 + kk < K) {
        let d = tab[cur + kk];
        let ih = ih0 + d.y; let iw = iw0 + d.z;
        if (ih >= 0 && iw >= 0 && u32(ih) < g.H && u32(iw) < g.W) { v = mem[xb + u32(d.x) + u32(ih) * g.W + u32(iw)]; }
      }
      Bs[kk * LD + l % TILE] = v;
    }
    if (l < TK) { tab[TK - cur + l] = col_entry(g, k0 + TK + l); }
    workgroupBarrier();
    mac_tile(tx, ty, &acc);
    workgroupBarrier();
    cur = TK - cur;
  }

  // epilogue: bias, scatter the columns back to (image, position)
  let y = arg(19u); let bias = arg(18u); let hasBias = arg(20u) != 0u;
  for (var i = 0u; i < 4u; i++) {
    let o = tm * TILE + ty + 16u * i;
    if (o >= Og) { continue; }
    let oc = grp * Og + o;
    var b = 0.0;
    if (hasBias) { b = mem[bias + oc]; }
    for (var jj = 0u; jj < 4u; jj++) {
      let col = tn * TILE + tx + 16u * jj;
      if (col < NP) {
        let yi = ((col / P) * g.O + oc) * P + col % P;
        mem[y + yi] = epilogue(acc[i][jj] + b, oc, yi);
      }
    }
  }
}

// ---- input gradient: dx = col2im(W^T dy), as a gather ----
// conv_dx(geo, dy 16, w 17, bias 18, dx 19, hasBias 20)
// For stride S the input pixels split into SH*SW phases (ih mod SH, iw mod SW); within a phase
// the taps that reach a pixel are the same for every pixel (kh = kh0 + i*sth, kw likewise), and
// a pixel (ih, iw) = (rh + SH*qi, rw + SW*qj) meets tap kh at output row qi + (rh+PH-kh*DH)/SH.
// So each phase is a dense GEMM: M = Cg (input channels), N = N * (pixels of the phase), K =
// Og * (taps of the phase); A[c, (o,kh,kw)] = W[g*Og+o, c, kh, kw], B[(o,kh,kw), pixel] = dy at
// that output where it is inside. No tap that cannot reach a pixel is multiplied, every dx
// element is written once by one thread (no atomics), and pixels no tap reaches get 0 (+ bias).
// Workgroups: G x phases x tilesM x tilesN (tilesN of the largest phase; the others' spare tiles
// exit). bias (conv_transpose2d's) is per input channel.
struct Phase { rh: u32, rw: u32, kh0: u32, kw0: u32, nkw: u32, sth: u32, stw: u32, T: u32 }

// the tap (o, kh, kw) of k in phase f: (o*HO*WO, output row offset, column offset, weight offset)
fn dx_entry(g: Geo, f: Phase, k: u32) -> vec4<i32> {
  let T = max(f.T, 1u); let o = k / T; let tt = k % T;
  let kh = f.kh0 + (tt / f.nkw) * f.sth; let kw = f.kw0 + (tt % f.nkw) * f.stw;
  return vec4<i32>(i32(o * g.HO * g.WO),
                   (i32(f.rh) + g.PH - i32(kh * g.DH)) / i32(g.SH),
                   (i32(f.rw) + g.PW - i32(kw * g.DW)) / i32(g.SW),
                   i32(o * (g.C / g.G) * g.KH * g.KW + kh * g.KW + kw));
}

@compute @workgroup_size(256)
fn conv_dx(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let g = geo();
  let Cg = g.C / g.G; let Og = g.O / g.G; let KK = g.KH * g.KW;
  let P = g.HO * g.WO; let HW = g.H * g.W;
  let phases = g.SH * g.SW;
  let tilesN = (g.N * ((g.H + g.SH - 1u) / g.SH) * ((g.W + g.SW - 1u) / g.SW) + TILE - 1u) / TILE;
  let tilesM = (Cg + TILE - 1u) / TILE;
  var t = wid(wg);
  let tn = t % tilesN; t = t / tilesN;
  let tm = t % tilesM; t = t / tilesM;
  let ph = t % phases; let grp = t / phases;
  if (grp >= g.G) { return; }
  let rh = ph / g.SW; let rw = ph % g.SW;
  // the phase's pixels: ih = rh + SH*qi, qi < HP (and likewise for columns)
  let HP = select(0u, (g.H - rh + g.SH - 1u) / g.SH, g.H > rh);
  let WP = select(0u, (g.W - rw + g.SW - 1u) / g.SW, g.W > rw);
  let NQ = g.N * HP * WP;
  if (tn * TILE >= NQ) { return; }
  // the phase's taps: (rh + PH - kh*DH) divisible by SH; they step by sth = SH / gcd(SH, DH)
  var kh0 = 0u; var nkh = 0u; var kw0 = 0u; var nkw = 0u;
  for (var kh = 0u; kh < g.KH; kh++) {
    let v = i32(rh) + g.PH - i32(kh * g.DH);
    if (((v % i32(g.SH)) + i32(g.SH)) % i32(g.SH) == 0) { if (nkh == 0u) { kh0 = kh; } nkh++; }
  }
  for (var kw = 0u; kw < g.KW; kw++) {
    let v = i32(rw) + g.PW - i32(kw * g.DW);
    if (((v % i32(g.SW)) + i32(g.SW)) % i32(g.SW) == 0) { if (nkw == 0u) { kw0 = kw; } nkw++; }
  }
  var sth = 1u; while ((sth * g.DH) % g.SH != 0u) { sth++; }
  var stw = 1u; while ((stw * g.DW) % g.SW != 0u) { stw++; }
  let f = Phase(rh, rw, kh0, kw0, max(nkw, 1u), sth, stw, nkh * nkw);
  let K = Og * f.T;

  let tx = l % 16u; let ty = l / 16u;
  // this thread's B column: pixel q of the phase, at (qi, qj) of its image
  let q = tn * TILE + l % TILE;
  let qok = q < NQ;
  let qn = q / (HP * WP); let qr = q % (HP * WP);
  let qi = i32(qr / WP); let qj = i32(qr % WP);
  let dyb = arg(16u) + (qn * g.O + grp * Og) * P;
  let ak = l % TK; let am = l / TK;
  let wb = arg(17u) + (grp * Og * Cg + tm * TILE) * KK;

  if (l < TK) { tab[l] = dx_entry(g, f, l); }
  workgroupBarrier();
  var acc: array<vec4<f32>, 4>;
  var cur = 0u;
  for (var k0 = 0u; k0 < K; k0 += TK) {
    let wa = wb + u32(tab[cur + ak].w);
    for (var r = 0u; r < 4u; r++) {
      // A: the weight of tap k0 + ak for input channel tm*64 + m
      let m = am + 16u * r;
      var a = 0.0;
      if (tm * TILE + m < Cg && k0 + ak < K) { a = mem[wa + m * KK]; }
      As[ak * LD + m] = a;
      // B: dy where tap k0 + kk meets this thread's pixel
      let kk = l / TILE + 4u * r;
      var v = 0.0;
      if (qok && k0 + kk < K) {
        let d = tab[cur + kk];
        let oh = qi + d.y; let ow = qj + d.z;
        if (oh >= 0 && ow >= 0 && u32(oh) < g.HO && u32(ow) < g.WO) { v = mem[dyb + u32(d.x) + u32(oh) * g.WO + u32(ow)]; }
      }
      Bs[kk * LD + l % TILE] = v;
    }
    if (l < TK) { tab[TK - cur + l] = dx_entry(g, f, k0 + TK + l); }
    workgroupBarrier();
    mac_tile(tx, ty, &acc);
    workgroupBarrier();
    cur = TK - cur;
  }

  let dx = arg(19u); let bias = arg(18u); let hasBias = arg(20u) != 0u;
  for (var i = 0u; i < 4u; i++) {
    let c = tm * TILE + ty + 16u * i;
    if (c >= Cg) { continue; }
    let ch = grp * Cg + c;
    var b = 0.0;
    if (hasBias) { b = mem[bias + ch]; }
    for (var jj = 0u; jj < 4u; jj++) {
      let col = tn * TILE + tx + 16u * jj;
      if (col < NQ) {
        let n = col / (HP * WP); let cr = col % (HP * WP);
        let y = rh + g.SH * (cr / WP); let xx = rw + g.SW * (cr % WP);
        mem[dx + (n * g.C + ch) * HW + y * g.W + xx] = acc[i][jj] + b;
      }
    }
  }
}

// ---- weight gradient: dW[g*Og+o, k] = sum over (n, p) of dy[n, g*Og+o, p] * im2col(x)[n, g, k, p] ----
// conv_dw(geo, x 16, dy 17, out 18, chunk 19)
// GEMM M = Og, N = K = Cg*KH*KW, reduction over R = N*HO*WO, split into S chunks of `chunk`
// (a multiple of 16, a function of the shapes only): workgroup (s, g, tile) sums its chunk in
// order and writes out[s][O][K]; conv_sum_chunks then adds the S partials in order (S = 1: out
// is dW). Workgroups: S x G x tilesM x tilesN. Both tiles are loaded k-major: thread l loads
// reduction index l % 16 of 4 rows of each; its 4 columns k of im2col are decoded once.

// reduction index r = (n, p): (offset of dy[n, 0, p], of x[n, 0], window corner row, column)
fn dw_entry(g: Geo, r: u32) -> vec4<i32> {
  let P = g.HO * g.WO; let n = r / P; let p = r % P;
  return vec4<i32>(i32(n * g.O * P + p), i32(n * g.C * g.H * g.W),
                   i32((p / g.WO) * g.SH) - g.PH, i32((p % g.WO) * g.SW) - g.PW);
}

@compute @workgroup_size(256)
fn conv_dw(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let g = geo();
  let Cg = g.C / g.G; let Og = g.O / g.G; let K = Cg * g.KH * g.KW;
  let P = g.HO * g.WO; let R = g.N * P;
  let chunk = arg(19u);
  let S = (R + chunk - 1u) / chunk;
  let tilesN = (K + TILE - 1u) / TILE; let tilesM = (Og + TILE - 1u) / TILE;
  var t = wid(wg);
  let tn = t % tilesN; t = t / tilesN;
  let tm = t % tilesM; t = t / tilesM;
  let grp = t % g.G; let s = t / g.G;
  if (s >= S) { return; }
  let r0 = s * chunk; let r1 = min(R, r0 + chunk);
  let tx = l % 16u; let ty = l / 16u;
  let rr = l % TK; let lm = l / TK;
  let dyb = arg(17u) + (grp * Og + tm * TILE) * P;
  let xb = arg(16u) + grp * Cg * g.H * g.W;
  // this thread's 4 columns of im2col: k = tn*64 + lm + 16i
  var kd: array<vec4<i32>, 4>;
  for (var i = 0u; i < 4u; i++) { kd[i] = col_entry(g, tn * TILE + lm + 16u * i); }

  if (l < TK) { tab[l] = dw_entry(g, r0 + l); }
  workgroupBarrier();
  var acc: array<vec4<f32>, 4>;
  var cur = 0u;
  for (var k0 = r0; k0 < r1; k0 += TK) {
    let rok = k0 + rr < r1;
    let d = tab[cur + rr];
    for (var i = 0u; i < 4u; i++) {
      let m = lm + 16u * i;
      // A: dy of output channel tm*64 + m at reduction index k0 + rr
      var a = 0.0;
      if (rok && tm * TILE + m < Og) { a = mem[dyb + u32(d.x) + m * P]; }
      As[rr * LD + m] = a;
      // B: im2col(x) at (k = tn*64 + m, k0 + rr)
      var v = 0.0;
      if (rok && tn * TILE + m < K) {
        let ih = d.z + kd[i].y; let iw = d.w + kd[i].z;
        if (ih >= 0 && iw >= 0 && u32(ih) < g.H && u32(iw) < g.W) { v = mem[xb + u32(d.y) + u32(kd[i].x) + u32(ih) * g.W + u32(iw)]; }
      }
      Bs[rr * LD + m] = v;
    }
    if (l < TK) { tab[TK - cur + l] = dw_entry(g, k0 + TK + l); }
    workgroupBarrier();
    mac_tile(tx, ty, &acc);
    workgroupBarrier();
    cur = TK - cur;
  }

  let out = arg(18u) + s * g.O * K;
  for (var i = 0u; i < 4u; i++) {
    let o = tm * TILE + ty + 16u * i;
    if (o >= Og) { continue; }
    for (var jj = 0u; jj < 4u; jj++) {
      let k = tn * TILE + tx + 16u * jj;
      if (k < K) { mem[out + (grp * Og + o) * K + k] = acc[i][jj]; }
    }
  }
}

// conv_sum_chunks(part, S, n, out): out[i] = sum over s in order of part[s*n + i]
@compute @workgroup_size(256)
fn conv_sum_chunks(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(wg) * 256u + l;
  let n = arg(2u);
  if (i >= n) { return; }
  var s = 0.0;
  for (var c = 0u; c < arg(1u); c++) { s += mem[arg(0u) + c * n + i]; }
  mem[arg(3u) + i] = s;
}

// ---- deterministic chunked reductions (bias gradient, depthwise weight gradient) ----
// A workgroup sums one chunk of one sequence: each thread adds every 256th element in order,
// then a fixed tree over the 256 partial sums. The same shape every run, so the same bits.
var<workgroup> red: array<f32, 256>;

fn tree_sum(l: u32, v: f32) -> f32 {
  red[l] = v;
  workgroupBarrier();
  for (var h = 128u; h > 0u; h >>= 1u) {
    if (l < h) { red[l] += red[l + h]; }
    workgroupBarrier();
  }
  return red[0];
}

// conv_db(dy 0, N 1, O 2, P 3, out 4, chunk 5): out[s*O + o] = sum of dy[n, o, p] over the
// (n, p) of chunk s (R = N*P in chunks of `chunk`). Workgroups: S x O.
@compute @workgroup_size(256)
fn conv_db(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let O = arg(2u); let P = arg(3u); let R = arg(1u) * P; let chunk = arg(5u);
  let t = wid(wg);
  let o = t % O; let s = t / O;
  if (s * chunk >= max(R, 1u)) { return; }
  let r1 = min(R, s * chunk + chunk);
  var acc = 0.0;
  for (var r = s * chunk + l; r < r1; r += 256u) { acc += mem[arg(0u) + ((r / P) * O + o) * P + r % P]; }
  let total = tree_sum(l, acc);
  if (l == 0u) { mem[arg(4u) + s * O + o] = total; }
}

// ---- depthwise: one input channel per group (Cg = 1), few outputs per group (Og) ----
// A GEMM would fill one row of 64; these loop over the KH*KW taps directly, one thread an
// output (forward) or an input pixel (input gradient). Output channel o reads input channel o / Og.

// conv_dw_fwd(geo, x 16, w 17, bias 18, y 19, hasBias 20): one thread per y element
@compute @workgroup_size(256)
fn conv_dw_fwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let g = geo();
  let Og = g.O / g.G; let P = g.HO * g.WO;
  let i = wid(wg) * 256u + l;
  if (i >= g.N * g.O * P) { return; }
  let p = i % P; let no = i / P; let o = no % g.O; let n = no / g.O;
  let ih0 = i32((p / g.WO) * g.SH) - g.PH;
  let iw0 = i32((p % g.WO) * g.SW) - g.PW;
  let xb = arg(16u) + (n * g.C + o / Og) * g.H * g.W;
  let wb = arg(17u) + o * g.KH * g.KW;
  var acc = 0.0;
  for (var kh = 0u; kh < g.KH; kh++) {
    let ih = ih0 + i32(kh * g.DH);
    if (ih < 0 || u32(ih) >= g.H) { continue; }
    for (var kw = 0u; kw < g.KW; kw++) {
      let iw = iw0 + i32(kw * g.DW);
      if (iw >= 0 && u32(iw) < g.W) { acc += mem[wb + kh * g.KW + kw] * mem[xb + u32(ih) * g.W + u32(iw)]; }
    }
  }
  if (arg(20u) != 0u) { acc += mem[arg(18u) + o]; }
  mem[arg(19u) + i] = epilogue(acc, o, i);
}

// conv_dw_dx(geo, dy 16, w 17, bias 18, dx 19, hasBias 20): one thread per dx element, a
// gather over the Og outputs of its channel and the taps that reach it
@compute @workgroup_size(256)
fn conv_dw_dx(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let g = geo();
  let Og = g.O / g.G; let P = g.HO * g.WO; let HW = g.H * g.W; let KK = g.KH * g.KW;
  let i = wid(wg) * 256u + l;
  if (i >= g.N * g.C * HW) { return; }
  let q = i % HW; let nc = i / HW; let c = nc % g.C; let n = nc / g.C;
  let ih = i32(q / g.W) + g.PH; let iw = i32(q % g.W) + g.PW;
  var acc = 0.0;
  for (var o = c * Og; o < (c + 1u) * Og; o++) {
    let dyb = arg(16u) + (n * g.O + o) * P;
    let wb = arg(17u) + o * KK;
    for (var kh = 0u; kh < g.KH; kh++) {
      let oh = ih - i32(kh * g.DH);
      if (oh < 0 || u32(oh) % g.SH != 0u || u32(oh) / g.SH >= g.HO) { continue; }
      for (var kw = 0u; kw < g.KW; kw++) {
        let ow = iw - i32(kw * g.DW);
        if (ow < 0 || u32(ow) % g.SW != 0u || u32(ow) / g.SW >= g.WO) { continue; }
        acc += mem[wb + kh * g.KW + kw] * mem[dyb + (u32(oh) / g.SH) * g.WO + u32(ow) / g.SW];
      }
    }
  }
  if (arg(20u) != 0u) { acc += mem[arg(18u) + c]; }
  mem[arg(19u) + i] = acc;
}

// conv_dw_dw(geo, x 16, dy 17, out 18, chunk 19): out[s][o*KK + tap] = sum over the (n, p) of
// chunk s of dy[n, o, p] * x[n, o/Og, window tap]. Workgroups: S x O x KK, a chunked reduction.
@compute @workgroup_size(256)
fn conv_dw_dw(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let g = geo();
  let Og = g.O / g.G; let P = g.HO * g.WO; let R = g.N * P; let KK = g.KH * g.KW;
  let chunk = arg(19u);
  let t = wid(wg);
  let tap = t % KK; let o = (t / KK) % g.O; let s = t / (KK * g.O);
  if (s * chunk >= R) { return; }
  let r1 = min(R, s * chunk + chunk);
  let dh = i32((tap / g.KW) * g.DH) - g.PH; let dw = i32((tap % g.KW) * g.DW) - g.PW;
  var acc = 0.0;
  for (var r = s * chunk + l; r < r1; r += 256u) {
    let n = r / P; let p = r % P;
    let ih = i32((p / g.WO) * g.SH) + dh; let iw = i32((p % g.WO) * g.SW) + dw;
    if (ih >= 0 && iw >= 0 && u32(ih) < g.H && u32(iw) < g.W) {
      acc += mem[arg(17u) + (n * g.O + o) * P + p] * mem[arg(16u) + ((n * g.C + o / Og) * g.H + u32(ih)) * g.W + u32(iw)];
    }
  }
  let total = tree_sum(l, acc);
  if (l == 0u) { mem[arg(18u) + s * g.O * KK + o * KK + tap] = total; }
}
