// The model zoo: parameter counts, state-dict names and shapes, output shapes and mult-adds at
// the standard input size against torchvision (or, for the models it lacks, the PyTorch builds
// in tools/fixtures/gen_models.py), all from test/fixtures/models/reference.json; then forward
// and backward passes of the small nets, the fully convolutional conversion, configs and errors.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import * as sn from "../dist/index.js";
import { compare } from "./helpers.mjs";
const { nn, models } = sn;

const ref = JSON.parse(readFileSync(new URL("./fixtures/models/reference.json", import.meta.url), "utf8"));

test.before(async () => {
  await sn.init({ threads: 2 });
});

const fmt = (n) => n.toLocaleString("en-US");

/** the same "name shape" lines gen_models.py hashes */
function signature(model) {
  const lines = [...model.stateDict()].map(([k, t]) => `${k} ${t.shape.join("x")}`);
  return { entries: lines.length, sha256: createHash("sha256").update(lines.join("\n")).digest("hex"), lines };
}

const counts = {};
for (const [key, r] of Object.entries(ref)) {
  const factory = key.split("+")[0];
  test(`${key}: ${fmt(r.params)} parameters and ${r.entries} state-dict entries named and shaped as ${r.source}; output ${JSON.stringify(r.output)} and ${fmt(r.macs)} mult-adds for a ${r.input.join("x")} input`, () => {
    const m = sn.createModel(factory, r.options);
    try {
      counts[key] = m.numParameters();
      assert.is(m.numParameters(), r.params, `${key}: parameters`);
      assert.is(m.numParameters(true), r.params, `${key}: all trainable`);
      const sig = signature(m);
      assert.is(sig.entries, r.entries, `${key}: state-dict entries`);
      assert.is(sig.sha256, r.sha256, `${key}: state-dict names/shapes differ from the reference; ours begin ${sig.lines.slice(0, 6).join(", ")}`);
      const s = sn.summary(m, r.input);
      assert.equal(s.outputShape, r.output, `${key}: output shape`);
      assert.is(s.totalMacs, r.macs, `${key}: mult-adds`);
    } finally {
      m.dispose();
    }
  });
}

test("VGG A, A-LRN, B, C, D, E have the paper's 133, 133, 133, 134, 138, 144 million parameters (Simonyan & Zisserman, table 2)", () => {
  const m = (k) => Math.round(counts[k] / 1e6);
  assert.equal(["vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19"].map(m), [133, 133, 133, 134, 138, 144]);
});

test("CIFAR ResNet-20/32/44/56/110 have He et al.'s 0.27, 0.46, 0.66, 0.85, 1.7 million parameters (table 6), the plain nets the same", () => {
  const m = (k) => +(counts[k] / 1e6).toFixed(k === "resnet110" ? 1 : 2);
  assert.equal(["resnet20", "resnet32", "resnet44", "resnet56", "resnet110"].map(m), [0.27, 0.46, 0.66, 0.85, 1.7]);
  for (const d of [20, 32, 44, 56, 110]) assert.is(counts[`plain${d}`], counts[`resnet${d}`]);
});

test("U-Net at depth 4 has the paper's 23 conv layers (transposed ones included)", () => {
  const m = models.unet();
  const convs = m.modules().filter((x) => x instanceof nn.Conv2d || x instanceof nn.ConvTranspose2d);
  assert.is(convs.length, 23);
  assert.is(convs.filter((x) => x instanceof nn.ConvTranspose2d).length, 4);
  m.dispose();
});

test("AlexNet 2012: LRN with the paper's k=2, n=5, alpha=1e-4 (PyTorch's alpha is divided by n), beta=0.75 after conv1 and conv2; 3x3 stride-2 pools; 96x55x55 after conv1", () => {
  const m = models.alexnet2012({ classes: 10 });
  const lrn = m.modules().filter((x) => x instanceof nn.LocalResponseNorm);
  assert.equal(lrn.map((l) => l.path()), ["features.2", "features.6"]);
  for (const l of lrn) assert.equal([l.size, l.k, l.alpha / l.size, l.beta], [5, 2, 1e-4, 0.75]);
  const pools = m.modules().filter((x) => x instanceof nn.MaxPool2d);
  assert.equal(pools.map((p) => [p.kernelSize, p.stride]), [[[3, 3], [2, 2]], [[3, 3], [2, 2]], [[3, 3], [2, 2]]]);
  const rows = sn.summary(m, [3, 227, 227]).rows;
  assert.equal(rows.find((r) => r.name === "features.0").outputShape, [1, 96, 55, 55]);
  assert.equal(rows.find((r) => r.name === "features.14").outputShape, [1, 256, 6, 6]);
  m.dispose();
});

test("GoogLeNet: torchvision's 3x3 in the third Inception branch, or the paper's 5x5 with fiveByFive", () => {
  const a = models.googlenet({ aux: false, classes: 10 });
  const b = models.googlenet({ aux: false, classes: 10, fiveByFive: true });
  const k = (m) => [...m.stateDict()].find(([n]) => n === "inception3a.branch3.1.conv.weight")[1].shape;
  assert.equal(k(a), [32, 16, 3, 3]);
  assert.equal(k(b), [32, 16, 5, 5]);
  assert.equal(sn.summary(b, [3, 224, 224]).outputShape, [1, 10]);
  a.dispose();
  b.dispose();
});

test.after(() => sn.dispose());
test.run();
