// Importing PyTorch weights (torchvision's state_dict names) through safetensors files, and the
// errors a wrong or damaged file gives. The fixtures are made by tools/fixtures/gen_models.py:
// - <model>.recipe.safetensors: how every tensor of torchvision's state dict was filled (a counter
//   hash, repeated here bit for bit) and torchvision's float64 eval-mode logits and probes (for
//   the 2012 AlexNet, which torchvision lacks, those of a PyTorch build of the paper's net);
// - cifar_resnet8 / unet_small: real state dicts saved from PyTorch, with expected outputs.
//
// Tolerance: torchvision's outputs are computed in float64 from the same float32 weights, so
// the difference is our float32 rounding through up to 50 layers. We allow 1e-4 of the largest
// |logit| (the scale the logits live on; near-zero logits have no relative error of their own);
// PyTorch's own float32 run is within 1e-6..4e-6 of it (written in each fixture's metadata).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import * as sn from "../dist/index.js";
import { compare } from "./helpers.mjs";
const { nn } = sn;

const TOL = 1e-4;
const dir = new URL("./fixtures/models/", import.meta.url);
const read = (file) => sn.parseSafetensors(readFileSync(new URL(file, dir)), file);

test.before(async () => {
  await sn.init({ threads: 2 });
});

/** gen_models.py's recipe_values: float32 offset + scale * v, v = ((h >> 8) - 2^23) / 2^23 with h
 *  Wellons' lowbias32 hash of seed + i * 0x9E3779B9 (mod 2^32). */
export function recipeValues(seed, n, offset, scale) {
  const out = new Float32Array(n);
  const off = Math.fround(offset), sc = Math.fround(scale);
  for (let i = 0; i < n; i++) {
    let x = (seed + Math.imul(i, 0x9e3779b9)) >>> 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d);
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b);
    x ^= x >>> 16;
    // both sums are exact in float64 (at most 51 significant bits), so storing into the
    // Float32Array rounds once, as float32 arithmetic does
    out[i] = off + Math.fround(sc * (((x >>> 8) - 8388608) / 8388608));
  }
  return out;
}

test("the recipe generator repeats gen_models.py's numbers (hash of 0..3 from seed 1, and a scaled, shifted draw)", () => {
  // from numpy: recipe_values(1, 4, 0, 1) and recipe_values(0x2545F491, 3, 1, 0.5)
  assert.equal(Array.from(recipeValues(1, 4, 0, 1)), Array.from(Float32Array.of(...recipeRef.a)));
  assert.equal(Array.from(recipeValues(0x2545f491, 3, 1, 0.5)), Array.from(Float32Array.of(...recipeRef.b)));
});

/** max |got - want| over the largest |want|, and where */
function relErr(got, want) {
  let scale = 0, worst = 0, at = -1;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= worst)) [worst, at] = [e, i];
  }
  return { rel: worst / scale, worst, at, scale };
}

function within(what, got, want, tol = TOL) {
  assert.is(got.length, want.length, `${what}: ${got.length} values, expected ${want.length}`);
  const e = relErr(got, want);
  assert.ok(e.rel <= tol, `${what}: element ${e.at}: ${got[e.at]} vs ${want[e.at]}: |diff| ${e.worst.toExponential(2)} is ${e.rel.toExponential(2)} of the scale ${e.scale.toPrecision(4)} (allowed ${tol})`);
  return e;
}

/** per-sample, per-channel means of [N, C, H, W] (gen_models.py's probe_means) */
function channelMeans(t) {
  const [N, C, H, W] = t.shape;
  const d = t.data, out = new Float64Array(N * C), P = H * W;
  for (let i = 0; i < N * C; i++) {
    let s = 0;
    for (let p = 0; p < P; p++) s += d[i * P + p];
    out[i] = s / P;
  }
  return out;
}

/** torchvision's state dict, filled by the recipe, as the bytes of a safetensors file */
function recipeFile(recipe) {
  const tensors = new Map(recipe.map(([name, shape, seed, off, scale]) => [name, { shape, data: recipeValues(seed, shape.reduce((a, b) => a * b, 1), off, scale) }]));
  return sn.serializeSafetensors(tensors, { format: "pt" });
}

const recipeRef = JSON.parse(readFileSync(new URL("recipe_check.json", dir), "utf8"));

