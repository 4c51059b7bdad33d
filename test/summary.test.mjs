// summary(): shapes, parameter counts, multiply-adds and receptive fields against the
// lectures' worked examples.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
const { nn } = sn;

test.before(async () => {
  await sn.init({ threads: 1 });
});

test("ten 5x5 filters, pad 2, on 3x32x32: 10x32x32, 760 parameters, 768,000 multiply-adds (CPSC 425 L20)", () => {
  const s = sn.summary(new nn.Conv2d(3, 10, 5, { padding: 2 }), [3, 32, 32]);
  assert.equal(s.outputShape, [1, 10, 32, 32]);
  assert.is(s.totalParams, 760);
  assert.is(s.rows[0].params, 760);
  assert.is(s.totalMacs, 768000);
  assert.equal(s.receptiveField, [5, 5]);
});

test("the three conv layers on 32x32x3 have 608 / 3,216 / 544 parameters (SIBGRAPI 2017)", () => {
  const m = nn.sequential(new nn.Conv2d(3, 8, 5), new nn.Conv2d(8, 16, 5), new nn.Conv2d(16, 32, 1));
  const s = sn.summary(m, [3, 32, 32]);
  assert.equal(s.rows.map((r) => r.params), [608, 3216, 544]);
  assert.equal(s.rows.map((r) => r.outputShape), [[1, 8, 28, 28], [1, 16, 24, 24], [1, 32, 24, 24]]);
  assert.is(s.totalParams, 608 + 3216 + 544);
  // multiply-adds: outputs x (in_channels x k x k)
  assert.equal(s.rows.map((r) => r.macs), [8 * 28 * 28 * 75, 16 * 24 * 24 * 200, 32 * 24 * 24 * 16]);
});

test("the lecture's LeNet table: output sizes and weight sizes row by row (CPSC 425 L20)", () => {
  const s = sn.summary(sn.models.lenet(), [1, 28, 28]);
  // Layer, output size, weight size exactly as the lecture's table lists them. The lecture writes
  // a Linear's weight as in x out; PyTorch (and we) store it as [out, in].
  const table = [
    ["Conv2d", [20, 28, 28], [20, 1, 5, 5]],
    ["ReLU", [20, 28, 28], null],
    ["MaxPool2d", [20, 14, 14], null],
    ["Conv2d", [50, 14, 14], [50, 20, 5, 5]],
    ["ReLU", [50, 14, 14], null],
    ["MaxPool2d", [50, 7, 7], null],
    ["Flatten", [2450], null],
    ["Linear", [500], [2450, 500]],
    ["ReLU", [500], null],
    ["Linear", [10], [500, 10]],
  ];
  assert.is(s.rows.length, table.length);
  s.rows.forEach((r, i) => {
    const [type, out, w] = table[i];
    assert.ok(r.layer.startsWith(type + "("), `row ${i}: ${r.layer} is not a ${type}`);
    assert.equal(r.outputShape.slice(1), out, `row ${i} output`);
    const weight = r.weightShape && r.layer.startsWith("Linear") ? [...r.weightShape].reverse() : r.weightShape;
    assert.equal(weight, w, `row ${i} weight`);
  });
  assert.is(s.totalParams, 520 + 25050 + 1225500 + 5010);
  assert.is(s.totalMacs, 20 * 784 * 25 + 50 * 196 * 500 + 2450 * 500 + 500 * 10);
  // receptive fields: 5, 6 after the pool, 6 + 4*2 = 14, 16 after the pool; the first Linear
  // sees the whole 7x7 map: 16 + 6*4 = 40
  assert.equal(s.rows.map((r) => r.rf[0]), [5, 5, 6, 14, 14, 16, 16, 40, 40, 40]);
});

test("LeNet-5 (1998): C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164 = 60,000; output Linear 850", () => {
  const s = sn.summary(sn.models.lenet5(), [1, 32, 32]);
  const params = Object.fromEntries(s.rows.filter((r) => r.params).map((r) => [r.name, r.params]));
  assert.equal(params, { c1: 156, s2: 12, c3: 1516, s4: 32, c5: 48120, f6: 10164, output: 850 });
  assert.is(s.totalParams - params.output, 60000);
  assert.is(s.totalParams, 60850);
  const shapes = Object.fromEntries(s.rows.map((r) => [r.name, r.outputShape.slice(1)]));
  assert.equal(shapes.c1, [6, 28, 28]);
  assert.equal(shapes.s2, [6, 14, 14]);
  assert.equal(shapes.c3, [16, 10, 10]);
  assert.equal(shapes.s4, [16, 5, 5]);
  assert.equal(shapes.c5, [120, 1, 1]);
  // the paper counts 151,600 connections for C3: 150,000 multiply-adds plus 1,600 biases
  assert.is(s.rows.find((r) => r.name === "c3").macs, 150000);
  // MNIST's 28x28 is padded to 32 by C1
  assert.equal(sn.summary(sn.models.lenet5({ inputSize: 28 }), [1, 28, 28]).outputShape, [1, 10]);
});

test("three stacked 3x3 convs see 7x7 (VGG's argument); stride and dilation grow the field", () => {
  const three = nn.sequential(new nn.Conv2d(1, 1, 3, { padding: 1 }), new nn.Conv2d(1, 1, 3, { padding: 1 }), new nn.Conv2d(1, 1, 3, { padding: 1 }));
  assert.equal(sn.summary(three, [1, 32, 32]).receptiveField, [7, 7]);
  const strided = nn.sequential(new nn.Conv2d(1, 1, 3, { stride: 2 }), new nn.Conv2d(1, 1, 3));
  assert.equal(sn.summary(strided, [1, 32, 32]).receptiveField, [7, 7]);
  const dilated = nn.sequential(new nn.Conv2d(1, 1, 3, { dilation: 2 }));
  assert.equal(sn.summary(dilated, [1, 32, 32]).receptiveField, [5, 5]);
  const gap = nn.sequential(new nn.Conv2d(1, 4, 3), new nn.GlobalAvgPool2d());
  assert.equal(sn.summary(gap, [1, 10, 10]).receptiveField, [10, 10]);
});

