// GEMM: C = alpha * op(A) op(B) (+ beta * C) (+ biasScale * bias) (relu), row-major, batched, with
// an optional split of K. The host side and the argument layout are in src/webgpu/ops/linalg.ts
// (gpuGemm); every conv and linear layer on the GPU comes through here.
//
// Tiling: a workgroup computes one 64 x 64 tile of C with 16 x 16 threads, each thread a 4 x 4
// block held in registers: rows ty + 16 i, columns tx + 16 j (i, j < 4), so that in the inner
// loop the 16 threads of a row read 16 consecutive words of the B tile (no bank conflicts) and
// one broadcast word of the A tile, and stores of C are contiguous across tx. K is walked in
// tiles of 16: each step the 256 threads load the 64 x 16 slice of op(A) and the 16 x 64 slice
// of op(B) into workgroup memory (4 words each), in the order that is contiguous in global
// memory for the operand's layout (k fastest for A as stored M x K or B as stored N x K, m / n
// fastest for the transposed layouts) - this is how the four transpose combinations are handled.
// Loads outside M, N or the K range read 0; stores outside M, N are skipped. Rows of the tiles
// are 65 words apart, so that k-fastest stores do not all hit one bank.
//
// Each output is one thread's sum over k in increasing order (fixed): the same bits every run.
// Split-K (few tiles, long K): workgroup (batch, split s) sums k in [s Kc, (s+1) Kc) into a
// partial buffer, then gemm_splitk adds the partials in order s = 0, 1, ... and applies the
// epilogue.
//
// args: 0 M, 1 N, 2 K, 3 A, 4 lda, 5 B, 6 ldb, 7 C, 8 ldc, 9 alpha, 10 beta, 11 flags,
//       12 bias, 13 bias stride per row m, 14 bias stride per column n, 15 biasScale,
//       16 batch stride A, 17 of B, 18 of C, 19 of bias, 20 tiles along M, 21 tiles along N,
//       22 batch, 23 splits S, 24 Kc (K per split, a multiple of 16), 25 partials P
// flags: 1 transA, 2 transB, 4 read C (beta != 0), 8 bias, 16 relu, 32 write partials to P

const TS = 64u;      // tile of C: TS x TS
const TK = 16u;      // K step
const LDS = 65u;     // row pitch of the tiles in workgroup memory
var<workgroup> tA: array<f32, 1040>; // [TK][LDS]: tA[k * LDS + m] = op(A)[m0 + m, k0 + k]
var<workgroup> tB: array<f32, 1040>; // [TK][LDS]: tB[k * LDS + n] = op(B)[k0 + k, n0 + n]

/** alpha * acc (+ beta * C) (+ bias) (relu) into C[batch bi][m, n]. */
fn gemm_epilogue(acc: f32, bi: u32, m: u32, n: u32) {
  let flags = arg(11u);
  let ci = arg(7u) + bi * arg(18u) + m * arg(8u) + n;
  var t = acc * argf(9u);
  if ((flags & 4u) != 0u) { t = t + mem[ci] * argf(10u); }
  if ((flags & 8u) != 0u) { t = t + mem[arg(12u) + bi * arg(19u) + m * arg(13u) + n * arg(14u)] * argf(15u); }
  if ((flags & 16u) != 0u) { t = select(t, 0.0, t < 0.0); }
  mem[ci] = t;
}

