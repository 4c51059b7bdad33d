// Seeded, bounded fuzzing of the model reader (modelFromBytes / loadModel): thousands of mutated
// model.json files beside valid weights. Every one either loads (and then holds exactly the
// weight file's values) or fails with a plain Error whose message names the file: no TypeError,
// RangeError or stack overflow, and no allocation beyond what the weight file justifies.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as sn from "../dist/index.js";
import { fuzzRng } from "./helpers.mjs";
const { nn } = sn;

const SEED = 20240611;
const ITERATIONS = 3200;
const BUDGET_MS = 20000;

const rng = fuzzRng;

const DEEP = "__DEEP__";
const HOSTILE = [0, -1, 1, 2, 3, 1.5, -0.5, 1e9, 2 ** 31, 2 ** 32, 2 ** 53, 30000, 1e300, "", "x", "3", "Linear", true, false, null, [], {}, [1e9, 1e9], [0, 0], [2, 2, 2], [null], [[1]], { bias: "no" }, { stride: 0 }, { ceilMode: "yes" }, { p: 0.5 }, { type: "Linear", args: [30000, 30000] }, { type: "Conv2d", args: [4096, 4096, 64] }, { type: "ZeroPadShortcut", args: [1, 1e6, 1] }, { type: "PartialConv2d", args: [1e9, [[0]], 1] }, { type: "Sequential", children: [["a", { type: "ReLU" }], ["a", { type: "ReLU" }]] }, DEEP];

/** Every [container, key] in a JSON value (containers only, depth first). */
function slots(doc) {
  const out = [];
  const stack = [doc];
  while (stack.length && out.length < 5000) {
    const v = stack.pop();
    if (!v || typeof v !== "object") continue;
    for (const k of Array.isArray(v) ? v.keys() : Object.keys(v)) {
      out.push([v, k]);
      stack.push(v[k]);
    }
  }
  return out;
}

function mutate(r, doc, types) {
  const all = slots(doc);
  if (!all.length) return;
  const [c, k] = r.pick(all);
  const v = c[k];
  switch (r.int(9)) {
    case 0:
    case 1:
      c[k] = structuredClone(r.pick(HOSTILE));
      break;
    case 2:
      if (typeof v === "number") c[k] = r.pick([v + 1, v - 1, v * 2, v * 1000, -v, v + 0.5, 0, 2 ** 31 - 1]);
      else c[k] = structuredClone(r.pick(HOSTILE));
      break;
    case 3:
      if (Array.isArray(c)) c.splice(k, 1);
      else delete c[k];
      break;
    case 4:
      if (Array.isArray(c)) c.splice(k, 0, structuredClone(v));
      else c[k] = [v, structuredClone(v)];
      break;
    case 5: {
      // another module type here (or on the nearest module)
      const mods = all.filter(([cc, kk]) => kk === "type" && typeof cc[kk] === "string");
      if (mods.length) {
        const [m] = r.pick(mods);
        m.type = r.pick(types);
      }
      break;
    }
    case 6:
      c[k] = r.int(2) ? [v] : { type: "Sequential", children: [["w", v]] };
      break;
    case 7: {
      // child names: a duplicate, an empty one, one with a dot
      const pairs = all.filter(([cc, kk]) => Array.isArray(cc) && cc.length === 2 && kk === 0 && typeof cc[0] === "string");
      if (pairs.length) r.pick(pairs)[0][0] = r.pick(["", "a.b", pairs[0][0][0], "0", "relu", "body", "downsample", "__proto__"]);
      break;
    }
    default:
      c[k] = DEEP;
  }
}

function textMutate(r, s) {
  const b = new TextEncoder().encode(s);
  switch (r.int(3)) {
    case 0:
      for (let i = 0, n = 1 + r.int(3); i < n; i++) b[r.int(b.length)] ^= 1 << r.int(8);
      return b;
    case 1:
      return b.subarray(0, r.int(b.length));
    default: {
      const at = r.int(b.length);
      const ins = new TextEncoder().encode(r.pick(["[", "]", "{", "}", ",", '"', "0", "-", "9e9", "null", '"a":1,']));
      const out = new Uint8Array(b.length + ins.length);
      out.set(b.subarray(0, at));
      out.set(ins, at);
      out.set(b.subarray(at), at + ins.length);
      return out;
    }
  }
}

