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

// ---- fully convolutional ----

/** values of x [N, C, H, W] in the window at (top, left) of size s */
function crop(x, top, left, s) {
  const [N, C, H, W] = x.shape;
  const d = x.data, out = new Float32Array(N * C * s * s);
  for (let nc = 0; nc < N * C; nc++)
    for (let i = 0; i < s; i++) out.set(d.subarray(nc * H * W + (top + i) * W + left, nc * H * W + (top + i) * W + left + s), (nc * s + i) * s);
  return sn.tensor(out, [N, C, s, s]);
}

function randomInput(shape, seed) {
  const g = new sn.Generator(seed);
  return sn.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => g.uniform(-1, 1)), shape);
}

/** an unpadded classifier for 26x26 inputs: 26 -conv3-> 24 -pool-> 12 -conv3-> 10 -pool-> 5; stride 4 */
function smallClassifier() {
  sn.manualSeed(3);
  return new nn.Sequential({
    features: nn.sequential(new nn.Conv2d(3, 8, 3), new nn.ReLU(), new nn.MaxPool2d(2), new nn.Conv2d(8, 16, 3), new nn.ReLU(), new nn.MaxPool2d(2)),
    flatten: new nn.Flatten(),
    classifier: nn.sequential(new nn.Linear(16 * 5 * 5, 32), new nn.ReLU(), new nn.Dropout(0.5), new nn.Linear(32, 5)),
  }).eval();
}

test("convolutionalize: on the training size it gives the classifier's scores; on a 34x34 input a 3x3 map whose entry (i, j) is the classifier's score of the 26x26 window at (4i, 4j)", () => {
  const clf = smallClassifier();
  const fcn = models.convolutionalize(clf, [3, 26, 26]).eval();
  assert.equal([...fcn.stateDict().keys()], [...clf.stateDict().keys()]);
  assert.equal([...fcn.stateDict().get("classifier.0.weight").shape], [32, 16, 5, 5]);
  assert.equal([...fcn.stateDict().get("classifier.3.weight").shape], [5, 32, 1, 1]);
  assert.ok(clf.at("classifier").at(0) instanceof nn.Linear, "the classifier itself is unchanged");
  sn.noGrad(() => {
    const x = randomInput([2, 3, 26, 26], 1);
    const y = fcn.call(x);
    assert.equal([...y.shape], [2, 5, 1, 1]);
    compare("scores at 26x26", y.data, clf.call(x).data, 1e-5, 1e-6);
    const big = randomInput([2, 3, 34, 34], 2);
    const map = fcn.call(big);
    assert.equal([...map.shape], [2, 5, 3, 3]);
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) {
        const want = clf.call(crop(big, 4 * i, 4 * j, 26)).data;
        const got = Array.from({ length: 10 }, (_, k) => map.data[Math.floor(k / 5) * 45 + (k % 5) * 9 + i * 3 + j]);
        compare(`window (${i}, ${j})`, got, want, 1e-5, 1e-6);
      }
  });
  clf.dispose();
  fcn.dispose();
});

test("convolutionalize LeNet (padded convs): same scores at 28x28, a 4x4 heat map at 40x40, and it trains (gradients reach the converted layers)", () => {
  sn.manualSeed(4);
  const clf = models.lenet().eval();
  const fcn = models.convolutionalize(clf, [1, 28, 28]);
  const x = randomInput([3, 1, 28, 28], 5);
  compare("lenet scores", sn.noGrad(() => fcn.call(x)).data, sn.noGrad(() => clf.call(x)).data, 1e-5, 1e-6);
  fcn.train();
  const map = fcn.call(randomInput([2, 1, 40, 40], 6));
  assert.equal([...map.shape], [2, 10, 4, 4]);
  sn.mean(map).backward();
  const g = fcn.stateDict().get("classifier.0.weight").grad;
  assert.ok(g && g.data.some((v) => v !== 0) && g.data.every(Number.isFinite));
  clf.dispose();
  fcn.dispose();
});

