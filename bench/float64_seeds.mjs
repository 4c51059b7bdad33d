#!/usr/bin/env node
// How far each convolution path's first training step lies from the exact (float64) one, over
// many seeds: for each seed and each --conv3x3 mode, bench/models.mjs runs our step and PyTorch's
// float32 and float64 steps on the same weights and input, and this prints, per path, the first
// layer's weight-gradient distance from the float64 step (largest difference relative to the
// gradient's largest entry): median, geometric mean and how many seeds are at 1e-3 or more.
// A float32 step is a discontinuous function of its input (a ReLU input within rounding of zero
// flips), so one seed says little; the spread over seeds is the measurement
// (docs/performance.md, "The 16-channel forward on F(4,3)").
//
//   node bench/float64_seeds.mjs [--workload resnet20] [--modes im2col,auto,winograd4]
//                                [--seeds 0-23] [--threads 2] [--python PATH] [--per-seed]
//   --workload  a training workload of bench/models.mjs (resnet20: CIFAR ResNet-20 at batch 32;
//               lenet; resnet18-32; ...)
//   --modes     init's conv3x3 for ours, one run per mode and seed ("auto" is the default path)
//   --per-seed  also print every seed's numbers
// Needs Debian's python3-torch (the float64 step is PyTorch's). About 6 s per seed and mode for
// ResNet-20 on two cores.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const argv = process.argv.slice(2);
const known = new Set(["--workload", "--modes", "--seeds", "--threads", "--python", "--per-seed"]);
const usage = (msg) => {
  if (msg) console.error(`float64_seeds.mjs: ${msg}`);
  console.error("usage: node bench/float64_seeds.mjs [--workload resnet20] [--modes im2col,auto,winograd4] [--seeds 0-23] [--threads 2] [--python PATH] [--per-seed]");
  process.exit(msg ? 2 : 0);
};
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "-h" || argv[i] === "--help") usage();
  if (!known.has(argv[i])) usage(`unknown argument ${argv[i]}`);
  if (argv[i] !== "--per-seed") i++;
}
const opt = (name, def) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : def);
const workload = opt("workload", "resnet20"), modes = opt("modes", "im2col,auto,winograd4").split(",");
const threads = opt("threads", "2"), python = opt("python", "/usr/bin/python3"), perSeed = argv.includes("--per-seed");
const range = /^(\d+)-(\d+)$/.exec(opt("seeds", "0-23"));
if (!range || +range[2] < +range[1]) usage("--seeds takes FIRST-LAST, e.g. 0-23");
const seeds = Array.from({ length: +range[2] - +range[1] + 1 }, (_, i) => +range[1] + i);

const models = fileURLToPath(new URL("./models.mjs", import.meta.url));
/** One models.mjs run: [ours, PyTorch float32] distances from the float64 step. */
function run(seed, mode) {
  const args = [models, "--json", "--only", workload, "--threads", threads, "--reps", "1", "--no-tfjs", "--no-ort", "--python", python, "--seed", String(seed), "--conv3x3", mode];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.on("exit", () => {
      const row = out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).find((r) => r.runtime === "pytorch" && r.ours64 != null);
      if (!row) reject(new Error(`seed ${seed}, ${mode}: no float64 comparison in models.mjs's output (is python3-torch installed? is ${workload} a training workload?)`));
      else resolve([row.ours64, row.ref64]);
    });
  });
}

const dist = Object.fromEntries([...modes, "PyTorch float32"].map((m) => [m, []]));
for (const seed of seeds) {
  const line = [];
  for (const mode of modes) {
    const [ours, torch] = await run(seed, mode).catch((e) => {
      console.error(`float64_seeds.mjs: ${e.message}`);
      process.exit(1);
    });
    dist[mode].push(ours);
    if (mode === modes[0]) dist["PyTorch float32"].push(torch);
    line.push(`${mode} ${ours.toExponential(1)}`);
  }
  if (perSeed) console.log(`seed ${seed}: ${line.join(", ")}, PyTorch float32 ${dist["PyTorch float32"].at(-1).toExponential(1)}`);
}
const median = (a) => {
  const s = [...a].sort((x, y) => x - y), n = s.length;
  return n % 2 ? s[n >> 1] : Math.sqrt(s[n / 2 - 1] * s[n / 2]); // the even case between the two, on a log scale
};
const geomean = (a) => Math.exp(a.reduce((s, v) => s + Math.log(Math.max(v, 1e-12)), 0) / a.length);
console.log(`${workload}, seeds ${seeds[0]}-${seeds.at(-1)}, ${threads} thread(s): the first layer's weight gradient from PyTorch's float64 step (relative to its largest entry)`);
console.log("| path | median | geometric mean | seeds at 1e-3 or more |\n|---|---|---|---|");
for (const [name, v] of Object.entries(dist))
  console.log(`| ${name} | ${median(v).toExponential(1)} | ${geomean(v).toExponential(1)} | ${v.filter((x) => x >= 1e-3).length} / ${v.length} |`);