for (const name of ["resnet18", "resnet50", "vgg11", "alexnet", "googlenet", "alexnet2012"]) {
  test(`${name}: ${name === "alexnet2012" ? "the PyTorch build's" : "torchvision's"} state dict (filled by the recipe) through a safetensors file gives its eval-mode logits and inner maps within ${TOL} of the logit scale`, () => {
    const fx = read(`${name}.recipe.safetensors`);
    const recipe = JSON.parse(fx.metadata.recipe);
    const [inShape, inSeed, inOff, inScale] = JSON.parse(fx.metadata.input);
    const probes = JSON.parse(fx.metadata.probes);
    const model = sn.createModel(name, JSON.parse(fx.metadata.options));
    try {
      sn.loadWeights(model, recipeFile(recipe), { what: `${name} weights` });
      model.eval();
      const x = sn.tensor(recipeValues(inSeed, inShape.reduce((a, b) => a * b, 1), inOff, inScale), inShape);
      const seen = {};
      const paths = new Set(Object.values(probes));
      const logits = sn.noGrad(() =>
        nn.withForwardHook(
          (m, _i, y) => {
            if (paths.has(m.path())) seen[m.path()] = y;
          },
          () => model.call(x),
        ),
      );
      const e = within(`${name} logits`, logits.data, fx.tensors.get("logits").data);
      const report = [`logits ${e.rel.toExponential(1)}`];
      for (const [label, path] of Object.entries(probes)) {
        const want = fx.tensors.get(label).data;
        // GoogLeNet's auxiliary heads are skipped in eval mode: run them on the tapped map
        const got = label.startsWith("aux") ? sn.noGrad(() => model.namedModules().find(([n]) => n === label)[1].call(seen[path])).data : channelMeans(seen[path]);
        report.push(`${label} ${within(`${name} ${label}`, got, want).rel.toExponential(1)}`);
      }
      console.log(`  ${name}: max error / scale: ${report.join(", ")} (torch float32: ${fx.metadata.torch_float32_max_error} of ${fx.metadata.logit_scale})`);
      x.dispose();
    } finally {
      model.dispose();
    }
  });
}

/** a real state dict saved from PyTorch: load the file from disk, then compare eval-mode output,
 *  one training-mode step's output, loss, gradients and running statistics with PyTorch's */
function realModel(name, build, lossFn) {
  test(`${name}: a state dict saved by PyTorch (int64 num_batches_tracked included) loads from its file; eval output, then training-mode output, loss, gradients and running statistics match PyTorch within ${TOL} of their scales`, () => {
    const path = new URL(`${name}.safetensors`, dir);
    const file = read(`${name}.safetensors`);
    const ex = read(`${name}.expect.safetensors`);
    const model = build();
    try {
      sn.loadWeights(model, readFileSync(path), { what: `${name}.safetensors` });
      const sd = model.stateDict();
      const nbt = [...sd].find(([k]) => k.endsWith("num_batches_tracked"));
      assert.is(file.tensors.get(nbt[0]).dtype, "I64");
      assert.is(nbt[1].item(), file.tensors.get(nbt[0]).data[0]);
      assert.ok(nbt[1].item() > 0, "PyTorch counted its batches");
      const get = (k) => ex.tensors.get(k);
      const x = sn.tensor(get("input").data, get("input").shape);
      model.eval();
      const report = [`eval ${within(`${name} eval output`, sn.noGrad(() => model.call(x)).data, get("eval").data).rel.toExponential(1)}`];
      // the running statistics before the step, to see that the step moved them
      const before = new Map([...ex.tensors.keys()].filter((k) => k.startsWith("after.")).map((k) => [k, sd.get(k.slice(6)).toArray()]));
      model.train();
      const y = model.call(x);
      report.push(`train ${within(`${name} training-mode output`, y.data, get("train").data).rel.toExponential(1)}`);
      const loss = lossFn(y, get);
      within(`${name} loss`, [loss.item()], get("loss").data);
      loss.backward();
      const params = new Map(model.namedParameters());
      for (const [k, t] of ex.tensors) {
        if (k.startsWith("grad.")) report.push(`${k} ${within(`${name} ${k}`, params.get(k.slice(5)).grad.data, t.data).rel.toExponential(1)}`);
        if (k.startsWith("after.")) {
          report.push(`${k} ${within(`${name} ${k}`, sd.get(k.slice(6)).data, t.data).rel.toExponential(1)}`);
          assert.ok(relErr(before.get(k), t.data).rel > 100 * TOL, `${k}: the training step moves the statistic`);
        }
      }
      assert.ok(report.length > 4, "the fixture has gradients and statistics to compare");
      console.log(`  ${name}: max error / scale: ${report.join(", ")}`);
    } finally {
      model.dispose();
    }
  });
}