const ENGINE_ISMS = /Maximum call stack|Cannot read prop|Cannot destructure|Cannot set prop|is not a function|is not iterable|is not a constructor|Invalid array length|Invalid typed array length|Array buffer allocation failed|undefined is not (a|an) |null is not (a|an) |\[object Object\]|Unexpected end of JSON input$/;

function bases() {
  sn.manualSeed(5);
  const many = new nn.Sequential(
    new nn.Conv2d(1, 4, 3, { padding: 1, bias: false }),
    new nn.BatchNorm2d(4),
    new nn.LeakyReLU(0.1),
    new nn.Residual(new nn.Sequential(new nn.Conv2d(4, 4, 1), new nn.ReLU())),
    new nn.Concat([["a", new nn.Conv2d(4, 2, 1)], ["b", new nn.MaxPool2d(3, { stride: 1, padding: 1, ceilMode: true })]]),
    new nn.ConvTranspose2d(6, 3, 2, { stride: 2 }),
    new nn.AvgPool2d(2, { countIncludePad: false }),
    new nn.Upsample({ scaleFactor: 2 }),
    new nn.Dropout(0.1),
    new nn.AdaptiveAvgPool2d([2, 2]),
    new nn.LocalResponseNorm(2),
    new nn.Sigmoid(),
    new nn.Flatten(),
    new nn.Linear(12, 5),
    new nn.BatchNorm1d(5),
    new nn.Tanh(),
    new nn.Identity(),
    new nn.Linear(5, 3),
    new nn.LogSoftmax(1),
  );
  const head = new nn.Sequential(new nn.Conv2d(2, 3, 1), new nn.GlobalAvgPool2d(), new nn.Flatten(), new nn.Softmax(1));
  const models = [many, head, sn.models.lenet5(), sn.models.cifarResnet({ depth: 8, widths: [2, 4, 4], inputSize: 8 })];
  return models.map((m) => {
    const weights = sn.weightsToSafetensors(m);
    const tensors = sn.parseSafetensors(weights).tensors;
    const fileBytes = [...tensors.values()].reduce((n, t) => n + t.data.length * 4, 0);
    return { config: JSON.stringify(sn.modelConfig(m)), weights, tensors, fileBytes };
  });
}