test("fcn(): ResNet-18 turned fully convolutional gives a 1x1 map at its 64x64 training size and a 6x6 map at 224x224; an adaptive pool that does nothing at the training size (torchvision's AlexNet and VGG at 224) is dropped", () => {
  const r = models.fcn({ backbone: "resnet18", classes: 7, inputSize: 64 });
  assert.equal(r.outputShape([1, 3, 64, 64]), [1, 7, 1, 1]);
  assert.equal(r.outputShape([1, 3, 224, 224]), [1, 7, 6, 6]);
  assert.ok(r.at("avgpool") instanceof nn.AvgPool2d, "global pooling becomes a 2x2 stride-1 average pool");
  assert.equal([...r.stateDict().get("fc.weight").shape], [7, 512, 1, 1]);
  r.dispose();
  const clf = new nn.Sequential({ features: nn.sequential(new nn.Conv2d(3, 4, 3, { stride: 2 })), avgpool: new nn.AdaptiveAvgPool2d(5), flatten: new nn.Flatten(), fc: new nn.Linear(100, 3) });
  const f = models.convolutionalize(clf, [3, 11, 11]);
  assert.ok(f.at("avgpool") instanceof nn.Identity);
  assert.equal(f.outputShape([1, 3, 21, 21]), [1, 3, 6, 6]);
  const x = randomInput([2, 3, 11, 11], 20);
  compare("scores", sn.noGrad(() => f.call(x)).data, sn.noGrad(() => clf.call(x)).data, 1e-5, 1e-6);
  clf.dispose();
  f.dispose();
});

test("convolutionalize: what cannot slide is an error that names the layer", () => {
  const g = models.googlenet({ classes: 3, aux: false });
  assert.throws(() => models.convolutionalize(g, [3, 224, 224]), /expects a Sequential classifier/);
  g.dispose();
  const squash = nn.sequential(new nn.Conv2d(1, 2, 3), new nn.AdaptiveAvgPool2d(3), new nn.Flatten(), new nn.Linear(18, 4));
  assert.throws(() => models.convolutionalize(squash, [1, 6, 6]), /AdaptiveAvgPool2d\(output_size=3\) at '1': pools the 4x4 map .* to 3x3, which is no sliding window/);
  assert.throws(() => models.convolutionalize(squash, [1, 2, 2]), /the model does not take \[1,2,2\] inputs/);
  assert.throws(() => models.convolutionalize(nn.sequential(new nn.Conv2d(1, 2, 3)), [1, 6, 6]), /no Flatten/);
  assert.throws(() => models.fcn({ backbone: "lenet5x" }), /unknown model 'lenet5x'/);
  squash.dispose();
});

// ---- U-Net ----

test("U-Net (depth 2, width 8, no batch norm): [2,3,16,16] -> [2,5,16,16], and every parameter gets a finite, non-zero gradient", () => {
  sn.manualSeed(7);
  const m = models.unet({ depth: 2, width: 8, inChannels: 3, classes: 5 });
  const y = m.call(randomInput([2, 3, 16, 16], 8));
  assert.equal([...y.shape], [2, 5, 16, 16]);
  sn.mse_loss(y, sn.zeros([2, 5, 16, 16])).backward();
  for (const [n, p] of m.namedParameters()) assert.ok(p.grad && p.grad.data.every(Number.isFinite) && p.grad.data.some((v) => v !== 0), `gradient of ${n}`);
  assert.throws(() => m.call(randomInput([1, 3, 18, 18], 9)), /Concat\(\) at 'skip\.down\.inner\.skip', input \[1,16,9,9\]: branch outputs \[1,16,9,9\], \[1,16,8,8\] differ outside the channel axis/);
  assert.throws(() => models.unet({ inputSize: 50 }), /unet: inputSize must be a multiple of 2\^depth = 16/);
  m.dispose();
});

// ---- training-mode passes of the small nets ----

/** one training-mode forward and backward with cross-entropy; every parameter must get a finite
 *  gradient, and all but `allowZero` of them a non-zero one */