realModel("cifar_resnet8", () => sn.createModel("cifar_resnet", { depth: 8 }), (y, get) => sn.cross_entropy(y, sn.tensor(get("target").data, get("target").shape)));
realModel("unet_small", () => sn.createModel("unet", { depth: 2, width: 8, batchNorm: true, inChannels: 3, classes: 5 }), (y, get) => sn.mse_loss(y, sn.tensor(get("target").data, get("target").shape)));

// ---- wrong and damaged files ----

/** the real CIFAR ResNet-8 file's tensors, changed by fn, as a file again */
function edited(fn) {
  const t = new Map([...read("cifar_resnet8.safetensors").tensors].map(([k, v]) => [k, { shape: v.shape, data: v.data }]));
  fn(t);
  return sn.serializeSafetensors(t);
}

function loadInto(model, bytes) {
  sn.loadWeights(model, bytes, { what: "weights.safetensors" });
}

test("a tensor of the wrong shape: the error names it and both shapes, and nothing is loaded", () => {
  const m = sn.createModel("cifar_resnet", { depth: 8 });
  const before = m.stateDict().get("conv1.weight").toArray();
  const bytes = edited((t) => t.set("fc.weight", { shape: [10, 32], data: new Float32Array(320) }));
  assert.throws(() => loadInto(m, bytes), /'fc\.weight' has shape \[10,32\] in the state dict but \[10,64\] in the model/);
  assert.equal(m.stateDict().get("conv1.weight").toArray(), before);
  // the same file for a model with 100 classes
  const m100 = sn.createModel("cifar_resnet", { depth: 8, classes: 100 });
  assert.throws(() => loadInto(m100, edited(() => {})), /'fc\.weight' has shape \[10,64\] in the state dict but \[100,64\] in the model/);
  m.dispose();
  m100.dispose();
});

test("a missing tensor and an unexpected one (an option-B file for an option-A net): errors name them", () => {
  const m = sn.createModel("cifar_resnet", { depth: 8 });
  assert.throws(() => loadInto(m, edited((t) => t.delete("layer2.0.bn1.running_var"))), /missing 'layer2\.0\.bn1\.running_var'/);
  const optionB = edited((t) => t.set("layer2.0.downsample.0.weight", { shape: [32, 16, 1, 1], data: new Float32Array(512) }));
  assert.throws(() => loadInto(m, optionB), /unexpected 'layer2\.0\.downsample\.0\.weight'/);
  // non-strict loading takes what fits and says what it left out
  assert.equal(sn.loadWeights(m, optionB, { strict: false }), { missing: [], unexpected: ["layer2.0.downsample.0.weight"] });
  const b = sn.createModel("cifar_resnet", { depth: 8, shortcut: "B" });
  assert.throws(() => loadInto(b, edited(() => {})), /missing 'layer2\.0\.downsample\.0\.weight', 'layer2\.0\.downsample\.1\.weight'/);
  m.dispose();
  b.dispose();
});

