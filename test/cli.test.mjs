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
  r = cli(["--help"]);
  assert.is(r.code, 0);
  assert.match(r.out, /simdnet train \[options\]/);
});

test.run();