function trainStep(m, x, classes, { allowZero = 0 } = {}) {
  m.train();
  const y = m.call(x);
  assert.equal([...y.shape], [x.shape[0], classes]);
  const target = sn.tensor(Array.from({ length: x.shape[0] }, (_, i) => i % classes), [x.shape[0]]);
  let loss = sn.cross_entropy(y, target);
  const aux = m.auxLoss?.(target);
  if (aux) loss = sn.add(loss, aux);
  loss.backward();
  const zero = [];
  for (const [n, p] of m.namedParameters()) {
    assert.ok(p.grad && p.grad.data.every(Number.isFinite), `finite gradient of ${n}`);
    if (!p.grad.data.some((v) => v !== 0)) zero.push(n);
  }
  assert.ok(zero.length <= allowZero, `zero gradients: ${zero.join(", ")}`);
  return loss.item();
}

test("CIFAR ResNet-20 (option A and B) and plain-20: a training step on [4,3,32,32] reaches every parameter", () => {
  for (const m of [models.resnet20(), models.resnet20({ shortcut: "B" }), models.plain20()]) {
    const loss = trainStep(m, randomInput([4, 3, 32, 32], 10), 10);
    assert.ok(loss > 0 && loss < 20, `loss ${loss}`);
    m.dispose();
  }
});

test("ResNet-18 at 64x64: a training step reaches every parameter; in eval mode a sample's scores do not depend on the rest of the batch (running statistics)", () => {
  const m = models.resnet18({ classes: 10, inputSize: 64 });
  trainStep(m, randomInput([2, 3, 64, 64], 11), 10);
  m.eval();
  const x = randomInput([3, 3, 64, 64], 12);
  const all = sn.noGrad(() => m.call(x)).toArray();
  const alone = sn.noGrad(() => m.call(sn.tensor(x.data.slice(0, 3 * 64 * 64), [1, 3, 64, 64]))).toArray();
  compare("sample 0 alone and in the batch", alone, all.slice(0, 10), 1e-5, 1e-6);
  m.dispose();
});

test("GoogLeNet at 64x64: training mode runs both auxiliary heads (loss weighted by 0.3, gradients reach them); eval mode skips them", () => {
  sn.manualSeed(13);
  const m = models.googlenet({ classes: 6, inputSize: 64 });
  const x = randomInput([2, 3, 64, 64], 14);
  trainStep(m, x, 6);
  assert.equal(m.auxLogits.map((t) => [...t.shape]), [[2, 6], [2, 6]]);
  const target = sn.tensor([1, 4], [2]);
  const want = 0.3 * (sn.cross_entropy(m.auxLogits[0], target).item() + sn.cross_entropy(m.auxLogits[1], target).item());
  compare("auxLoss", [m.auxLoss(target).item()], [want], 1e-6, 0);
  m.eval();
  const y = sn.noGrad(() => m.call(x));
  assert.equal([...y.shape], [2, 6]);
  assert.equal(m.auxLogits, []);
  assert.is(m.auxLoss(target), null);
  const noAux = models.googlenet({ classes: 6, inputSize: 64, aux: false });
  noAux.loadStateDict(m.stateDict(), { strict: false });
  compare("the same trunk without heads", sn.noGrad(() => noAux.eval().call(x)).data, y.data, 0, 0);
  m.dispose();
  noAux.dispose();
});

test("GoogLeNet trains with fit() and withAuxLoss(): the auxiliary heads' weights move, and only with the auxiliary loss", async () => {
  const g = new sn.Generator(21);
  const data = new sn.Dataset(Float32Array.from({ length: 8 * 3 * 64 * 64 }, () => g.uniform(-1, 1)), [8, 3, 64, 64], Int32Array.from([0, 1, 2, 0, 1, 2, 0, 1]), 3);
  const moved = async (loss) => {
    sn.manualSeed(22);
    const m = models.googlenet({ classes: 3, inputSize: 64 });
    const before = m.stateDict().get("aux1.fc2.weight").toArray();
    await sn.fit(m, data, { epochs: 1, batchSize: 4, optimizer: (params) => new sn.SGD(params, { lr: 0.01 }), metrics: ["loss"], loss: loss?.(m) });
    const after = m.stateDict().get("aux1.fc2.weight").toArray();
    m.dispose();
    return after.some((v, i) => v !== before[i]);
  };
  assert.ok(await moved((m) => m.withAuxLoss()), "with the auxiliary loss the head learns");
  assert.not.ok(await moved(undefined), "without it the head gets no gradient");
});