test("branches: Residual and Concat rows, widest receptive field, channel sum", () => {
  const block = new nn.Residual(nn.sequential(new nn.Conv2d(4, 4, 3, { padding: 1 }), new nn.ReLU(), new nn.Conv2d(4, 4, 3, { padding: 1 })));
  const s = sn.summary(block, [4, 8, 8]);
  assert.equal(s.rows.map((r) => r.name), ["body.0", "body.1", "body.2", ""]);
  assert.equal(s.outputShape, [1, 4, 8, 8]);
  assert.equal(s.receptiveField, [5, 5]);
  const inc = new nn.Concat([new nn.Conv2d(3, 2, 1), new nn.Conv2d(3, 5, 3, { padding: 1 }), nn.sequential(new nn.MaxPool2d(3, { stride: 1, padding: 1 }), new nn.Conv2d(3, 1, 1))]);
  const t = sn.summary(inc, [3, 6, 6]);
  assert.equal(t.outputShape, [1, 8, 6, 6]);
  assert.equal(t.receptiveField, [3, 3]);
  assert.is(t.totalParams, 8 + 140 + 4);
});

test("a layer that does not fit is an error naming it, its path and the shapes", () => {
  assert.throws(() => sn.summary(sn.models.lenet(), [3, 28, 28]), /Conv2d\(1, 20, kernel_size=5, padding=2\) at 'features\.0', input \[1,3,28,28\]: expected 1 input channels, got 3/);
  assert.throws(() => sn.summary(sn.models.lenet(), [1, 32, 32]), /Linear\(in_features=2450, out_features=500\) at 'classifier\.0', input \[1,3200\]: expected 2450 input features, got 3200/);
  const bad = new nn.Residual(new nn.Conv2d(4, 8, 3, { padding: 1 }));
  assert.throws(() => sn.summary(bad, [4, 8, 8]), /Residual.*body gives \[1,8,8,8\] but the shortcut gives \[1,4,8,8\]/);
  assert.throws(() => sn.summary(nn.sequential(new nn.MaxPool2d(5)), [1, 3, 3]), /MaxPool2d.*height 3 with padding 0 is smaller than the window 5/);
});

test("the printed table lists every layer and the totals", () => {
  const text = String(sn.summary(sn.models.lenet(), [1, 28, 28]));
  assert.match(text, /features\.3\s+Conv2d\(20, 50, kernel_size=5, padding=2\)\s+50x14x14\s+25,050\s+4,900,000\s+14x14/);
  assert.match(text, /Parameters: 1,256,080/);
  assert.match(text, /Mult-adds: 6,522,000/);
});

/** A module of one's own: children connected by its forward(), with plain ops between them. */
class Net extends sn.Module {
  constructor() {
    super();
    this.conv = this.registerModule("conv", new nn.Conv2d(1, 4, 3, { padding: 1 }));
    this.pool = this.registerModule("pool", new nn.MaxPool2d(2));
    this.fc = this.registerModule("fc", new nn.Linear(4 * 14 * 14, 10));
  }
  forward(x) {
    const h = this.pool.call(sn.relu(this.conv.call(x)));
    return this.fc.call(sn.flatten(sn.add(h, h)));
  }
}

test("summary of a module of one's own (children wired by its forward) traces it: rows, shapes, totals", () => {
  const live = sn.engine().memoryStats().live;
  const net = new Net();
  net.train();
  const s = sn.summary(net, [1, 28, 28]);
  assert.equal(s.rows.map((r) => [r.name, r.outputShape]), [["conv", [1, 4, 28, 28]], ["pool", [1, 4, 14, 14]], ["fc", [1, 10]]]);
  assert.equal(s.outputShape, [1, 10]);
  assert.is(s.totalMacs, 4 * 9 * 28 * 28 + 784 * 10);
  assert.equal(s.rows[1].rf, [4, 4]);
  assert.ok(net.modules().every((m) => m.training), "modes put back");
  assert.equal(net.outputShape([2, 1, 28, 28]), [2, 10]);
  // inside a container, and one inside another
  class Outer extends sn.Module {
    constructor() {
      super();
      this.a = this.registerModule("a", new Net());
      this.b = this.registerModule("b", new nn.ReLU());
    }
    forward(x) {
      return this.b.call(this.a.call(x));
    }
  }
  for (const [m, names] of [[new nn.Sequential(new Net(), new nn.Softmax(1)), ["0.conv", "0.pool", "0.fc", "1"]], [new Outer(), ["a.conv", "a.pool", "a.fc", "b"]]]) {
    const r = sn.summary(m, [1, 28, 28]);
    assert.equal(r.rows.map((x) => x.name), names);
    assert.equal(r.outputShape, [1, 10]);
    m.dispose();
  }
  net.dispose();
  assert.is(sn.engine().memoryStats().live, live, "the trace freed what it made");
  // a wrong input names the layer
  assert.throws(() => sn.summary(new Net(), [3, 28, 28]), /summary: .*Conv2d\(1, 4.*expected 1 input channels?, got 3/);
});

test.after(() => sn.dispose());
test.run();
