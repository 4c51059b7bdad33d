// Pooling kernels: the twins of assembly/pool.ts. NCHW planes; one thread an output (forward)
// or an input element (backward), 256 threads a workgroup. The backward passes are gathers:
// each input element sums, in output order (oh, then ow, ascending), the outputs whose windows
// hold it, the same additions in the same order as the CPU's scatter, with no atomics.

// ---- max pooling ----
// Geometry words (shared by the three kernels): NC, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw.
struct MaxGeom { NC: u32, H: i32, W: i32, OH: u32, OW: u32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, dh: i32, dw: i32 }

fn max_geom(a: u32) -> MaxGeom {
  return MaxGeom(arg(a), i32(arg(a + 1u)), i32(arg(a + 2u)), arg(a + 3u), arg(a + 4u), i32(arg(a + 5u)), i32(arg(a + 6u)),
                 i32(arg(a + 7u)), i32(arg(a + 8u)), i32(arg(a + 9u)), i32(arg(a + 10u)), i32(arg(a + 11u)), i32(arg(a + 12u)));
}

fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }

// PyTorch's scan of one window (rows, then columns): the first valid position, then a value takes
// over when `val > max || isnan(val)`, so ties keep the first max and a NaN window its last NaN.
// (Starting from the first value is the same as starting from -Infinity with that position.)
// Padding positions are skipped (they are -Infinity, which never takes over). NaN is tested on
// the bits: a compiler may not drop it. Returns (max, tap i*kw + j).
fn max_window(x: u32, o: u32, gm: MaxGeom) -> vec2<f32> {
  let ow = i32(o % gm.OW);
  let oh = i32((o / gm.OW) % gm.OH);
  let nc = o / (gm.OW * gm.OH);
  let plane = x + nc * u32(gm.H * gm.W);
  var m = 0.0;
  var t = -1;
  for (var i = 0; i < gm.kh; i++) {
    let h = oh * gm.sh - gm.ph + i * gm.dh;
    if (h < 0 || h >= gm.H) { continue; }
    for (var j = 0; j < gm.kw; j++) {
      let w = ow * gm.sw - gm.pw + j * gm.dw;
      if (w < 0 || w >= gm.W) { continue; }
      let v = mem[plane + u32(h * gm.W + w)];
      if (t < 0 || is_nan(v) || (!is_nan(m) && v > m)) {
        m = v;
        t = i * gm.kw + j;
      }
    }
  }
  return vec2<f32>(m, f32(t));
}

// maxpool_fwd(x, y, NC, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw): y = max over each window
@compute @workgroup_size(256)
fn maxpool_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let gm = max_geom(2u);
  let o = wid(g) * 256u + l;
  if (o < gm.NC * gm.OH * gm.OW) { mem[arg(1) + o] = max_window(arg(0), o, gm).x; }
}

// maxpool_argmax(x, tap, NC, ...): each window's winning tap (i*kw + j, as an exact f32); the
// first pass of the backward.
@compute @workgroup_size(256)
fn maxpool_argmax(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let gm = max_geom(2u);
  let o = wid(g) * 256u + l;
  if (o < gm.NC * gm.OH * gm.OW) { mem[arg(1) + o] = max_window(arg(0), o, gm).y; }
}

// maxpool_bwd(tap, dy, dx, NC, ...): dx = Σ dy over the windows whose winning tap is this element.
// Window rows holding input row h: oh = (h + ph - i*dh) / sh for taps i with an exact quotient;
// i descending gives oh ascending (and j descending ow ascending): the CPU's order.
@compute @workgroup_size(256)
fn maxpool_bwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let gm = max_geom(3u);
  let e = wid(g) * 256u + l;
  if (e >= gm.NC * u32(gm.H * gm.W)) { return; }
  let w = i32(e % u32(gm.W));
  let h = i32((e / u32(gm.W)) % u32(gm.H));
  let nc = e / u32(gm.H * gm.W);
  let base = nc * gm.OH * gm.OW;
  var acc = 0.0;
  for (var i = gm.kh - 1; i >= 0; i--) {
    let th = h + gm.ph - i * gm.dh;
    if (th < 0 || th % gm.sh != 0 || u32(th / gm.sh) >= gm.OH) { continue; }
    let row = base + u32(th / gm.sh) * gm.OW;
    for (var j = gm.kw - 1; j >= 0; j--) {
      let tw = w + gm.pw - j * gm.dw;
      if (tw < 0 || tw % gm.sw != 0 || u32(tw / gm.sw) >= gm.OW) { continue; }
      let o = row + u32(tw / gm.sw);
      if (mem[arg(0) + o] == f32(i * gm.kw + j)) { acc += mem[arg(1) + o]; }
    }
  }
  mem[arg(2) + e] = acc;
}

// ---- average pooling (avg_pool2d, adaptive_avg_pool2d, global_avg_pool2d) ----
// Words: src, dst, NC, then per axis (rows at 3, columns at 8) size, out, k, s, p; then mode
// (13; 0: avg_pool2d, 1: adaptive) and count_include_pad (14). The windows are the op's table
// (src/ops/pool.ts) computed in place: avg_pool2d [o*s - p, min(o*s - p + k, size + p)) clipped
// to the input, its divisor the unclipped or the clipped length; adaptive [floor(o*size/out),
// ceil((o+1)*size/out)). The divisor of an output is rowCount * colCount (PyTorch's).