test("convolutionalize ResNet-18 (batch norm, global pooling): eval scores at 64x64 equal the classifier's; 96x96 gives a 2x2 map", () => {
  const clf = models.resnet18({ classes: 4, inputSize: 64 });
  trainStep(clf, randomInput([2, 3, 64, 64], 15), 4); // running statistics away from 0 and 1
  clf.eval();
  const f = models.convolutionalize(clf, [3, 64, 64]).eval();
  const x = randomInput([2, 3, 64, 64], 16);
  compare("resnet18 scores", sn.noGrad(() => f.call(x)).data, sn.noGrad(() => clf.call(x)).data, 1e-5, 1e-5);
  assert.equal([...sn.noGrad(() => f.call(randomInput([1, 3, 96, 96], 17))).shape], [1, 4, 2, 2]);
  clf.dispose();
  f.dispose();
});

test("AlexNet 2012 (two towers) at 67x67: training step through LRN, grouped convs and dropout", () => {
  const m = models.alexnet2012({ towers: 2, classes: 5, inputSize: 67 });
  trainStep(m, randomInput([2, 3, 67, 67], 18), 5);
  m.dispose();
});

// ---- configs and errors ----

test("config JSON round trip rebuilds the zoo's blocks (ResidualBlock, ZeroPadShortcut, GoogLeNet, Concat levels) with the same names and layers", () => {
  for (const [name, opts] of [["resnet20", {}], ["resnet20", { shortcut: "B" }], ["plain20", {}], ["googlenet", { classes: 10 }], ["unet", { depth: 2, width: 8 }], ["alexnet2012", { towers: 2, classes: 10, inputSize: 67 }]]) {
    const m = sn.createModel(name, opts);
    const json = JSON.parse(JSON.stringify(m.config()));
    const r = nn.moduleFromConfig(json);
    assert.equal(r.namedParameters().map(([n, p]) => [n, [...p.shape]]), m.namedParameters().map(([n, p]) => [n, [...p.shape]]), name);
    assert.equal([...r.stateDict().keys()], [...m.stateDict().keys()], name);
    assert.is(r.toString(), m.toString(), name);
    assert.equal(r.config(), json, name);
    // the rebuilt model with the same weights computes the same function
    if (name !== "googlenet") {
      r.loadStateDict(m.stateDict());
      const size = name === "alexnet2012" ? 67 : 32;
      const x = randomInput([1, name === "unet" ? 1 : 3, size, size], 19);
      compare(`${name} rebuilt`, sn.noGrad(() => r.eval().call(x)).data, sn.noGrad(() => m.eval().call(x)).data, 0, 0);
    }
    m.dispose();
    r.dispose();
  }
});

test("saveModel / loadModel: a zoo model (GoogLeNet's class, residual blocks, option A shortcuts) comes back from its JSON and safetensors files computing the same function", async () => {
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { join } = await import("node:path");
  const { tmpdir } = await import("node:os");
  const dirPath = mkdtempSync(join(tmpdir(), "zoo-"));
  try {
    for (const [name, opts, shape] of [["resnet20", {}, [2, 3, 32, 32]], ["googlenet", { classes: 5, inputSize: 64 }, [2, 3, 64, 64]]]) {
      const m = sn.createModel(name, opts);
      trainStep(m, randomInput(shape, 23), opts.classes ?? 10); // batch-norm statistics away from their start
      m.eval();
      await sn.saveModel(m, dirPath, { name });
      const { model: r } = await sn.loadModel(join(dirPath, name));
      r.eval();
      const x = randomInput(shape, 24);
      compare(`${name} reloaded`, sn.noGrad(() => r.call(x)).data, sn.noGrad(() => m.call(x)).data, 0, 0);
      m.dispose();
      r.dispose();
    }
  } finally {
    rmSync(dirPath, { recursive: true, force: true });
  }
});

