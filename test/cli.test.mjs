// The command line in a child process: summary, help, errors, and a one-epoch training run.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, readFileSync, mkdirSync, copyFileSync, readdirSync, writeFileSync } from "node:fs";
import { inflateSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join } from "node:path";

const cli = (args, timeout = 300000, script = "dist/cli.js") => {
  const r = spawnSync(process.execPath, [script, ...args], { encoding: "utf8", timeout });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

/** The RGBA pixels of a PNG with 8-bit RGBA rows and filter 0 (what encodePNG writes). */
function decodePNG(bytes) {
  assert.equal([...bytes.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], "PNG signature");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 8, width = 0, height = 0;
  const idat = [];
  while (p < bytes.length) {
    const len = dv.getUint32(p), type = String.fromCharCode(...bytes.subarray(p + 4, p + 8));
    if (type === "IHDR") [width, height] = [dv.getUint32(p + 8), dv.getUint32(p + 12)];
    if (type === "IDAT") idat.push(bytes.subarray(p + 8, p + 8 + len));
    p += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  assert.is(raw.length, height * (width * 4 + 1));
  const pixel = (x, y) => [...raw.subarray(y * (width * 4 + 1) + 1 + x * 4, y * (width * 4 + 1) + 1 + x * 4 + 3)].join(",");
  return { width, height, pixel };
}

test("summary lenet prints the lecture's table with totals", () => {
  const r = cli(["summary", "lenet"]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /features\.0\s+Conv2d\(1, 20, kernel_size=5, padding=2\)\s+20x28x28\s+520\s+392,000/);
  assert.match(r.out, /classifier\.0\s+Linear\(in_features=2450, out_features=500\)\s+500\s+1,225,500/);
  assert.match(r.out, /Parameters: 1,256,080/);
});

test("summary of zoo models uses the input each is built for (README: summary vgg16)", () => {
  for (const [name, params, input] of [["vgg16", "138,357,544", "3x224x224"], ["resnet20", "269,722", "3x32x32"], ["alexnet2012", "62,378,344", "3x227x227"], ["unet", "31,030,658", "1x256x256"]]) {
    const r = cli(["summary", name]);
    assert.is(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`Parameters: ${params}`), name);
    assert.match(r.out, new RegExp(`^Input ${input}$`, "m"), name);
  }
});

test("summary lenet5 --input: LeNet-5 on 28x28 with 60,850 parameters", () => {
  const r = cli(["summary", "lenet5", "--input", "1,32,32"]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /c3\s+PartialConv2d\(6, 16, kernel_size=5, connections=60\/96\)\s+16x10x10\s+1,516/);
  assert.match(r.out, /Parameters: 60,850/);
});

test("bad commands and options are one-line errors with exit code 1", () => {
  let r = cli(["summary", "vgg99"]);
  assert.is(r.code, 1);
  assert.match(r.err, /simdnet: summary: unknown model 'vgg99'/);
  r = cli(["frobnicate"]);
  assert.is(r.code, 1);
  assert.match(r.err, /unknown command 'frobnicate'/);
  r = cli(["train", "--epochs", "two"]);
  assert.is(r.code, 1);
  assert.match(r.err, /--epochs must be an integer, got 'two'/);
  r = cli(["train", "--augment=spin", "--limit", "64"]);
  assert.is(r.code, 1);
  assert.match(r.err, /--augment: unknown augmentation 'spin' \(known: crop\[:N\], flip, shift\[:N\], rotate\[:D\], jitter\[:F\], erase\[:P\]\)/);
  // the convolution paths: checked before the data is read, naming the choices
  r = cli(["train", "--conv3x3", "fast", "--limit", "64"]);
  assert.is(r.code, 1);
  assert.match(r.err, /^simdnet: --conv3x3 must be auto, winograd, winograd2, winograd4 or im2col, got 'fast'$/m);
  r = cli(["eval", "--conv5x5=winograd4"]);
  assert.is(r.code, 1);
  assert.match(r.err, /--conv5x5 must be auto, winograd or im2col, got 'winograd4'/);
  r = cli(["train", "--conv3x3", "im2col", "--device", "webgpu", "--limit", "64"]);
  assert.is(r.code, 1);
  assert.match(r.err, /--conv3x3 chooses among the CPU's kernels; --device webgpu runs its own/);
  r = cli(["--help"]);
  assert.is(r.code, 0);
  assert.match(r.out, /simdnet train \[options\]/);
});

test("train --conv5x5 / --conv3x3: the path the layers run (the profile's Path column) follows the option", () => {
  const out = mkdtempSync(join(tmpdir(), "cli-"));
  try {
    const paths = (extra) => {
      const r = cli(["train", "--epochs", "1", "--limit", "64", "--batch-size", "32", "--threads", "2", "--no-progress", "--profile", "--out", out, ...extra]);
      assert.is(r.code, 0, r.err + r.out);
      // LeNet's second convolution, 20 -> 50 channels 5x5 on 14x14: Winograd F(2,5) by default
      return [r.out.match(/^features\.3 +Conv2d\(20, 50, .*?%  (.*)$/m)[1], r.out];
    };
    let [p, text] = paths([]);
    assert.match(p, /winograd/, p);
    assert.not.match(text, /conv5x5/);
    [p, text] = paths(["--conv5x5", "im2col", "--conv3x3", "winograd4"]);
    assert.not.match(p, /winograd/, p);
    assert.match(p, /im2col/, p);
    assert.match(text, /2 threads, \w+ build, conv3x3 winograd4, conv5x5 im2col\n/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("train --limit: one epoch in a child process prints test accuracy and writes model, config, curves; eval reloads it", () => {
  const out = mkdtempSync(join(tmpdir(), "cli-"));
  try {
    // stdout is a pipe, not a terminal: progress comes as plain lines now and then
    const r = cli(["train", "--epochs", "1", "--limit", "512", "--batch-size", "32", "--threads", "2", "--out", out]);
    assert.is(r.code, 0, r.err + r.out);
    assert.match(r.out, /512 training images, 2000 test images; 1 epoch, batch 32/);
    assert.match(r.out, /epoch 1\/1 batch 16\/16  loss \d\.\d{4}  \d+ img\/s  ETA 0:00/);
    const m = r.out.match(/epoch 1\/1  train loss [\d.]+ acc [\d.]+%  test loss [\d.]+ acc ([\d.]+)% \(top-5 [\d.]+%\)/);
    assert.ok(m, r.out);
    // 512 images, one epoch: far above chance (10 %), well short of converged
    assert.ok(+m[1] > 40, `test accuracy ${m[1]}%`);
    for (const f of ["model.safetensors", "model.json", "history.json", "curves.svg", "curves.png", "checkpoint.safetensors"]) assert.ok(existsSync(join(out, f)), f);
    // curves.png: the two panels with the train (blue) and test (red) points of the one epoch
    const png = decodePNG(readFileSync(join(out, "curves.png")));
    assert.is(`${png.width}x${png.height}`, "720x250");
    const colours = new Map();
    for (let y = 0; y < png.height; y++)
      for (let x = 0; x < png.width; x++) {
        const c = png.pixel(x, y);
        colours.set(c, (colours.get(c) ?? 0) + 1);
      }
    assert.ok(colours.get("255,255,255") > 0.8 * 720 * 250, "mostly white");
    assert.ok(colours.get("153,153,153") > 4 * 300, "frames");
    for (const c of ["31,119,180", "214,39,40"]) assert.ok(colours.get(c) >= 2 * 25, `${c}: ${colours.get(c)} pixels`);
    // labels (titles, axis values, epochs, legend) in dark grey: the titles sit above each panel
    assert.ok(colours.get("51,51,51") > 200, `label pixels: ${colours.get("51,51,51")}`);
    for (const [x0, x1] of [[50, 350], [410, 710]]) {
      let ink = 0;
      for (let y = 0; y < 16; y++) for (let x = x0; x < x1; x++) ink += png.pixel(x, y) === "51,51,51" ? 1 : 0;
      assert.ok(ink > 20, `a title above the panel at x ${x0}: ${ink} pixels`);
    }
    const cfg = JSON.parse(readFileSync(join(out, "model.json"), "utf8"));
    assert.is(cfg.format, "simdnet-model");
    assert.is(cfg.meta.zoo, "lenet");
    assert.ok(Math.abs(cfg.meta.testAccuracy * 100 - +m[1]) < 0.01);
    assert.match(readFileSync(join(out, "curves.svg"), "utf8"), /^<svg[^>]*>[\s\S]*top-1 accuracy[\s\S]*<\/svg>$/);
    const e = cli(["eval", "--model", out, "--threads", "1"]);
    assert.is(e.code, 0, e.err);
    assert.match(e.out, new RegExp(`2000 test images of MNIST digits.*top-1 ${m[1].replace(".", "\\.")}%`));
    const s = cli(["summary", join(out, "model.json")]);
    assert.match(s.out, /Parameters: 1,256,080/);
  } finally {
    rmSync(out, { recursive: true });
  }
});

test("an option a command does not know is an error naming it, the valid ones and the closest", () => {
  let r = cli(["train", "--epoch", "1", "--limit", "64"]);
  assert.is(r.code, 1);
  assert.match(r.err, /^simdnet: train: unknown option --epoch \(did you mean --epochs\?\); train takes --data, --model, .*--epochs, /);
  r = cli(["train", "--model", "unet", "--limit", "64"]);
  assert.is(r.code, 1);
  assert.match(r.err, /--model unet is a segmentation net \(a class per pixel\), and train fits classifiers/);
  r = cli(["train", "--batchsize=32"]);
  assert.is(r.code, 1);
  assert.match(r.err, /unknown option --batchsize \(did you mean --batch-size\?\)/);
  r = cli(["summary", "lenet", "--threads", "2"]);
  assert.is(r.code, 1);
  assert.match(r.err, /summary: unknown option --threads \(an option of train, eval, bench, bench train\); summary takes --input \(--help\)/);
  r = cli(["bench", "--steps", "3"]);
  assert.is(r.code, 1);
  assert.match(r.err, /bench: unknown option --steps \(an option of bench train\)/);
  // flags are on or off, plain arguments only where a command takes them, no option twice
  for (const [args, msg] of [
    [["train", "--resume=yes"], /train: --resume is on or off \(--resume, --resume=true, --resume=false\), got '--resume=yes'/],
    [["train", "--augment", "flip"], /train: unexpected argument 'flip' \(train takes options only\)/],
    [["train", "--out"], /train: --out needs a value/],
    [["train", "--epochs", "1", "--epochs", "2"], /train: --epochs is given twice/],
    [["eval", "out", "--model", "out2"], /eval: the model folder is given twice \('out' and --model out2\)/],
    [["--epochs", "1", "train"], /the command comes first/],
    [["train", "--progress", "--no-progress"], /contradict/],
    [["train", "--model", "resnet20", "--batch-norm"], /--batch-norm is an option of the lecture's LeNet \(--model lenet\), not of resnet20/],
    [["train", "--optimizer", "adam", "--momentum", "0.9"], /--momentum is for sgd and rmsprop, not adam/],
    [["train", "--optimizer", "lbfgs"], /--optimizer must be sgd, adam, adamw or rmsprop, got 'lbfgs'/],
  ]) {
    r = cli(args);
    assert.is(r.code, 1, args.join(" "));
    assert.match(r.err, msg);
  }
});

test("every option --help and README document is one its command takes, and every one it takes is documented", () => {
  const help = cli(["--help"]).out;
  assert.is(cli(["train", "--help"]).out, help);
  const opts = (text) => new Set([...text.matchAll(/--(?!help)[a-z][a-z0-9-]*/g)].map((m) => m[0]));
  const section = (title) => help.split(`\n${title}\n`)[1].split("\n\n")[0];
  const bench = help.split("\nbench options:")[1];
  const benchCommon = bench.split(/^  bench:/m)[0];
  const documented = {
    train: opts(section("train options:")),
    eval: opts(section("eval options:")),
    summary: opts(section("summary options:")),
    export: opts(section("export options:")),
    convert: opts(section("convert options:")),
    bench: opts(benchCommon + bench.match(/^  bench: .*$/m)[0]),
    "bench train": opts(benchCommon + bench.match(/^  bench train: .*$/m)[0]),
  };
  assert.ok(documented.train.has("--epochs") && documented.bench.has("--quick") && documented["bench train"].has("--no-tfjs"));
  // the valid ones, as the parser has them, from the error for an option nobody takes
  const valid = {};
  for (const cmd of Object.keys(documented)) {
    const r = cli([...cmd.split(" "), ...(cmd === "summary" ? ["lenet"] : []), "--zzz"]);
    assert.is(r.code, 1);
    valid[cmd] = new Set(r.err.match(/ takes (.*) \(--help\)/)[1].split(", "));
    assert.equal([...documented[cmd]].sort(), [...valid[cmd]].sort(), cmd);
  }
  // README: each `npx simdnet CMD ...` line and the options its prose names for train
  const readme = readFileSync("README.md", "utf8").split("## The command line")[1].split("\n## ")[0];
  for (const [, cmd, rest] of readme.matchAll(/^npx simdnet (\w+)(.*)$/gm))
    for (const o of opts(rest)) assert.ok(valid[cmd].has(o), `README: ${cmd} ${o}`);
  // (less the typo it shows as an example of the error)
  for (const o of opts(readme.split("```").slice(2).join("").replace(/[^.]*did you mean[^.]*\./, ""))) assert.ok(Object.values(valid).some((v) => v.has(o)), `README prose: ${o}`);
});

test("train takes the documented options (with values) and trains; --resume and eval's options too", () => {
  const out = mkdtempSync(join(tmpdir(), "cli-"));
  try {
    const common = ["--data", "mnist", "--model", "lenet", "--batch-norm", "--batch-size", "32", "--optimizer", "rmsprop", "--lr", "0.001", "--momentum", "0.5", "--weight-decay", "0.0001", "--schedule", "step", "--threads", "1", "--seed", "3", "--limit", "64", "--augment=flip,rotate:5", "--out", out];
    let r = cli(["train", ...common, "--epochs", "1", "--progress"]);
    assert.is(r.code, 0, r.err + r.out);
    assert.match(r.out, /64 training images, 2000 test images; 1 epoch, batch 32, rmsprop lr 0\.001 momentum 0\.5 \(step schedule\); 1 thread/);
    assert.match(r.out, /\r\x1b\[2Kepoch 1\/1 \[#+\] 2\/2/);
    r = cli(["train", ...common, "--epochs", "2", "--resume", "--no-progress"]);
    assert.is(r.code, 0, r.err + r.out);
    assert.match(r.out, /^epoch 2\/2  train loss/m);
    assert.not.match(r.out, /^epoch 1\/2/m);
    r = cli(["eval", out, "--data", "mnist", "--threads", "1", "--conv3x3", "im2col", "--conv5x5", "im2col"]);
    assert.is(r.code, 0, r.err);
    assert.match(r.out, /2000 test images of MNIST digits/);
    r = cli(["summary", join(out, "model.json"), "--input", "1,28,28"]);
    assert.is(r.code, 0, r.err);
    assert.match(r.out, /BatchNorm2d/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("bench without bench/ (an installed package) runs the built-in benchmark; --builtin forces it in a checkout", () => {
  // an installed package: dist/ alone
  const pkg = mkdtempSync(join(tmpdir(), "cli-pkg-"));
  try {
    mkdirSync(join(pkg, "dist"));
    for (const f of readdirSync("dist")) if (f === "cli.js" || f.endsWith(".wasm")) copyFileSync(join("dist", f), join(pkg, "dist", f));
    const installed = join(pkg, "dist", "cli.js");
    let r = cli(["bench", "--threads", "1"], 60000, installed);
    assert.is(r.code, 0, r.err + r.out);
    assert.match(r.out, /^threads  build      SGEMM 512 ms  GFLOP\/s  LeNet step ms  images\/s$/m);
    const row = r.out.match(/^ {6}1  (relaxed|simd) +([\d.]+) +([\d.]+) +([\d.]+) +(\d+)$/m);
    assert.ok(row, r.out);
    // 2*512^3 flops over the time, and 64 images over the step
    assert.ok(Math.abs((2 * 512 ** 3) / +row[2] / 1e6 - +row[3]) / +row[3] < 0.02, row[0]);
    assert.ok(Math.abs(64000 / +row[4] - +row[5]) / +row[5] < 0.02, row[0]);
    assert.match(r.out, /needs a source checkout/);
    r = cli(["bench", "--suite", "gemm"], 60000, installed);
    assert.is(r.code, 1);
    assert.match(r.err, /bench: --suite is an option of the benchmark scripts in bench\/, which an installed package does not have/);
  } finally {
    rmSync(pkg, { recursive: true, force: true });
  }
  const r = cli(["bench", "train", "--builtin", "--threads", "1,1"], 60000);
  assert.is(r.code, 0, r.err + r.out);
  assert.match(r.out, /^threads  build      LeNet step ms  images\/s\n {6}1  \w+ +[\d.]+ +\d+\nThe comparison/m);
  assert.is(cli(["bench", "--builtin", "--threads", "0"]).code, 1);
});

test("train --no-progress: only the per-epoch lines", () => {
  const out = mkdtempSync(join(tmpdir(), "cli-"));
  try {
    const r = cli(["train", "--epochs", "1", "--limit", "64", "--batch-size", "32", "--threads", "1", "--out", out, "--no-progress"]);
    assert.is(r.code, 0, r.err + r.out);
    assert.match(r.out, /epoch 1\/1  train loss [\d.]+ acc [\d.]+%  test loss/);
    assert.not.match(r.out, /batch \d+\/\d+/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("cli: --version prints package.json's version; an error from the library is prefixed once", () => {
  const v = cli(["--version"]);
  assert.is(v.code, 0, v.err);
  const pkg = JSON.parse(readFileSync("package.json", "utf8"));
  assert.is(v.out.trim(), `simdnet ${pkg.version}`);
  const r = cli(["eval", join(tmpdir(), "simdnet-no-such-folder-xyz")]);
  assert.is(r.code, 1);
  assert.not.match(r.err, /simdnet: simdnet:/);
  assert.match(r.err, /^simdnet: /);
});

test("atomic writes: the temporary file of a write killed before (its process gone) is removed by the next write", async () => {
  const { writeFileAtomic } = await import("../dist/index.js");
  const dir = mkdtempSync(join(tmpdir(), "simdnet-atomic-"));
  try {
    const target = join(dir, "history.json");
    // a pid that is not running: a child that has exited
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout;
    writeFileSync(join(dir, `history.json.tmp-${dead}-123`), "half");
    writeFileSync(join(dir, `history.json.tmp-${process.pid}-456`), "mine, in progress");
    await writeFileAtomic(target, "{}");
    const left = readdirSync(dir).sort();
    assert.equal(left, ["history.json", `history.json.tmp-${process.pid}-456`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();

test("train --resume: says where it resumes, keeps the run's settings, refuses changed ones, extends a finished cosine run over the new length", () => {
  const out = mkdtempSync(join(tmpdir(), "cli-resume-"));
  try {
    const base = ["train", "--limit", "64", "--threads", "1", "--no-progress", "--out", out];
    // no checkpoint yet: a new run, and it says so
    let r = cli([...base, "--epochs", "1", "--resume"]);
    assert.is(r.code, 0, r.err + r.out);
    assert.match(r.out, /--resume: no checkpoint at .*checkpoint\.safetensors yet, so this is a new run/);
    const weights1 = readFileSync(join(out, "model.safetensors"));
    // a finished run: says so, trains nothing, rewrites nothing
    r = cli([...base, "--resume"]);
    assert.is(r.code, 0, r.err + r.out);
    assert.match(r.out, /has finished its 1 epochs \(test accuracy [\d.]+%\); --resume --epochs N with N > 1 trains it longer/);
    assert.not.match(r.out, /^epoch /m);
    assert.equal(readFileSync(join(out, "model.safetensors")), weights1);
    // changed settings are refused, naming the saved and the asked-for values, before any data is read
    r = cli([...base, "--resume", "--epochs", "2", "--lr", "0.5", "--data", "fashion"]);
    assert.is(r.code, 1, r.out);
    assert.match(r.err, /--resume: the run in .* was trained with --data mnist, --lr 0\.02; this command asks for --data fashion, --lr 0\.5\. A resumed run keeps its settings/);
    // an option given again with its saved value is fine; fewer epochs than trained is an error
    r = cli([...base, "--resume", "--epochs", "0"]);
    assert.is(r.code, 1);
    assert.match(r.err, /has already trained 1 epochs; --epochs 0 is fewer/);
    // extending: epoch 2 of 2 trains at the cosine schedule's rate for 2 epochs at epoch 1
    // (0.02 * (1 + cos(pi/2)) / 2 = 0.01), not at the finished 1-epoch schedule's 0
    r = cli([...base, "--resume", "--epochs", "2", "--lr", "0.02"]);
    assert.is(r.code, 0, r.err + r.out);
    assert.match(r.out, /resuming from epoch 1 of 2 \(.*checkpoint\.safetensors\): the run is extended from 1 to 2 epochs, its cosine schedule planned over 2 epochs from here on/);
    assert.match(r.out, /^epoch 2\/2  train loss/m);
    const history = JSON.parse(readFileSync(join(out, "history.json"), "utf8"));
    assert.equal(history.map((h) => h.epoch), [1, 2]);
    assert.ok(Math.abs(history[1].lr - 0.01) < 1e-9, `epoch 2 lr ${history[1].lr}`);
    assert.not.equal(readFileSync(join(out, "model.safetensors")), weights1);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
