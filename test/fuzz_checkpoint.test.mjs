// Seeded, bounded fuzzing of the checkpoint reader (unpackCheckpoint): thousands of damaged
// checkpoints (bit flips, truncation, overwritten bytes, metadata edits). A damaged file either
// restores exactly what the undamaged one restores (it never does: the checksum catches every
// change) or throws a plain Error naming the file and changes nothing: not the model, the
// optimiser, the schedule, the generators or the loader. Metadata edited and resealed on purpose
// (as a hand edit or a buggy writer would) restores only state that passes every check: finite
// learning rates that stay finite, generator states that are not all zero, buffers of the right
// sizes.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { fuzzRng } from "./helpers.mjs";
const { nn } = sn;

const SEED = 7051;
const ITERATIONS = 3200;
const BUDGET_MS = 20000;

const rng = fuzzRng;

/** Fresh parts, always in the same state (the default generator too). */
function parts() {
  sn.manualSeed(3);
  const model = new nn.Sequential(new nn.Conv2d(1, 2, 3), new nn.BatchNorm2d(2), new nn.ReLU(), new nn.Dropout(0.25), new nn.Flatten(), new nn.Linear(8, 3));
  const optimizer = new sn.Adam(model.parameters(), { lr: 0.01 });
  const scheduler = sn.linearWarmup(optimizer, { steps: 2, then: new sn.StepLR(optimizer, { step_size: 2, gamma: 0.5 }) });
  const loader = new sn.Generator(11);
  sn.manualSeed(99);
  return { model, optimizer, scheduler, loader };
}

const plain = (v) => JSON.stringify(v, (_k, x) => (x instanceof Float32Array ? Array.from(x) : x instanceof Map ? [...x] : typeof x === "number" && !Number.isFinite(x) ? String(x) : x));

function snapshot(p, result) {
  return plain({
    model: [...p.model.stateDict()].map(([k, t]) => [k, Array.from(t.toArray())]),
    optim: p.optimizer.stateDict(),
    sched: p.scheduler.stateDict(),
    lr: p.optimizer.paramGroups.map((g) => g.lr),
    rng: sn.defaultGenerator.getState(),
    mods: p.model.rngStates(),
    loader: p.loader.getState(),
    result: result ?? null,
  });
}

function original() {
  const p = parts();
  const x = sn.tensor(Float32Array.from({ length: 2 * 16 }, (_, i) => Math.cos(i)), [2, 1, 4, 4]);
  const t = sn.tensor([0, 2]);
  for (let i = 0; i < 3; i++) {
    sn.tidy(() => {
      p.optimizer.zeroGrad();
      sn.cross_entropy(p.model.call(x), t).backward();
      p.optimizer.step();
    });
    p.scheduler.step();
    p.loader.nextUint32();
  }
  return sn.packCheckpoint({ ...p, epoch: 3, history: [{ loss: 1.5, top1: 0.5 }, { loss: NaN }], extra: { schedulerStep: "epoch" } });
}

const HOSTILE = [0, -1, 1, 0.5, 1e308, -1e-9, 2 ** 32, 2 ** 53, 1.5, "", "x", "1", true, null, [], {}, [0, 0, 0, 0], { s: [0, 0, 0, 0] }, { s: [1, 2, 3] }, { s: [1, 2, 3, 2 ** 32] }, [null], { __num__: "NaN" }, { __num__: "Infinity" }, { __num__: "-Infinity" }, { __tensor__: "model.0.weight" }, { __f32__: "optim.state.0.exp_avg" }, { __f32__: "nope" }, { __map__: [["a", 1]] }];

function slots(doc) {
  const out = [];
  const stack = [doc];
  while (stack.length) {
    const v = stack.pop();
    if (!v || typeof v !== "object") continue;
    for (const k of Array.isArray(v) ? v.keys() : Object.keys(v)) {
      out.push([v, k]);
      stack.push(v[k]);
    }
  }
  return out;
}

/** Edits one metadata entry's JSON (or its string). */
function editMeta(r, meta) {
  const keys = Object.keys(meta);
  const key = r.pick(keys);
  let doc;
  try {
    doc = JSON.parse(meta[key]);
  } catch {
    meta[key] = r.pick(["", "x", "{", "3", "-1", "null"]);
    return;
  }
  const all = slots(doc);
  if (!all.length || r() < 0.1) {
    meta[key] = r() < 0.5 ? JSON.stringify(r.pick(HOSTILE)) : r.pick(["", "{", "[]", "3", "1e3", " 3", "03", "3.0"]);
    return;
  }
  const [c, k] = r.pick(all);
  const v = c[k];
  switch (r.int(5)) {
    case 0:
    case 1:
      c[k] = structuredClone(r.pick(HOSTILE));
      break;
    case 2:
      if (typeof v === "number") c[k] = r.pick([v + 1, v - 1, -v, v * 1e10, v / 3, 0]);
      else c[k] = structuredClone(r.pick(HOSTILE));
      break;
    case 3:
      if (Array.isArray(c)) c.splice(k, 1);
      else delete c[k];
      break;
    default:
      if (Array.isArray(c)) c.push(structuredClone(v));
      else c[k + "_"] = structuredClone(v);
  }
  meta[key] = JSON.stringify(doc);
}

function repack(bytes, editMetaFn, reseal) {
  const f = sn.parseSafetensors(bytes);
  const meta = { ...f.metadata };
  editMetaFn(meta);
  const t = new Map([...f.tensors].map(([k, v]) => [k, { shape: v.shape, data: v.data }]));
  const out = sn.serializeSafetensors(t, meta);
  return reseal ? sn.sealCheckpoint(out) : out;
}

