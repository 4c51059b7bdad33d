// The thread count init() keeps when not told (src/engine/threadchoice.ts): in a browser the
// reported navigator.hardwareConcurrency is timed against halves of it and only threads that add
// speed are kept. Here: the decision from fake timings (a pure function, bundled from the
// source), and in Node the timing and the pool's shrink on a real pool (Node itself does not
// time its exact count). In Chromium with a rounded-up count: test/browser.test.mjs.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { build } from "esbuild";
import * as sn from "../dist/index.js";

// the decision function is internal: bundle it from the source for this test
const src = await build({
  entryPoints: [new URL("../src/engine/threadchoice.ts", import.meta.url).pathname],
  bundle: true,
  write: false,
  format: "esm",
  platform: "neutral",
  external: ["node:*"],
  define: { __SIMDNET_BUNDLE__: "false" },
  logLevel: "silent",
});
const { settleThreads, threadLadder, MAX_CHECKED } = await import("data:text/javascript;base64," + Buffer.from(src.outputFiles[0].text).toString("base64"));

/** A fake machine: ms per GEMM on n threads (a function), and a log of the pairs timed. */
function fake(msOn) {
  const calls = [];
  return { calls, timePair: (more, fewer) => (calls.push([more, fewer]), { more: msOn(more, calls.length), fewer: msOn(fewer, calls.length) }) };
}
/** c real cores: linear speed-up up to c threads, and oversubscription a little slower. */
const cores = (c) => (n) => (n <= c ? 1 / n : (1 / c) * 1.05);

test("threadLadder: the reported count, halved (rounded down) to 1", () => {
  assert.equal(threadLadder(8), [8, 4, 2, 1]);
  assert.equal(threadLadder(6), [6, 3, 1]);
  assert.equal(threadLadder(5), [5, 2, 1]);
  assert.equal(threadLadder(2), [2, 1]);
  assert.equal(threadLadder(1), [1]);
  assert.is(MAX_CHECKED, 16);
});

test("settleThreads: WebKit's 4 on two cores settles on 2, with the ratios in the reason", () => {
  const m = fake(cores(2));
  const c = settleThreads(4, m.timePair);
  assert.is(c.threads, 2);
  // 2→4 fails in its first window (no second one); 1→2 pays twice
  assert.equal(m.calls, [[4, 2], [2, 1], [2, 1]]);
  assert.is(c.reason, "4 reported, 2 measured useful (2→4: 0.95x; 1→2: 2.00x, 2.00x; each doubling must be 1.25x faster twice)");
});