test("damaged files: bad header length, header not JSON, truncated data, data that does not fit the shape, an unknown dtype; each error says which", () => {
  const good = edited(() => {});
  const m = sn.createModel("cifar_resnet", { depth: 8 });
  const hlen = Number(new DataView(good.buffer, good.byteOffset).getBigUint64(0, true));
  const withLength = (n) => {
    const b = good.slice();
    new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
    return b;
  };
  assert.throws(() => loadInto(m, good.subarray(0, 5)), /weights\.safetensors: too short \(5 bytes\)/);
  assert.throws(() => loadInto(m, withLength(good.length)), /weights\.safetensors: bad header: length \d+ is past the end of the file/);
  assert.throws(() => loadInto(m, withLength(hlen - 10)), /weights\.safetensors: bad header: not JSON/);
  assert.throws(() => loadInto(m, good.subarray(0, good.length - 8)), /tensor 'fc\.bias': data \[\d+, \d+\) is past the end of the file \(truncated\?\)/);
  const header = JSON.parse(new TextDecoder().decode(good.subarray(8, 8 + hlen)));
  const rewrite = (fn) => {
    fn(header);
    const h = new TextEncoder().encode(JSON.stringify(header).padEnd(hlen, " "));
    assert.ok(h.length === hlen, "the edited header fits in place");
    const b = good.slice();
    b.set(h, 8);
    return b;
  };
  const saved = JSON.stringify(header);
  assert.throws(() => loadInto(m, rewrite((h) => (h["layer1.0.conv2.weight"].shape = [16, 16, 3, 2]))), /tensor 'layer1\.0\.conv2\.weight': shape \[16,16,3,2\] of F32 needs 6144 bytes, data has 9216/);
  Object.assign(header, JSON.parse(saved));
  assert.throws(() => loadInto(m, rewrite((h) => (h["bn1.weight"].dtype = "C64"))), /tensor 'bn1\.weight': dtype C64 is not supported \(F32, F64, F16, BF16/);
  Object.assign(header, JSON.parse(saved));
  assert.throws(() => loadInto(m, rewrite((h) => (h["bn1.weight"].dtype = "F16"))), /tensor 'bn1\.weight': shape \[16\] of F16 needs 32 bytes, data has 64/);
  m.dispose();
});

test("safetensors files in half precision (F16, BF16) and integer types load as float32, bit patterns written by hand", () => {
  // [name, dtype, bytes per element, little-endian element bits, the values they stand for]
  const cases = [
    ["half", "F16", 2, [0x3e00, 0xc000, 0x0001, 0x0400, 0x7c00, 0xfc00, 0x3555, 0x0000, 0x8000], [1.5, -2, 2 ** -24, 2 ** -14, Infinity, -Infinity, 0.333251953125, 0, -0]],
    ["bf16", "BF16", 2, [0x3fc0, 0xc000, 0x3eab, 0x7f80, 0x0001], [1.5, -2, 0.333984375, Infinity, 2 ** -133]],
    ["i32", "I32", 4, [7, -3 >>> 0, 0x7fffffff], [7, -3, 2147483647]],
    ["u8", "U8", 1, [0, 200, 255], [0, 200, 255]],
  ];
  const header = {}, chunks = [];
  let off = 0;
  for (const [name, dtype, size, bits] of cases) {
    const b = new Uint8Array(bits.length * size);
    bits.forEach((v, i) => { for (let k = 0; k < size; k++) b[i * size + k] = (v >>> (8 * k)) & 255; });
    header[name] = { dtype, shape: [bits.length], data_offsets: [off, off + b.length] };
    chunks.push(b);
    off += b.length;
  }
  // an odd header length puts the data at odd byte offsets, as files may
  const h = new TextEncoder().encode(JSON.stringify(header) + " ");
  const file = new Uint8Array(8 + h.length + off);
  new DataView(file.buffer).setBigUint64(0, BigInt(h.length), true);
  file.set(h, 8);
  let at = 8 + h.length;
  for (const c of chunks) (file.set(c, at), (at += c.length));
  const t = sn.parseSafetensors(file, "mixed.safetensors").tensors;
  for (const [name, dtype, , , values] of cases) {
    assert.is(t.get(name).dtype, dtype);
    assert.equal(Array.from(t.get(name).data), values.map((v) => Math.fround(v)), name);
  }
  // NaN in both half formats
  for (const [dtype, nan] of [["F16", new Uint8Array([0x01, 0x7e])], ["BF16", new Uint8Array([0xc1, 0x7f])]]) {
    const hh = new TextEncoder().encode(JSON.stringify({ x: { dtype, shape: [1], data_offsets: [0, 2] } }));
    const f = new Uint8Array(8 + hh.length + 2);
    new DataView(f.buffer).setBigUint64(0, BigInt(hh.length), true);
    f.set(hh, 8);
    f.set(nan, 8 + hh.length);
    assert.ok(Number.isNaN(sn.parseSafetensors(f).tensors.get("x").data[0]), dtype);
  }
});

test.after(() => sn.dispose());
test.run();