test("fuzz: mutated model.json files load exactly or fail with a clear error naming the file, allocating nothing absurd", async () => {
  await sn.init({ threads: 2, warmUp: false });
  const eng = sn.engine();
  const base = bases();
  let types = [];
  try {
    sn.modelFromConfig({ format: "simdnet-model", version: 1, model: { type: "?" } });
  } catch (e) {
    types = e.message.match(/known: (.*)\)/)[1].split(", ");
  }
  assert.ok(types.length >= 25, types.join());
  // every allocation the reader makes, per file
  const alloc = eng.alloc;
  let allocated = 0;
  eng.alloc = function (bytes, what) {
    const ptr = alloc.call(this, bytes, what);
    allocated += bytes;
    return ptr;
  };
  const r = rng(SEED);
  const t0 = performance.now();
  const stats = { loaded: 0, refused: 0 };
  const messages = new Map();
  let worstRss = process.memoryUsage().rss;
  const rss0 = worstRss;
  try {
    for (let it = 0; it < ITERATIONS; it++) {
      const b = r.pick(base);
      const doc = JSON.parse(b.config);
      for (let i = 0, n = 1 + r.int(3); i < n; i++) mutate(r, doc, types);
      let text = JSON.stringify(doc);
      if (text.includes(`"${DEEP}"`)) {
        const d = r() < 0.05 ? 100000 + r.int(100000) : 1 + r.int(5000);
        text = text.replace(`"${DEEP}"`, "[".repeat(d) + "]".repeat(d));
      }
      let bytes = new TextEncoder().encode(text);
      if (r() < 0.15) bytes = textMutate(r, text);
      const fileBytes = b.fileBytes;
      allocated = 0;
      const live = eng.memoryStats().live;
      const started = performance.now();
      let outcome = "loaded";
      try {
        const { model } = sn.modelFromBytes(bytes, b.weights);
        stats.loaded++;
        const want = b.tensors;
        for (const [k, t] of model.stateDict()) assert.equal(Array.from(t.toArray()), Array.from(want.get(k).data), `iteration ${it}: ${k}`);
        model.dispose();
      } catch (e) {
        if (e?.name === "Assertion") throw e;
        stats.refused++;
        outcome = e?.message;
        const where = `iteration ${it} (${new TextDecoder().decode(bytes).slice(0, 200)})`;
        assert.ok(e instanceof Error, `${where}: threw ${typeof e} ${e}`);
        assert.ok(!(e instanceof TypeError) && !(e instanceof RangeError), `${where}: ${e.constructor.name}: ${e.message}`);
        assert.ok(typeof e.message === "string" && /^model\.(json|safetensors)\b/.test(e.message), `${where}: the message does not name the file: ${e.message}`);
        assert.not.match(e.message, ENGINE_ISMS, `${where}: ${e.message}`);
        const kind = e.message.replace(/\d+/g, "N").replace(/'[^']*'|"[^"]*"/g, "'…'").slice(0, 90);
        messages.set(kind, (messages.get(kind) ?? 0) + 1);
      }
      assert.ok(allocated <= 2 * fileBytes + 2 ** 20, `iteration ${it}: the reader allocated ${allocated} bytes for a weight file of ${fileBytes}`);
      assert.ok(eng.memoryStats().live <= live + 64, `iteration ${it}: ${eng.memoryStats().live - live} bytes left allocated (${outcome}; ${new TextDecoder().decode(bytes).slice(0, 300)})`);
      assert.ok(performance.now() - started < 3000, `iteration ${it} took ${performance.now() - started} ms`);
      if (it % 100 === 0) worstRss = Math.max(worstRss, process.memoryUsage().rss);
    }
  } finally {
    eng.alloc = alloc;
  }
  const ms = performance.now() - t0;
  assert.ok(ms < BUDGET_MS, `${ITERATIONS} files took ${ms.toFixed(0)} ms`);
  assert.ok(eng.memoryStats().wasmMemory <= 64 * 2 ** 20, `the wasm memory grew to ${eng.memoryStats().wasmMemory}`);
  assert.ok(worstRss - rss0 < 1024 * 2 ** 20, `the process grew by ${((worstRss - rss0) / 2 ** 20).toFixed(0)} MiB`);
  // the mutations reach past the first checks: some files still load, many kinds of refusal
  assert.ok(stats.loaded >= 50, `only ${stats.loaded} of ${ITERATIONS} loaded`);
  assert.ok(messages.size >= 40, `only ${messages.size} kinds of error`);
  if (process.env.FUZZ_VERBOSE) console.log(stats, ms.toFixed(0) + " ms", [...messages].sort((a, b) => b[1] - a[1]));
});

test("fuzz: loadModel from files (a few hundred damaged folders)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "fuzz-model-"));
  try {
    const base = bases();
    const r = rng(SEED + 1);
    for (let it = 0; it < 300; it++) {
      const b = r.pick(base);
      const doc = JSON.parse(b.config);
      mutate(r, doc, ["Linear", "Sequential", "Conv2d", "ReLU"]);
      const text = JSON.stringify(doc).replace(`"${DEEP}"`, "[]");
      writeFileSync(join(dir, "model.json"), r() < 0.2 ? textMutate(r, text) : text);
      writeFileSync(join(dir, "model.safetensors"), r() < 0.2 ? b.weights.subarray(0, r.int(b.weights.length)) : b.weights);
      try {
        (await sn.loadModel(dir)).model.dispose();
      } catch (e) {
        assert.ok(e instanceof Error && !(e instanceof TypeError) && !(e instanceof RangeError), `${e?.constructor?.name}: ${e?.message}`);
        assert.ok(e.message.startsWith(join(dir, "model.")), e.message);
        assert.not.match(e.message, ENGINE_ISMS);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