@compute @workgroup_size(16, 16)
fn gemm(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let M = arg(0u);
  let N = arg(1u);
  let K = arg(2u);
  let lda = arg(4u);
  let ldb = arg(6u);
  let flags = arg(11u);
  let tilesM = arg(20u);
  let tilesN = arg(21u);
  let S = arg(23u);
  var w = wid(g);
  if (w >= tilesM * tilesN * S * arg(22u)) { return; }
  let tn = w % tilesN;
  w = w / tilesN;
  let tm = w % tilesM;
  w = w / tilesM;
  let s = w % S;
  let bi = w / S;
  let m0 = tm * TS;
  let n0 = tn * TS;
  let kBegin = s * arg(24u);
  let kEnd = min(K, kBegin + arg(24u));
  let aBase = arg(3u) + bi * arg(16u);
  let bBase = arg(5u) + bi * arg(17u);
  let transA = (flags & 1u) != 0u;
  let transB = (flags & 2u) != 0u;
  let tx = lid.x;
  let ty = lid.y;

  var acc: array<f32, 16>; // acc[i * 4 + j]: row ty + 16 i, column tx + 16 j
  for (var i = 0u; i < 16u; i++) { acc[i] = 0.0; }

  for (var k0 = kBegin; k0 < kEnd; k0 += TK) {
    for (var r = 0u; r < 4u; r++) {
      let idx = l + 256u * r;
      // op(A) slice, 64 (m) x 16 (k)
      var am = idx / TK;
      var ak = idx % TK;
      if (transA) { am = idx % TS; ak = idx / TS; }
      let gm = m0 + am;
      let gka = k0 + ak;
      var va = 0.0;
      if (gm < M && gka < kEnd) { va = mem[aBase + select(gm * lda + gka, gka * lda + gm, transA)]; }
      tA[ak * LDS + am] = va;
      // op(B) slice, 16 (k) x 64 (n)
      var bk = idx / TS;
      var bn = idx % TS;
      if (transB) { bk = idx % TK; bn = idx / TK; }
      let gn = n0 + bn;
      let gkb = k0 + bk;
      var vb = 0.0;
      if (gn < N && gkb < kEnd) { vb = mem[bBase + select(gkb * ldb + gn, gn * ldb + gkb, transB)]; }
      tB[bk * LDS + bn] = vb;
    }
    workgroupBarrier();
    for (var k = 0u; k < TK; k++) {
      let a0 = tA[k * LDS + ty];
      let a1 = tA[k * LDS + ty + 16u];
      let a2 = tA[k * LDS + ty + 32u];
      let a3 = tA[k * LDS + ty + 48u];
      let b0 = tB[k * LDS + tx];
      let b1 = tB[k * LDS + tx + 16u];
      let b2 = tB[k * LDS + tx + 32u];
      let b3 = tB[k * LDS + tx + 48u];
      acc[0] += a0 * b0; acc[1] += a0 * b1; acc[2] += a0 * b2; acc[3] += a0 * b3;
      acc[4] += a1 * b0; acc[5] += a1 * b1; acc[6] += a1 * b2; acc[7] += a1 * b3;
      acc[8] += a2 * b0; acc[9] += a2 * b1; acc[10] += a2 * b2; acc[11] += a2 * b3;
      acc[12] += a3 * b0; acc[13] += a3 * b1; acc[14] += a3 * b2; acc[15] += a3 * b3;
    }
    workgroupBarrier();
  }

  let partial = (flags & 32u) != 0u;
  let pBase = arg(25u) + (bi * S + s) * M * N;
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + ty + 16u * i;
    if (m >= M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + tx + 16u * j;
      if (n >= N) { continue; }
      if (partial) { mem[pBase + m * N + n] = acc[i * 4u + j]; }
      else { gemm_epilogue(acc[i * 4u + j], bi, m, n); }
    }
  }
}

// The second pass of a split K (same arguments, flag 32 clear): one thread an output, the S
// partials added in order, then the epilogue.
@compute @workgroup_size(256)
fn gemm_splitk(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let M = arg(0u);
  let N = arg(1u);
  let S = arg(23u);
  let MN = M * N;
  let idx = wid(g) * 256u + l;
  if (idx >= MN * arg(22u)) { return; }
  let bi = idx / MN;
  let r = idx % MN;
  let base = arg(25u) + bi * S * MN + r;
  var t = 0.0;
  for (var s = 0u; s < S; s++) { t += mem[base + s * MN]; }
  gemm_epilogue(t, bi, r / N, r % N);
}