const ENGINE_ISMS = /Maximum call stack|Cannot read prop|Cannot destructure|Cannot set prop|is not a function|is not iterable|is not a constructor|Invalid array length|Invalid typed array length|undefined is not (a|an) |null is not (a|an) |\[object Object\]/;

test("fuzz: damaged checkpoints restore exactly or throw and change nothing; resealed edits restore only sane state", async () => {
  await sn.init({ threads: 2, warmUp: false });
  const bytes = original();
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const reference = (() => {
    const p = parts();
    const res = sn.unpackCheckpoint(bytes, p);
    return snapshot(p, res);
  })();
  const r = rng(SEED);
  const stats = { unchanged: 0, refused: 0, exact: 0, resealedLoaded: 0, resealedRefused: 0 };
  const messages = new Map();
  const t0 = performance.now();
  for (let it = 0; it < ITERATIONS; it++) {
    let b, kind;
    const roll = r();
    if (roll < 0.3) {
      kind = "bit flips";
      b = new Uint8Array(bytes);
      for (let i = 0, k = 1 + r.int(4); i < k; i++) {
        const at = r() < 0.7 ? 8 + r.int(n) : r.int(b.length); // mostly in the header
        b[at] ^= 1 << r.int(8);
      }
    } else if (roll < 0.4) {
      kind = "truncated";
      b = bytes.slice(0, r.int(bytes.length));
    } else if (roll < 0.5) {
      kind = "bytes overwritten";
      b = new Uint8Array(bytes);
      const at = r.int(b.length);
      b.fill(r.int(256), at, Math.min(b.length, at + 1 + r.int(16)));
    } else if (roll < 0.65) {
      kind = "metadata edited";
      b = repack(bytes, (m) => editMeta(r, m), false);
    } else {
      kind = "metadata edited and resealed";
      b = repack(bytes, (m) => {
        for (let i = 0, k = 1 + r.int(2); i < k; i++) editMeta(r, m);
        if (m.checksum !== undefined && !/^[0-9a-f]{16}$/.test(m.checksum)) m.checksum = "0000000000000000";
        if (m.checksum === undefined) m.checksum = "0000000000000000";
      }, false);
      try {
        sn.sealCheckpoint(b);
      } catch {
        kind = "metadata edited (could not reseal)";
      }
    }
    // an edit that put back what was there (a value replaced by itself) is no damage
    if (b.length === bytes.length && b.every((x, i) => x === bytes[i])) {
      stats.unchanged++;
      continue;
    }
    const p = parts();
    const before = snapshot(p);
    const where = `iteration ${it} (${kind})`;
    let res = null;
    try {
      res = sn.unpackCheckpoint(b, p, "ckpt.safetensors");
    } catch (e) {
      assert.ok(e instanceof Error && !(e instanceof TypeError) && !(e instanceof RangeError), `${where}: ${e?.constructor?.name}: ${e?.message}`);
      assert.ok(e.message.startsWith("ckpt.safetensors: "), `${where}: the message does not name the file: ${e.message}`);
      assert.not.match(e.message, ENGINE_ISMS, `${where}: ${e.message}`);
      assert.is(snapshot(p), before, `${where}: a refused checkpoint changed something (${e.message})`);
      const k = e.message.replace(/\d+(\.\d+)?(e[-+]?\d+)?/g, "N").replace(/[0-9a-f]{16}/g, "H").slice(0, 110);
      messages.set(k, (messages.get(k) ?? 0) + 1);
      if (kind.endsWith("resealed")) stats.resealedRefused++;
      else stats.refused++;
      continue;
    }
    const after = snapshot(p, res);
    if (!kind.endsWith("resealed")) {
      assert.is(after, reference, `${where}: a damaged checkpoint loaded with other values`);
      stats.exact++;
      continue;
    }
    // resealed on purpose: what was restored must work
    stats.resealedLoaded++;
    const sane = (v, what) => assert.ok(typeof v === "number" && Number.isFinite(v) && v >= 0, `${where}: ${what} is ${v}`);
    p.optimizer.paramGroups.forEach((g, i) => sane(g.lr, `lr of group ${i}`));
    for (let s = 0; s < 6; s++) {
      p.scheduler.step();
      p.optimizer.paramGroups.forEach((g, i) => sane(g.lr, `lr of group ${i} after ${s + 1} steps`));
    }
    const sd = p.optimizer.stateDict();
    for (const [id, st] of Object.entries(sd.state)) {
      assert.ok(Number.isInteger(st.step) && st.step >= 0, `${where}: step of ${id}`);
      const size = p.optimizer.paramGroups[0].params[+id].size;
      for (const [k, v] of Object.entries(st)) if (k !== "step") assert.is(v.length, size, `${where}: ${k} of ${id}`);
    }
    const nonzero = (s, what) => assert.ok(s.s.some((v) => v !== 0), `${where}: ${what} generator is all zeros`);
    nonzero(sn.defaultGenerator.getState(), "the default");
    nonzero(p.loader.getState(), "the loader's");
    for (const [k, s] of Object.entries(p.model.rngStates())) nonzero(s, `layer ${k}'s`);
    assert.ok(Number.isInteger(res.epoch) && res.epoch >= 0 && Array.isArray(res.history));
  }
  const ms = performance.now() - t0;
  assert.ok(ms < BUDGET_MS, `${ITERATIONS} checkpoints took ${ms.toFixed(0)} ms`);
  assert.is(stats.exact, 0, "every damaged file is refused (the checksum)");
  assert.ok(stats.resealedRefused > 100 && stats.resealedLoaded > 20, JSON.stringify(stats));
  if (process.env.FUZZ_VERBOSE) console.log(stats, ms.toFixed(0) + " ms", [...messages].sort((a, b) => b[1] - a[1]));
});

test.run();
