// The command line in a child process: summary, help, errors, and a one-epoch training run.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const cli = (args, timeout = 300000) => {
  const r = spawnSync(process.execPath, ["dist/cli.js", ...args], { encoding: "utf8", timeout });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

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
  assert.match(r.err, /--augment: unknown augmentation 'spin' \(known: crop\[:N\], flip, shift\[:N\], rotate\[:D\], jitter\[:F\]\)/);
  r = cli(["--help"]);
  assert.is(r.code, 0);
  assert.match(r.out, /simdnet train \[options\]/);
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
    for (const f of ["model.safetensors", "model.json", "history.json", "curves.svg", "checkpoint.safetensors"]) assert.ok(existsSync(join(out, f)), f);
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

test.run();