test("settleThreads: a truthful count is kept after one pair of windows; one core under 4 reported settles on 1", () => {
  const m = fake(cores(8));
  const c = settleThreads(8, m.timePair);
  assert.is(c.threads, 8);
  assert.equal(m.calls, [[8, 4], [8, 4]]);
  assert.is(c.reason, "8 reported, all measured useful (4→8: 2.00x, 2.00x)");
  const one = fake(cores(1));
  assert.is(settleThreads(4, one.timePair).threads, 1);
  assert.equal(one.calls, [[4, 2], [2, 1]]);
  assert.match(settleThreads(2, fake(cores(1)).timePair).reason, /^2 reported, 1 measured useful \(1→2: 0\.95x; each doubling/);
});

test("settleThreads: each doubling must pay MARGIN (1.25x) twice: a first window alone, or 1.2x, is not enough", () => {
  // fast in the first window only (a quiet moment): not kept
  const once = fake((n, call) => (call === 1 ? 1 / n : 1));
  const c = settleThreads(2, once.timePair);
  assert.is(c.threads, 1);
  assert.equal(once.calls, [[2, 1], [2, 1]]);
  assert.match(c.reason, /1→2: 2\.00x, 1\.00x/);
  // 1.2x faster: not worth a thread
  assert.is(settleThreads(2, fake((n) => (n === 2 ? 1 : 1.2)).timePair).threads, 1);
  // exactly the margin: kept
  assert.is(settleThreads(2, fake((n) => (n === 2 ? 1 : 1.25)).timePair).threads, 2);
  // another margin
  assert.is(settleThreads(2, fake((n) => (n === 2 ? 1 : 1.2)).timePair, 1.1).threads, 2);
});

test("settleThreads: never more than reported, whatever the timings; a timer too coarse keeps the reported count", () => {
  for (const reported of [2, 3, 4, 6, 8, 16])
    for (let seed = 1; seed < 50; seed++) {
      let s = seed;
      const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 + 0.01;
      const m = fake(() => rnd());
      const c = settleThreads(reported, m.timePair);
      assert.ok(c.threads >= 1 && c.threads <= reported && threadLadder(reported).includes(c.threads), `${reported}: ${c.threads}`);
      assert.ok(m.calls.every(([more, fewer]) => more <= reported && fewer < more));
      assert.ok(c.steps.every((st) => st.windows.length >= 1 && st.windows.length <= 2));
    }
  const coarse = settleThreads(4, () => ({ more: 0, fewer: 0 }));
  assert.is(coarse.threads, 4);
  assert.match(coarse.reason, /^4 reported, kept: the timer is too coarse/);
});

// ---- on a real pool, in Node ----

const matmulBits = () => {
  const x = sn.tensor(Float32Array.from({ length: 150 * 170 }, (_, i) => Math.sin(i * 0.37)), [150, 170]);
  const w = sn.tensor(Float32Array.from({ length: 170 * 130 }, (_, i) => Math.cos(i * 0.11)), [170, 130]);
  return Array.from(sn.matmul(x, w).toArray());
};

test("Node: init() without threads takes os.availableParallelism() as exact and does not time it; threads asked for are honoured", async () => {
  const { availableParallelism } = await import("node:os");
  const info = await sn.init();
  assert.is(info.threads, Math.min(availableParallelism(), sn.Engine.maxThreads));
  assert.is(info.threadsReason, `all ${availableParallelism()} cores (os.availableParallelism(): exact, not timed)`);
  const asked = await sn.init({ threads: 3 });
  assert.is(asked.threads, 3);
  assert.is(asked.threadsReason, "init({ threads: 3 }) asked for it");
  const single = await sn.init({ threads: 3, sharedMemory: false });
  assert.is(single.threads, 1);
  assert.match(single.threadsReason, /^one thread: no shared memory/);
});

test("Node: the timing on a real pool retires the extra workers; the engine then runs with the same bits", async () => {
  await sn.init({ threads: 1 });
  const want = matmulBits();
  for (const threads of [4, 3, 2]) {
    const info = await sn.init({ threads, minParallelWork: 0 });
    const t0 = performance.now();
    const c = sn.engine()._settleThreads();
    const ms = performance.now() - t0;
    console.log(`  ${threads} threads: ${info.threadsReason} (${ms.toFixed(0)} ms in all)`);
    assert.is(info.threads, c.threads);
    assert.ok(info.threads >= 1 && info.threads <= threads);
    assert.match(info.threadsReason, new RegExp(`^${threads} reported, (all|${info.threads}) measured useful \\(.*; \\d+ ms of timing\\)$`));
    // every kernel on every remaining thread, twice (a retired worker that still took shares
    // would hang or corrupt this)
    assert.equal(matmulBits(), want);
    assert.equal(matmulBits(), want);
  }
  sn.dispose();
});

test("Node: shrinking the pool to a given count (fake timings): 4 to 2, 3 to 1, 8 to 4; kernels then run on what is left with the same bits", async () => {
  await sn.init({ threads: 1 });
  const want = matmulBits();
  for (const [threads, real] of [[4, 2], [3, 1], [8, 4], [2, 2]]) {
    const info = await sn.init({ threads, minParallelWork: 0 });
    const c = sn.engine()._settleThreads(fake(cores(real)).timePair);
    assert.is(c.threads, real);
    assert.is(info.threads, real);
    assert.is(sn.engine().threads, real);
    assert.match(info.threadsReason, new RegExp(`^${threads} reported, (all|${real}) measured useful`));
    for (let i = 0; i < 3; i++) assert.equal(matmulBits(), want);
    // a model step too (conv kernels, scratch sized by the new count)
    sn.manualSeed(1);
    const m = new sn.Sequential(new sn.nn.Conv2d(1, 4, 3, { padding: 1 }), new sn.nn.ReLU(), new sn.nn.Flatten(), new sn.nn.Linear(4 * 8 * 8, 2));
    const loss = sn.cross_entropy(m.forward(sn.tensor(Float32Array.from({ length: 4 * 64 }, (_, i) => Math.sin(i)), [4, 1, 8, 8])), sn.tensor(new Int32Array([0, 1, 0, 1]), [4]));
    loss.backward();
    assert.ok(Number.isFinite(loss.item()));
  }
  sn.dispose();
});

test("Node: jobs of fewer shares than the pool, then a shrink, many times over (the wake-ups around sleeping and retiring workers)", async () => {
  const n = 1 << 14;
  for (let round = 0; round < 12; round++) {
    await sn.init({ threads: 4, warmUp: false });
    const e = sn.engine();
    const p = e.alloc(n * 4);
    const check = (v, what) => {
      const f = e.heapF32.subarray(p / 4, p / 4 + n);
      assert.ok(f.every((x) => x === v), `round ${round}: ${what}`);
    };
    for (let j = 0; j < 24; j++) {
      const shares = [2, 4, 3, 2, 1, 2][j % 6];
      e.runShares("f32_fill", [p, n, j], shares);
      check(j, `fill as ${shares} shares`);
    }
    const kept = round % 3 === 0 ? 1 : 2;
    e._settleThreads(fake(cores(kept)).timePair);
    assert.is(e.threads, kept);
    e.runAll("f32_fill", [p, n, -1]);
    check(-1, `fill on the ${kept} thread(s) left`);
  }
  sn.dispose();
});

test.run();
