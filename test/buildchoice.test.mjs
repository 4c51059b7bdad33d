// init() picks the kernel build by a start-up timing where the runtime has relaxed SIMD
// (src/engine/buildchoice.ts): it says why in info.buildReason, measures once per process and
// memory kind, and init({ build }) still forces a build. The fallback says why memory is not
// shared. (In the browsers: test/browser_firefox.test.mjs, test/browser_webkit.test.mjs.)
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";

test("init(): Node has relaxed SIMD, so both builds are timed and the answer says so with the timings", async () => {
  const info = await sn.init({ threads: 2 });
  assert.ok(info.relaxedSimd);
  assert.ok(["relaxed", "simd"].includes(info.build));
  assert.match(info.buildReason, /64x64x64 GEMM at start, \d+ ms of timing: relaxed \d+ µs, SIMD \d+ µs/);
  assert.match(info.buildReason, info.build === "simd" ? /^SIMD measured faster/ : /^relaxed SIMD, not measured 1.25x slower/);
});

test("init(): the timing runs once per process and memory kind: a second init gives the same build and reason", async () => {
  const a = await sn.init({ threads: 2 });
  const b = await sn.init({ threads: 1 });
  assert.equal([b.build, b.buildReason], [a.build, a.buildReason]);
  const single = await sn.init({ threads: 2, sharedMemory: false });
  assert.match(single.buildReason, /GEMM at start/);
  const again = await sn.init({ sharedMemory: false });
  assert.equal([again.build, again.buildReason], [single.build, single.buildReason]);
});

test("init({ build }) forces a build and says so; the bits differ only by build, not by how it was chosen", async () => {
  for (const build of ["relaxed", "simd"]) {
    const info = await sn.init({ threads: 2, build });
    assert.is(info.build, build);
    assert.is(info.buildReason, `init({ build: "${build}" }) asked for it`);
  }
  const auto = await sn.init({ threads: 2 });
  const x = sn.tensor(Float32Array.from({ length: 96 * 96 }, (_, i) => Math.sin(i)), [96, 96]);
  const y = Array.from(sn.matmul(x, x).toArray());
  await sn.init({ threads: 2, build: auto.build });
  const x2 = sn.tensor(Float32Array.from({ length: 96 * 96 }, (_, i) => Math.sin(i)), [96, 96]);
  assert.equal(Array.from(sn.matmul(x2, x2).toArray()), y);
});

test("init({ build }) with an unknown build is refused before anything starts", async () => {
  try {
    await sn.init({ build: "fast" });
    assert.unreachable("init took build: fast");
  } catch (e) {
    assert.match(e.message, /init: build must be "auto", "relaxed" or "simd", got "fast"/);
  }
});

test("the one-thread fallback says why memory is not shared", async () => {
  const info = await sn.init({ threads: 4, sharedMemory: false });
  assert.is(info.threads, 1);
  assert.match(info.fallback, /sharedMemory: false, as on a page without SharedArrayBuffer\): running on one thread/);
  sn.dispose();
});

test.run();
