// Element-wise kernels: one thread an element, 256 threads a workgroup. Arguments are element
// offsets into mem (the arena) and a count; the twins of assembly/eltwise.ts.

// fill(y, n, value)
@compute @workgroup_size(256)
fn fill(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(1)) { mem[arg(0) + i] = argf(2); }
}

// copy(x, y, n): y = x
@compute @workgroup_size(256)
fn copy(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(2)) { mem[arg(1) + i] = mem[arg(0) + i]; }
}

// acc(g, y, n): y += g
@compute @workgroup_size(256)
fn acc(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(2)) { mem[arg(1) + i] = mem[arg(1) + i] + mem[arg(0) + i]; }
}

// add(a, b, y, n): y = a + b
@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(3)) { mem[arg(2) + i] = mem[arg(0) + i] + mem[arg(1) + i]; }
}

// relu_fwd(x, y, n); PyTorch's relu passes NaN through (max would not on every GPU)
@compute @workgroup_size(256)
fn relu_fwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(2)) {
    let x = mem[arg(0) + i];
    mem[arg(1) + i] = select(x, 0.0, x < 0.0);
  }
}

// relu_bwd(x, dy, dx, n): dx = dy where x > 0 (0 at x = 0, as PyTorch)
@compute @workgroup_size(256)
fn relu_bwd(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(3)) { mem[arg(2) + i] = select(0.0, mem[arg(1) + i], mem[arg(0) + i] > 0.0); }
}

// scale(x, y, n, a): y = a * x
@compute @workgroup_size(256)
fn scale(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let i = wid(g) * 256u + l;
  if (i < arg(2)) { mem[arg(1) + i] = argf(3) * mem[arg(0) + i]; }
}
