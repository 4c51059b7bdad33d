// Optimiser updates, one thread a parameter element: the twins of assembly/optim.ts, with the
// same arguments (element offsets instead of pointers) and the same order of operations.
//
// One dispatch updates every parameter of a step (src/webgpu/optim.ts): the dispatch's own
// arguments are the element offset of a table and its number of rows, and each row holds one
// parameter's arguments, ROW floats: the row's first workgroup, then the kernel's arguments two
// floats each, a u32 as its high and low 16 bits (exact in f32, where a u32's bit pattern could be
// a denormal or a NaN), a float as itself. A workgroup finds its row by binary search.
const ROW = 34u;
var<private> row: u32;
fn half_u32(o: u32) -> u32 { return u32(mem[o]) * 65536u + u32(mem[o + 1u]); }
/** the row of workgroup w: the last row whose first workgroup is at most w */
fn find_row(w: u32) -> u32 {
  var lo = 0u; var hi = arg(1) - 1u;
  while (lo < hi) {
    let mid = (lo + hi + 1u) / 2u;
    if (half_u32(arg(0) + mid * ROW) <= w) { lo = mid; } else { hi = mid - 1u; }
  }
  return lo;
}
/** this thread's element of its row's parameter: the workgroup's offset into it plus its lane */
fn elem(gr: vec3<u32>, l: u32) -> u32 {
  let w = wid(gr);
  row = find_row(w);
  return (w - half_u32(arg(0) + row * ROW)) * 256u + l;
}
fn targ(k: u32) -> u32 { return half_u32(arg(0) + row * ROW + 2u + 2u * k); }
fn targf(k: u32) -> f32 { return mem[arg(0) + row * ROW + 2u + 2u * k]; }

// sgd(p, g, buf, n, negLr, momentum, oneMinusDampening, wd, nesterov, first)
@compute @workgroup_size(256)
fn sgd(@builtin(workgroup_id) gr: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = elem(gr, l);
  if (i >= targ(3)) { return; }
  let negLr = targf(4); let m = targf(5); let omd = targf(6); let wd = targf(7);
  let pv = mem[targ(0) + i];
  var d = mem[targ(1) + i];
  if (wd != 0.0) { d = d + wd * pv; }
  if (m != 0.0) {
    var b = d;
    if (targ(9) == 0u) { b = mem[targ(2) + i] * m + omd * d; }
    mem[targ(2) + i] = b;
    if (targ(8) != 0u) { d = d + m * b; } else { d = b; }
  }
  mem[targ(0) + i] = pv + negLr * d;
}

// rmsprop(p, g, sq, ga, buf, n, negLr, alpha, oneMinusAlpha, eps, wd, momentum, centered)
@compute @workgroup_size(256)
fn rmsprop(@builtin(workgroup_id) gr: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = elem(gr, l);
  if (i >= targ(5)) { return; }
  let negLr = targf(6); let alpha = targf(7); let oma = targf(8); let eps = targf(9); let wd = targf(10); let m = targf(11);
  let pv = mem[targ(0) + i];
  var d = mem[targ(1) + i];
  if (wd != 0.0) { d = d + wd * pv; }
  let q = mem[targ(2) + i] * alpha + oma * d * d;
  mem[targ(2) + i] = q;
  var avg: f32;
  if (targ(12) != 0u) {
    let a = mem[targ(3) + i] * alpha + oma * d;
    mem[targ(3) + i] = a;
    avg = sqrt(q - a * a);
  } else { avg = sqrt(q); }
  avg = avg + eps;
  if (m > 0.0) {
    let b = mem[targ(4) + i] * m + d / avg;
    mem[targ(4) + i] = b;
    mem[targ(0) + i] = pv + negLr * b;
  } else { mem[targ(0) + i] = pv + negLr * d / avg; }
}

// adam(p, g, m, v, vmax, n, beta1, oneMinusBeta1, beta2, oneMinusBeta2, eps, wd, decay, negStepSize, bc2Sqrt, amsgrad)
@compute @workgroup_size(256)
fn adam(@builtin(workgroup_id) gr: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = elem(gr, l);
  if (i >= targ(5)) { return; }
  let b1 = targf(6); let ob1 = targf(7); let b2 = targf(8); let ob2 = targf(9); let eps = targf(10);
  let wd = targf(11); let decay = targf(12); let ss = targf(13); let bc = targf(14);
  var pv = mem[targ(0) + i];
  if (decay != 1.0) { pv = pv * decay; }
  var d = mem[targ(1) + i];
  if (wd != 0.0) { d = d + wd * pv; }
  let mm = mem[targ(2) + i] * b1 + ob1 * d;
  var vv = mem[targ(3) + i] * b2 + ob2 * d * d;
  mem[targ(2) + i] = mm;
  mem[targ(3) + i] = vv;
  if (targ(15) != 0u) {
    vv = max(mem[targ(4) + i], vv);
    mem[targ(4) + i] = vv;
  }
  let denom = sqrt(vv) / bc + eps;
  mem[targ(0) + i] = pv + ss * mm / denom;
}
