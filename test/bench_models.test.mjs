// bench/models.mjs on small workloads (ResNet-18 inference at 64x64, one call each; the CIFAR
// ResNet-20 and LeNet training steps): the references rebuilt from our model's config with our
// weights must give our outputs: PyTorch (where Debian's python3-torch is installed) logits,
// loss and first-layer gradient; ONNX Runtime Web and TF.js logits. Times are printed by the
// bench, never asserted here.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const bench = fileURLToPath(new URL("../bench/models.mjs", import.meta.url));
const hasTorch = spawnSync("/usr/bin/python3", ["-c", "import torch"]).status === 0;

test("models bench: every reference runs where it can and its outputs match ours (1 thread)", () => {
  // the exact 3x3 and 5x5 paths: this checks that the references are built right (our weights,
  // config and input), which Winograd's rounding, grown through batch norm's backward, would
  // blur (bench/models.mjs, --conv3x3, --conv5x5)
  const r = spawnSync(process.execPath, [bench, "--only", "resnet18,resnet20,lenet", "--size", "64", "--threads", "1", "--reps", "1", "--conv3x3", "im2col", "--conv5x5", "im2col", "--json"], { encoding: "utf8", timeout: 400_000 });
  const rows = (r.stdout || "").split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  const show = () => `\n${(r.stdout || "").slice(-3000)}\n${(r.stderr || "").slice(-3000)}`;
  const row = (workload, runtime) => {
    const x = rows.find((y) => y.workload === workload && y.runtime === runtime);
    assert.ok(x, `no row for ${runtime} on ${workload}${show()}`);
    return x;
  };
  const matches = (workload, runtime) => {
    const x = row(workload, runtime);
    assert.is(x.status, "ok", `${runtime} on ${workload}: ${x.status}`);
    assert.ok(x.match === true && x.err >= 0, `${runtime} on ${workload}: outputs differ from ours by ${x.err} of their scale`);
  };
  for (const w of ["resnet18", "resnet20", "lenet"]) assert.ok(row(w, "simdnet").ms > 0);
  matches("resnet18", "ort-wasm");
  matches("resnet18", "tfjs-wasm");
  if (hasTorch) {
    for (const w of ["resnet18", "resnet20", "lenet"]) matches(w, "pytorch");
    // training rows: PyTorch's float64 step is the exact reference for both float32 steps; on
    // the exact path ours is as far from it as PyTorch's float32 one (within their difference)
    for (const w of ["resnet20", "lenet"]) {
      const x = row(w, "pytorch");
      assert.ok(x.ours64 >= 0 && x.ref64 >= 0, `${w}: no float64 distances (${x.ours64}, ${x.ref64})`);
      assert.ok(x.ours64 <= x.ref64 + 2 * x.err + 1e-7, `${w}: ours ${x.ours64} from PyTorch's float64 step, PyTorch's float32 ${x.ref64}, apart ${x.err}`);
    }
  }
  else assert.match(row("lenet", "pytorch").status, /^n\/a: python3-torch is not installed/);
  // what cannot run says why
  assert.match(row("resnet20", "ort-wasm").status, /^n\/a: inference only/);
  assert.match(row("resnet20", "tfjs-wasm").status, /^n\/a: training: TF.js's wasm backend has no convolution weight gradient/);
  assert.match(row("lenet", "tfjs-wasm").status, /outputs n\/a: own weights and data/);
  assert.is(r.status, 0, `the bench exited with ${r.status}${show()}`);
});

test("float64_seeds bench: LeNet's exact path over two seeds, a table of the paths against PyTorch's float64 step; bad arguments refused", () => {
  const script = fileURLToPath(new URL("../bench/float64_seeds.mjs", import.meta.url));
  const r = spawnSync(process.execPath, [script, "--workload", "lenet", "--modes", "im2col", "--seeds", "0-1", "--threads", "1", "--per-seed"], { encoding: "utf8", timeout: 300_000 });
  if (!hasTorch) {
    assert.is(r.status, 1);
    assert.match(r.stderr, /no float64 comparison in models\.mjs's output \(is python3-torch installed/);
  } else {
    assert.is(r.status, 0, r.stderr);
    assert.match(r.stdout, /^seed 0: im2col \d\.\de-\d+, PyTorch float32 /m);
    assert.match(r.stdout, /^seed 1: /m);
    const cells = (name) => r.stdout.match(new RegExp(`^\\| ${name} \\| ([\\d.e+-]+) \\| ([\\d.e+-]+) \\| (\\d+) / 2 \\|$`, "m"));
    const ours = cells("im2col"), torch = cells("PyTorch float32");
    assert.ok(ours && torch, r.stdout);
    // LeNet's exact path: 2e-7 to 4e-7 of the gradient's scale from the float64 step at every
    // seed measured (docs/performance.md); a wrong reference or parse is far from that
    assert.ok(+ours[1] > 0 && +ours[1] < 1e-5, `im2col median ${ours[1]}`);
    assert.ok(+torch[1] > 0, `PyTorch median ${torch[1]}`);
  }
  const bad = spawnSync(process.execPath, [script, "--seeds", "5-2"], { encoding: "utf8" });
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /--seeds takes FIRST-LAST/);
  assert.is(spawnSync(process.execPath, [script, "--modez", "auto"], { encoding: "utf8" }).status, 2);
});

test.run();
