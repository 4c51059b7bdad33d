// Weight packs kept across calls (src/ops/packs.ts): an unchanged weight is packed once; every
// way the API writes a weight bumps its version, so the next call repacks and its output
// changes; the packs are freed with the weight. Runs the three pack layouts: im2col (packed W),
// the input gradient's flipped W, and Winograd's transformed filters (forward and flipped).
// The layer's parameters are frozen (requiresGrad false) and the input needs a gradient, so
// forward and backward both use kept packs; a weight being trained keeps none (last test).
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { pseudoValues, identical } from "./helpers.mjs";

const pseudo = pseudoValues;
const same = identical;

test.before(async () => {
  await sn.init({ threads: 2 });
});

// [what, conv3x3, channels in, out, size]: 32 channels on 16x16 give 64 tiles of 2x2 (Winograd
// F(2,3) by default); 3 input channels give im2col
const layers = [
  ["Winograd", "auto", 32, 32, 16],
  ["im2col", "auto", 3, 16, 12],
  ["im2col, 3x3 forced", "im2col", 32, 32, 16],
];

for (const [what, mode, C, O, S] of layers) {
  /** A conv layer and an input that needs a gradient (so backward runs the input gradient). */
  function setup() {
    sn.engine().conv3x3 = mode;
    const conv = new sn.nn.Conv2d(C, O, 3, { padding: 1 });
    conv.requiresGrad_(false);
    const x = sn.tensor(pseudo(2 * C * S * S, 1), [2, C, S, S]).requireGrad();
    /** forward and backward of sum(conv(x)); returns the output and x's gradient */
    const run = () => {
      x.grad = null;
      const y = conv.forward(x);
      sn.sum(y).backward();
      return { y: y.toArray(), dx: x.grad.toArray() };
    };
    return { conv, x, run };
  }

  test(`${what}: an unchanged weight is packed once, and gives the same bits`, () => {
    const { conv, run } = setup();
    const first = run();
    const packs = sn.engine().weightPacks;
    const again = run();
    assert.is(sn.engine().weightPacks, packs, "no pack built for an unchanged weight");
    assert.ok(same(first.y, again.y) && same(first.dx, again.dx), "same output and input gradient");
    assert.ok(conv.weight.storage.packs.size >= 1, "the packs are kept with the weight");
    sn.engine().conv3x3 = "auto";
  });

  /** Every write path of the API, each given the layer; each must change the next output. */
  const writes = [
    ["taking .data", (conv) => (conv.weight.data[5] += 0.25)],
    ["a reshape's .data", (conv) => (conv.weight.reshape([-1]).data[7] -= 0.5)],
    ["a detached copy's .data", (conv) => (conv.weight.detach().data[3] *= -2)],
    ["loadStateDict", (conv) => {
      const v = conv.stateDict().get("weight").toArray();
      v[11] += 1;
      conv.loadStateDict({ weight: sn.tensor(v, [...conv.weight.shape]), bias: conv.bias });
    }],
    ["an SGD step", (conv, run) => {
      const opt = new sn.SGD(conv.parameters(), { lr: 0.1 });
      train(conv, run, opt);
    }],
    ["an Adam step", (conv, run) => {
      const opt = new sn.Adam(conv.parameters(), { lr: 0.1 });
      train(conv, run, opt);
    }],
    ["an RMSprop step", (conv, run) => {
      const opt = new sn.RMSprop(conv.parameters(), { lr: 0.1 });
      train(conv, run, opt);
    }],
    ["nn.init.kaimingNormal", (conv) => sn.nn.init.kaimingNormal(conv.weight)],
    ["nn.init.constant", (conv) => sn.nn.init.constant(conv.weight, 0.01)],
    ["fuseBatchNorm", (conv) => {
      const bn = new sn.nn.BatchNorm2d(conv.outChannels);
      bn.weight.data.fill(3);
      sn.fuseBatchNorm(new sn.Sequential(conv, bn).eval());
    }],
  ];

  for (const [how, write] of writes)
    test(`${what}: a weight changed by ${how} is repacked and changes the next output`, () => {
      const { conv, run } = setup();
      const before = run();
      const packs = sn.engine().weightPacks;
      const version = conv.weight.version;
      write(conv, run);
      assert.ok(conv.weight.version > version, "the version was bumped");
      const after = run();
      assert.ok(sn.engine().weightPacks > packs, "repacked");
      assert.not.ok(same(before.y, after.y), "output changed");
      assert.not.ok(same(before.dx, after.dx), "input gradient changed");
      // and it is the output of the new weight: a fresh copy of it (never packed) agrees
      const fresh = sn.conv2d(sn.tensor(setupInput(C, S), [2, C, S, S]), sn.tensor(conv.weight.toArray(), [...conv.weight.shape]), conv.bias, { padding: 1 });
      assert.ok(same(fresh.toArray(), after.y), "the same bits as an unpacked copy of the new weight");
      sn.engine().conv3x3 = "auto";
    });

  test(`${what}: the packs are freed with the weight, and one per layout is kept`, () => {
    const { conv, run } = setup();
    run();
    const n = conv.weight.storage.packs.size;
    conv.weight.data[0] += 1;
    run();
    assert.is(conv.weight.storage.packs.size, n, "the stale pack was replaced, not kept beside the new one");
    conv.weight.dispose();
    assert.is(conv.weight.storage.packs.size, 0, "freed with the weight");
    sn.engine().conv3x3 = "auto";
  });
}

/** One training step of the layer: its parameters need gradients for it, then frozen again. */
function train(conv, run, opt) {
  conv.requiresGrad_(true);
  for (const p of conv.parameters()) p.grad = null;
  run();
  opt.step();
  conv.requiresGrad_(false);
}

function setupInput(C, S) {
  return pseudo(2 * C * S * S, 1);
}

test("a weight being trained keeps no pack: each call packs and frees (a training loop's memory as without the cache)", () => {
  const conv = new sn.nn.Conv2d(32, 32, 3, { padding: 1 });
  const x = sn.tensor(pseudo(2 * 32 * 16 * 16, 1), [2, 32, 16, 16]).requireGrad();
  for (let i = 0; i < 2; i++) {
    const packs = sn.engine().weightPacks;
    sn.sum(conv.forward(x)).backward();
    assert.is(sn.engine().weightPacks, packs + 2, "forward and input gradient packed again");
    assert.is(conv.weight.storage.packs.size, 0, "nothing kept");
  }
  // in inference (noGrad) the same weight's pack is kept
  sn.noGrad(() => conv.forward(x));
  const packs = sn.engine().weightPacks;
  sn.noGrad(() => conv.forward(x));
  assert.is(sn.engine().weightPacks, packs);
  assert.is(conv.weight.storage.packs.size, 1);
});

test("reading a weight (toArray, item, read) does not repack", async () => {
  const w = sn.tensor(pseudo(32 * 32 * 9, 2), [32, 32, 3, 3]);
  const x = sn.tensor(pseudo(32 * 16 * 16, 3), [1, 32, 16, 16]);
  sn.conv2d(x, w, null, { padding: 1 });
  const packs = sn.engine().weightPacks, version = w.version;
  w.toArray();
  await w.read();
  sn.conv2d(x, w, null, { padding: 1 });
  assert.is(w.version, version);
  assert.is(sn.engine().weightPacks, packs);
});

test.run();
