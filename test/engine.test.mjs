import { test } from "uvu";
import * as assert from "uvu/assert";
import os from "node:os";
import { syncBuiltinESMExports } from "node:module";
import * as sn from "../dist/index.js";

test("init reports threads, SIMD builds and shared memory", async () => {
  const info = await sn.init({ threads: 2 });
  assert.is(info.threads, 2);
  assert.ok(info.simd);
  assert.ok(["simd", "relaxed"].includes(info.build));
  assert.ok(info.sharedMemory);
});

test("a kernel that traps on a worker makes the call throw, naming kernel and thread; the engine keeps working", async () => {
  await sn.init({ threads: 2 });
  assert.throws(() => sn.engine().runAll("debug_trap_on", [1]), /debug_trap_on failed on thread 1: unreachable/);
  assert.throws(() => sn.engine().runAll("debug_trap_on", [0]), /debug_trap_on failed on thread 0/);
  const y = sn.relu(sn.tensor([1, -2, 3]));
  assert.equal(Array.from(y.toArray()), [1, 0, 3]);
});

test("a worker that dies makes the call throw instead of hanging; init() starts a fresh engine", async () => {
  await sn.init({ threads: 2 });
  const x = sn.tensor(new Float32Array(100000).fill(-1));
  assert.throws(() => sn.engine().runAll("__exit__", []), /worker 1 died/);
  assert.throws(() => sn.relu(x), /died|disposed/);
  await sn.init({ threads: 2 });
  assert.throws(() => sn.relu(x), /relu: tensor \[100000\] belongs to a disposed engine/);
  const y = sn.relu(sn.tensor([1, -2, 3]));
  assert.equal(Array.from(y.toArray()), [1, 0, 3]);
});

test("a worker terminated from outside at random points of 20 kernels: every call returns or throws within seconds; init() again works", async () => {
  // seeded delays, so a failure can be replayed
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  let threw = 0;
  for (let trial = 0; trial < 20; trial++) {
    await sn.init({ threads: 3, warmUp: false });
    const a = sn.full([512, 512], 0.5), b = sn.full([512, 512], 0.25);
    const ith = 1 + (trial % 2);
    // terminated by the supervisor thread, not by the worker itself: no exit hook runs
    sn.engine().killWorker(ith, Math.floor(rnd() * 40));
    const t0 = Date.now();
    let err = null;
    try {
      // kernels for 150 ms; each result must still be right (a share is never lost)
      while (Date.now() - t0 < 150) {
        const c = sn.matmul(a, b);
        const v = c.toArray();
        c.dispose();
        if (v.some((x) => x !== 64)) throw new Error("wrong matmul result after a worker died");
      }
    } catch (e) {
      err = e;
    }
    const ms = Date.now() - t0;
    assert.ok(ms < 5000, `trial ${trial}: the calls took ${ms} ms`);
    if (err) {
      threw++;
      assert.match(err.message, /worker \d died while running/);
    }
  }
  // a worker that dies between kernels is harmless (the caller runs its shares); one that dies
  // holding a share must be noticed: some trials catch it there
  assert.ok(threw >= 3, `only ${threw} of 20 trials saw the worker die mid-kernel`);
  await sn.init({ threads: 2 });
  assert.equal(Array.from(sn.relu(sn.tensor([1, -2, 3])).toArray()), [1, 0, 3]);
});

test("single-thread fallback without shared memory runs the .single build", async () => {
  const info = await sn.init({ threads: 4, sharedMemory: false });
  assert.is(info.threads, 1);
  assert.ok(info.fallback && /SharedArrayBuffer/.test(info.fallback));
  assert.equal(Array.from(sn.relu(sn.tensor([-1, 2])).toArray()), [0, 2]);
});

test("memory past the wasm32 limit is a clear error and the engine keeps working", async () => {
  await sn.init({ threads: 2 });
  assert.throws(() => sn.zeros([1 << 20, 1 << 11]), /out of memory: tensor \[1048576,2048\] needs 8\.00 GiB but at most 3\.99 GiB can be allocated: the wasm32 limit is 4 GiB/);
  assert.equal(Array.from(sn.relu(sn.tensor([-1, 2])).toArray()), [0, 2]);
});

test("buffers freed by tidy() are reused: a repeated step does not grow memory", async () => {
  await sn.init({ threads: 2 });
  const x = sn.tensor(new Float32Array(50000).fill(1));
  const step = () => sn.tidy(() => sn.add(sn.relu(x), x).toArray()[0]);
  step();
  const before = sn.engine().memoryStats().reserved;
  for (let i = 0; i < 20; i++) step();
  assert.is(sn.engine().memoryStats().reserved, before);
});