test("the plain twin's state dict loads into the residual net (same layers, same names: option A adds no parameters)", () => {
  const p = models.plain20(), r = models.resnet20();
  r.loadStateDict(p.stateDict());
  assert.equal(r.stateDict().get("layer3.2.conv2.weight").toArray(), p.stateDict().get("layer3.2.conv2.weight").toArray());
  p.dispose();
  r.dispose();
});

test("bad options and bad inputs: clear errors naming the model or the layer and the shapes", () => {
  assert.throws(() => sn.createModel("resnet18", { clases: 10 }), /^resnet18: unknown option 'clases' \(did you mean 'classes'\?\); resnet18 takes classes, inChannels, inputSize, depth$/);
  assert.throws(() => models.cifarResnet({ depth: 21 }), /resnet21: depth must be 6n\+2/);
  assert.throws(() => models.resnet({ depth: 19 }), /resnet: depth must be one of 18, 34, 50, 101, 152, got 19/);
  assert.throws(() => models.resnet18({ depth: 50 }), /resnet18: depth is 18/);
  assert.throws(() => models.plain20({ shortcut: "B" }), /plain20: a plain net has no shortcuts/);
  assert.throws(() => models.resnet20({ shortcut: "C" }), /shortcut must be "A" \(identity, zero padding\) or "B" \(projection\), got "C"/);
  assert.throws(() => models.vgg({ config: "F" }), /vgg: config must be one of A, A-LRN, B, C, D, E, got "F"/);
  assert.throws(() => models.vgg16({ batchNorm: true }), /vgg16: batchNorm is fixed by the name/);
  assert.throws(() => models.alexnet({ inputSize: 50 }), /alexnet: inputSize 50 is too small/);
  assert.throws(() => models.googlenet({ inputSize: 16 }), /googlenet: inputSize 16 is too small/);
  assert.throws(() => models.alexnet2012({ towers: 3 }), /towers must be 1 or 2/);
  const m = models.resnet20();
  assert.throws(() => m.call(sn.zeros([2, 1, 32, 32])), /Conv2d\(3, 16, kernel_size=3, padding=1, bias=False\) at 'conv1', input \[2,1,32,32\]: expected 3 input channels, got 1/);
  m.dispose();
  const block = new models.ResidualBlock([["conv1", new nn.Conv2d(4, 8, 3, { padding: 1 })]]);
  assert.throws(() => block.call(sn.zeros([1, 4, 5, 5])), /ResidualBlock\(\), input \[1,4,5,5\]: the body gives \[1,8,5,5\] but the shortcut gives \[1,4,5,5\]; a block that changes the shape needs a downsample/);
  assert.throws(() => sn.summary(block, [4, 5, 5]), /the body gives \[1,8,5,5\] but the shortcut gives \[1,4,5,5\]/);
  block.dispose();
});

test("docs/zoo.md's examples run as written (with a small dataset and a torchvision-named ResNet-18 file)", async () => {
  const doc = readFileSync(new URL("../docs/zoo.md", import.meta.url), "utf8");
  const blocks = [...doc.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.is(blocks.length, 4);
  const g = new sn.Generator(25);
  const data = new sn.Dataset(Float32Array.from({ length: 4 * 3 * 64 * 64 }, () => g.uniform(-1, 1)), [4, 3, 64, 64], Int32Array.from([0, 1, 2, 3]), 10);
  const r18 = models.resnet18();
  const fs = { readFileSync: (f) => (f === "resnet18.safetensors" ? sn.weightsToSafetensors(r18) : assert.unreachable(f)) };
  const logs = [];
  const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
  for (const code of blocks) await new AsyncFunction("sn", "data", "fs", "console", code)(sn, data, fs, { log: (s) => logs.push(String(s)) });
  assert.match(logs.join("\n"), /Parameters: 25,557,032/);
  r18.dispose();
});

test.after(() => sn.dispose());
test.run();