/** (start, end, count) of window o along the axis whose words start at a. */
fn avg_window(o: i32, a: u32) -> vec3<i32> {
  let size = i32(arg(a));
  let out = i32(arg(a + 1u));
  if (arg(13u) == 1u) {
    let st = (o * size) / out;
    let en = ((o + 1) * size + out - 1) / out;
    return vec3<i32>(st, en, en - st);
  }
  let k = i32(arg(a + 2u));
  let s = i32(arg(a + 3u));
  let p = i32(arg(a + 4u));
  let st = o * s - p;
  let en = min(st + k, size + p);
  let cs = max(st, 0);
  let ce = min(en, size);
  return vec3<i32>(cs, ce, select(ce - cs, en - st, arg(14u) == 1u));
}

/** The outputs along an axis whose windows may hold input position i (a superset: callers test
 *  the window), as [lo, hi]. */
fn avg_range(i: i32, a: u32) -> vec2<i32> {
  let size = i32(arg(a));
  let out = i32(arg(a + 1u));
  if (arg(13u) == 1u) { return vec2<i32>((i * out) / size, min(out - 1, ((i + 1) * out + size - 1) / size - 1)); }
  let k = i32(arg(a + 2u));
  let s = i32(arg(a + 3u));
  let p = i32(arg(a + 4u));
  return vec2<i32>(max(0, (i + p - k + 1) / s), min(out - 1, (i + p) / s));
}

struct AvgOut { nc: u32, oh: i32, ow: i32, rw: vec3<i32>, cw: vec3<i32> }

fn avg_out(o: u32) -> AvgOut {
  let OH = arg(4u);
  let OW = arg(9u);
  let ow = i32(o % OW);
  let oh = i32((o / OW) % OH);
  return AvgOut(o / (OW * OH), oh, ow, avg_window(oh, 3u), avg_window(ow, 8u));
}

// avgpool_fwd: one thread an output; the CPU's order: each column of the window summed down its
// rows, then the column sums left to right, one division. A window wholly in the padding is 0.
@compute @workgroup_size(256)
fn avgpool_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let o = wid(g) * 256u + l;
  if (o >= arg(2u) * arg(4u) * arg(9u)) { return; }
  let a = avg_out(o);
  let W = arg(8u);
  let plane = arg(0u) + a.nc * arg(3u) * W;
  var acc = 0.0;
  for (var w = a.cw.x; w < a.cw.y; w++) {
    var col = mem[plane + u32(a.rw.x) * W + u32(w)];
    for (var h = a.rw.x + 1; h < a.rw.y; h++) { col += mem[plane + u32(h) * W + u32(w)]; }
    acc += col;
  }
  let empty = a.rw.x >= a.rw.y || a.cw.x >= a.cw.y;
  mem[arg(1u) + o] = select(acc / f32(a.rw.z * a.cw.z), 0.0, empty);
}

// avgpool_fwd_wg: large windows (global pooling of big planes): one workgroup an output, its 256
// threads striding over the window, then a fixed tree.
var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn avgpool_fwd_wg(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let o = wid(g);
  if (o >= arg(2u) * arg(4u) * arg(9u)) { return; }
  let a = avg_out(o);
  let W = arg(8u);
  let plane = arg(0u) + a.nc * arg(3u) * W;
  let cols = u32(max(a.cw.y - a.cw.x, 0));
  let n = u32(max(a.rw.y - a.rw.x, 0)) * cols;
  var acc = 0.0;
  for (var i = l; i < n; i += 256u) { acc += mem[plane + (u32(a.rw.x) + i / cols) * W + u32(a.cw.x) + i % cols]; }
  red[l] = acc;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (l < s) { red[l] += red[l + s]; }
    workgroupBarrier();
  }
  if (l == 0u) { mem[arg(1u) + o] = select(red[0] / f32(a.rw.z * a.cw.z), 0.0, n == 0u); }
}

// avgpool_bwd(dy, dx, ...): one thread an input element: over the windows that hold it, rows
// ascending, each row's share Σ_ow dy/divisor (ow ascending) then added: the CPU's row buffer.
@compute @workgroup_size(256)
fn avgpool_bwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let H = arg(3u);
  let W = arg(8u);
  let OH = arg(4u);
  let OW = arg(9u);
  let e = wid(g) * 256u + l;
  if (e >= arg(2u) * H * W) { return; }
  let w = i32(e % W);
  let h = i32((e / W) % H);
  let nc = e / (H * W);
  let rr = avg_range(h, 3u);
  let cr = avg_range(w, 8u);
  var acc = 0.0;
  for (var oh = rr.x; oh <= rr.y; oh++) {
    let rw = avg_window(oh, 3u);
    if (h < rw.x || h >= rw.y) { continue; }
    var r = 0.0;
    for (var ow = cr.x; ow <= cr.y; ow++) {
      let cw = avg_window(ow, 8u);
      if (w < cw.x || w >= cw.y) { continue; }
      r += mem[arg(0u) + (nc * OH + u32(oh)) * OW + u32(ow)] / f32(rw.z * cw.z);
    }
    acc += r;
  }
  mem[arg(1u) + e] = acc;
}