test("an error thrown inside tidy() frees what the scope made (a failed step leaks nothing); what outer scopes hold stays", async () => {
  await sn.init({ threads: 2 });
  const x = sn.tensor(new Float32Array(50000).fill(1));
  const live = sn.engine().memoryStats().live;
  assert.throws(() => sn.tidy(() => {
    const y = sn.relu(sn.add(x, x));
    sn.tidy(() => sn.mul(y, 2)); // an inner scope's result, handed to the outer one
    throw new Error("boom");
  }), /boom/);
  assert.is(sn.engine().memoryStats().live, live);
  assert.equal(Array.from(x.toArray().slice(0, 2)), [1, 1], "a tensor made outside is untouched");
});

test("an idle pool stops spinning: a worker watches for the next job briefly, then sleeps", async () => {
  await sn.init({ threads: 2 });
  const big = sn.tensor(new Float32Array(1 << 20).fill(-1));
  sn.relu(big).dispose(); // a job on both threads: afterwards the worker spins, then sleeps
  await new Promise((r) => setTimeout(r, 30));
  const c0 = process.cpuUsage(), t0 = performance.now();
  await new Promise((r) => setTimeout(r, 300));
  const cpu = (process.cpuUsage(c0).user + process.cpuUsage(c0).system) / 1000, wall = performance.now() - t0;
  // a worker still spinning would add about the wall time; sleeping threads add next to nothing
  assert.ok(cpu < wall / 4, `process CPU ${cpu.toFixed(1)} ms over ${wall.toFixed(0)} ms idle`);
  big.dispose();
});

test("a caller's late notify does not make a worker run the job twice (the caller would then miscount and hang)", async () => {
  await sn.init({ threads: 2 });
  const e = sn.engine(), pool = e.pool, c = pool.ctrl;
  const x = sn.tensor(new Float32Array(64).fill(-1)), y = sn.zeros([64]), big = sn.tensor(new Float32Array(1 << 20).fill(-1));
  const spin = (ms) => {
    const t = performance.now();
    while (performance.now() - t < ms);
  };
  let caught = 0;
  for (let attempt = 0; attempt < 200 && caught < 2; attempt++) {
    sn.relu(big); // a real job: afterwards the worker spins briefly, watching the generation
    // publish a job by hand as Pool.run does (fields, then the share counter, then the
    // generation), but stall between the publication and the notify, as a preempted caller does;
    // share 0 is left unclaimed by the caller, share 1 is the worker's to claim
    [x.ptr, y.ptr, 64].forEach((v, i) => (pool.args[i] = v));
    c[2] = e.index.get("f32_relu_fwd");
    c[3] = 3;
    c[4] = 0;
    c[8] = 0;
    Atomics.store(c, 1, 0);
    Atomics.store(c, 9, 1);
    Atomics.add(c, 0, 1);
    spin(30);
    const ran = Atomics.load(c, 1) === 1; // the worker saw the job while spinning and ran its share
    Atomics.notify(c, 0);
    spin(30);
    if (ran) {
      caught++;
      assert.is(Atomics.load(c, 1), 1, "shares done after the late notify (2: a share ran twice)");
    } else while (Atomics.load(c, 1) !== 1) spin(1);
  }
  assert.ok(caught > 0, "the worker never caught a job while spinning: the race was not exercised");
  assert.equal(Array.from(sn.relu(sn.tensor([1, -2, 3])).toArray()), [1, 0, 3]);
});

test("bad init options are clear errors", async () => {
  await assert.not.throws(async () => {});
  try {
    await sn.init({ threads: 0 });
    assert.unreachable();
  } catch (e) {
    assert.match(e.message, /threads must be an integer from 1 to 64, got 0/);
  }
});

test("threads above the engine's maximum: an explicit count is an error naming the limit; the default (all cores) is capped there", async () => {
  assert.is(sn.Engine.maxThreads, 64);
  try {
    await sn.init({ threads: sn.Engine.maxThreads + 1 });
    assert.unreachable();
  } catch (e) {
    assert.match(e.message, /threads 65 is above the engine's maximum of 64 threads/);
  }
  // a machine with more cores than that: the engine reads the core count from node:os
  const realCores = os.availableParallelism;
  os.availableParallelism = () => 200;
  syncBuiltinESMExports();
  try {
    const plain = await sn.init({ sharedMemory: false });
    assert.is(plain.threads, 1);
    const info = await sn.init({ warmUp: false, minParallelWork: 0 });
    assert.is(info.threads, sn.Engine.maxThreads);
    assert.match(info.fallback, /200 cores, but the engine runs at most 64 threads/);
    // every thread takes a share of the product
    const a = sn.tensor(Float32Array.from({ length: 128 * 64 }, (_, i) => (i % 7) - 3), [128, 64]);
    const y = sn.matmul(a, sn.ones([64, 1])).toArray();
    const want = Array.from({ length: 128 }, (_, r) => Array.from({ length: 64 }, (_, c) => ((r * 64 + c) % 7) - 3).reduce((p, q) => p + q));
    assert.equal(Array.from(y), want);
  } finally {
    os.availableParallelism = realCores;
    syncBuiltinESMExports();
    await sn.init({ threads: 2 });
  }
});

test.after(() => sn.dispose());
test.run();
