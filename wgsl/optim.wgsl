// Optimiser updates, one thread a parameter element: the twins of assembly/optim.ts, with the
// same arguments (element offsets instead of pointers) and the same order of operations.

// sgd(p, g, buf, n, negLr, momentum, oneMinusDampening, wd, nesterov, first)
@compute @workgroup_size(256)
fn sgd(@builtin(workgroup_id) gr: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(gr) * 256u + l;
  if (i >= arg(3)) { return; }
  let negLr = argf(4); let m = argf(5); let omd = argf(6); let wd = argf(7);
  let pv = mem[arg(0) + i];
  var d = mem[arg(1) + i];
  if (wd != 0.0) { d = d + wd * pv; }
  if (m != 0.0) {
    var b = d;
    if (arg(9) == 0u) { b = mem[arg(2) + i] * m + omd * d; }
    mem[arg(2) + i] = b;
    if (arg(8) != 0u) { d = d + m * b; } else { d = b; }
  }
  mem[arg(0) + i] = pv + negLr * d;
}

// rmsprop(p, g, sq, ga, buf, n, negLr, alpha, oneMinusAlpha, eps, wd, momentum, centered)
@compute @workgroup_size(256)
fn rmsprop(@builtin(workgroup_id) gr: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(gr) * 256u + l;
  if (i >= arg(5)) { return; }
  let negLr = argf(6); let alpha = argf(7); let oma = argf(8); let eps = argf(9); let wd = argf(10); let m = argf(11);
  let pv = mem[arg(0) + i];
  var d = mem[arg(1) + i];
  if (wd != 0.0) { d = d + wd * pv; }
  let q = mem[arg(2) + i] * alpha + oma * d * d;
  mem[arg(2) + i] = q;
  var avg: f32;
  if (arg(12) != 0u) {
    let a = mem[arg(3) + i] * alpha + oma * d;
    mem[arg(3) + i] = a;
    avg = sqrt(q - a * a);
  } else { avg = sqrt(q); }
  avg = avg + eps;
  if (m > 0.0) {
    let b = mem[arg(4) + i] * m + d / avg;
    mem[arg(4) + i] = b;
    mem[arg(0) + i] = pv + negLr * b;
  } else { mem[arg(0) + i] = pv + negLr * d / avg; }
}

// adam(p, g, m, v, vmax, n, beta1, oneMinusBeta1, beta2, oneMinusBeta2, eps, wd, decay, negStepSize, bc2Sqrt, amsgrad)
@compute @workgroup_size(256)
fn adam(@builtin(workgroup_id) gr: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(gr) * 256u + l;
  if (i >= arg(5)) { return; }
  let b1 = argf(6); let ob1 = argf(7); let b2 = argf(8); let ob2 = argf(9); let eps = argf(10);
  let wd = argf(11); let decay = argf(12); let ss = argf(13); let bc = argf(14);
  var pv = mem[arg(0) + i];
  if (decay != 1.0) { pv = pv * decay; }
  var d = mem[arg(1) + i];
  if (wd != 0.0) { d = d + wd * pv; }
  let mm = mem[arg(2) + i] * b1 + ob1 * d;
  var vv = mem[arg(3) + i] * b2 + ob2 * d * d;
  mem[arg(2) + i] = mm;
  mem[arg(3) + i] = vv;
  if (arg(15) != 0u) {
    vv = max(mem[arg(4) + i], vv);
    mem[arg(4) + i] = vv;
  }
  let denom = sqrt(vv) / bc + eps;
  mem[arg(0) + i] = pv + ss * mm / denom;
}
