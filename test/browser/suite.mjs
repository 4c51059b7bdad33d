// The browser tests that Firefox and WebKit share (test/browser_firefox.test.mjs,
// test/browser_webkit.test.mjs): the fixture cases give the same bits as Node for the build the
// browser picks; threads where it has SharedArrayBuffer, the one-thread fallback with the right
// reason where it has not; a trapping kernel and a dying worker make the call throw; the demo
// trains. One browser start per file (a start takes seconds).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startServer } from "./launch.mjs";
import { fixtureFiles, sameBitsAsNode } from "./node_bits.mjs";
import { launch, requireBrowser } from "./drivers.mjs";
import { availableParallelism } from "node:os";

const files = fixtureFiles;

/** expect: what the browser has. relaxedSimd: whether it validates relaxed SIMD;
 *  sharedArrayBuffer: whether an isolated page's worker gets SharedArrayBuffer (threads);
 *  fallback: the reason init() gives there when it has not. */
export function browserSuite(name, expect) {
  if (!requireBrowser(name)) return test.run();
  let browser, isolated, plain, page;

  test.before(async () => {
    browser = await launch(name);
    console.log(`${name}: ${browser.version}`);
    isolated = await startServer({ isolation: true });
    plain = await startServer({ isolation: false });
  });

  test.after(async () => {
    await page?.close().catch(() => {});
    await browser?.close();
    await isolated?.close();
    await plain?.close();
  });

  async function openRunner(server) {
    await page?.close();
    page = await browser.newPage();
    await page.goto(server.url + "test/browser/runner.html");
    await page.waitFor(() => window.ready === true, null, 20000);
    return page;
  }

  const threads = expect.sharedArrayBuffer ? 2 : 1;

  /** After Firefox's automation hang (below): a fresh browser. A fresh page is not enough: it
   *  opens in the same content process, whose next nested new Worker() hung again in one CI run
   *  (two hangs in a row). close() may not return with a worker stuck, so the process is killed
   *  after 10 s. */
  async function restartBrowser() {
    await page?.close().catch(() => {});
    page = null;
    let timer;
    await Promise.race([browser.close().catch(() => {}), new Promise((r) => (timer = setTimeout(r, 10000)))]);
    clearTimeout(timer);
    browser.kill?.();
    browser = await launch(name);
  }

  /** window.inWorker(msg) on a fresh runner page. Firefox under WebDriver BiDi sometimes never
   *  returns from a nested `new Worker()` (about 1 in 100 starts; never without automation
   *  attached: bench/README.md, "The Firefox start that never returns"), which the runner's
   *  watchdog reports: that one diagnosed failure of the test harness gets one more try in a
   *  fresh browser, said out loud. Any other failure, or a second hang, fails the test. */
  async function inWorker(server, msg) {
    let r = await (await openRunner(server)).evaluate((m) => window.inWorker(m), msg);
    if (name === "firefox" && !r.ok && /^new Worker\(\) in the module worker did not return/.test(r.error ?? "")) {
      console.log(`${name}: the automation hang inside new Worker() (${r.error}); one more try in a fresh browser`);
      await restartBrowser();
      r = await (await openRunner(server)).evaluate((m) => window.inWorker(m), msg);
    }
    return r;
  }

  test(`${name}: fixture cases in a worker of an isolated page give the same bits as Node (${threads} thread(s))`, async () => {
    const r = await inWorker(isolated, { cmd: "cases", threads: 2, files });
    assert.ok(r.ok, r.error);
    // relaxed SIMD where it validates, if not measured slower at start; else the SIMD build
    assert.is(r.info.relaxedSimd, expect.relaxedSimd);
    if (expect.relaxedSimd) assert.match(r.info.buildReason, /GEMM at start/);
    else assert.equal([r.info.build, r.info.buildReason], ["simd", "no relaxed SIMD in this runtime"]);
    assert.is(r.info.crossOriginIsolated, true);
    assert.is(r.info.threads, threads);
    assert.is(r.info.sharedMemory, expect.sharedArrayBuffer);
    if (expect.sharedArrayBuffer) assert.is(r.info.fallback, undefined);
    else assert.match(r.info.fallback, expect.fallback);
    await sameBitsAsNode(`${name} worker, ${threads} thread(s)`, r.info.build, r.result);
  });

  // without `threads` the browser's count is timed (src/engine/threadchoice.ts); here it claims
  // twice the cores (the invariants only: the outcome depends on timing; test/browser.test.mjs
  // checks more in Chromium)
  test(`${name}: init() without threads times a reported count of twice the cores and keeps at most that, saying so`, async () => {
    const reported = 2 * availableParallelism();
    const r = await inWorker(isolated, { cmd: "init", reported });
    assert.ok(r.ok, r.error);
    console.log(`${name}: reported ${reported}: ${r.info.threads} thread(s): ${r.info.threadsReason}`);
    if (!expect.sharedArrayBuffer) {
      assert.is(r.info.threads, 1);
      assert.match(r.info.threadsReason, /^one thread: no shared memory/);
      return;
    }
    assert.ok(r.info.threads >= 1 && r.info.threads <= reported);
    assert.match(r.info.threadsReason, new RegExp(`^${reported} reported, (all|${r.info.threads}) measured useful \\(.*; \\d+ ms of timing\\)$`));
  });

  test(`${name}: a page without cross-origin isolation falls back to one thread, says why, same bits`, async () => {
    const p = await openRunner(plain);
    const r = await p.evaluate((files) => window.onPage(files, 4), files);
    assert.is(r.crossOriginIsolated, false);
    assert.is(r.info.threads, 1);
    assert.ok(!r.info.sharedMemory);
    assert.match(r.info.fallback, /page is not cross-origin isolated/);
    await sameBitsAsNode(`${name} page, no isolation`, r.info.build, r.result);
  });

  test(`${name}: a trapping kernel throws a clear error; a worker that dies makes the call throw, not hang`, async () => {
    if (expect.sharedArrayBuffer) {
      const r = await inWorker(isolated, { cmd: "trap", threads: 2, thread: 1 });
      assert.ok(r.ok, r.error);
      assert.match(r.message, /debug_trap_on failed on thread 1: \S/);
      assert.match(r.deadMessage, /worker 1 died/);
    } else {
      // one thread, no pool worker to die: the trap on the caller's own share
      const r = await inWorker(isolated, { cmd: "trap", threads: 2, thread: 0 });
      assert.ok(r.ok, r.error);
      assert.is(r.info.threads, 1);
      assert.match(r.message, /kernel debug_trap_on failed: \S/);
    }
  });

  if (expect.sharedArrayBuffer)
    test(`${name}: pool workers that never report ready make init() fail clearly in bounded time; the next init() works`, async () => {
      const r = await inWorker(isolated, { cmd: "hang", threads: 2 });
      assert.ok(r.ok, r.error);
      assert.match(r.message, /simdnet: worker 1 did not start within 20 s/);
      assert.ok(r.failedAfterMs < 5000, `failed after ${r.failedAfterMs} ms`);
      assert.is(r.info.threads, 2);
    });

  test(`${name}: the demo starts (${threads} thread(s)), trains (the loss falls) and stops`, async () => {
    // wait for the demo's state to satisfy `cond` (source text, run in the page); a page error ends the wait
    const state = (cond, ms) =>
      page.waitFor(
        (src) => {
          const d = window.demo;
          const s = d && { ready: d.ready, running: d.running, steps: d.steps.length, errors: d.errors };
          return s && (s.errors.length || new Function("s", `return (${src})(s)`)(s)) ? s : null;
        },
        cond.toString(),
        ms,
      );
    const until = async (cond, ms = 120000) => {
      const s = await state(cond, ms);
      assert.equal(s.errors, [], "the page reported errors");
      return s;
    };
    const open = async () => {
      await page?.close();
      page = await browser.newPage();
      await page.goto(isolated.url + "demo/?threads=2");
      return state((s) => s.ready, 120000);
    };
    // Firefox's automation hang inside a nested new Worker() (see inWorker above) shows on the
    // demo as its init timing out: that one failure gets one more try in a fresh browser, said out
    // loud; any other error, or a second one, fails the test
    let s = await open();
    if (name === "firefox" && s.errors.length === 1 && /^could not start: init did not answer within \d+ s/.test(s.errors[0])) {
      console.log(`${name}: the demo's init did not answer (${s.errors[0]}), the automation hang inside new Worker(); one more try in a fresh browser`);
      await restartBrowser();
      s = await open();
    }
    assert.equal(s.errors, [], "the page reported errors");
    const d = await page.evaluate(() => ({ info: window.demo.info, selectDisabled: document.getElementById("threads").disabled }));
    assert.is(d.info.threads, threads);
    assert.ok(d.info.build === "simd" || (expect.relaxedSimd && d.info.build === "relaxed"), d.info.build);
    // where threads cannot run, the selector that asks for them is off
    assert.is(d.selectDisabled, !expect.sharedArrayBuffer);
    await page.evaluate(() => document.getElementById("train").click());
    await until((s) => s.steps >= 30);
    await page.evaluate(() => document.getElementById("stop").click());
    await until((s) => !s.running);
    const losses = await page.evaluate(() => window.demo.steps.map((s) => s.loss));
    // deterministic model, data order and kernels: this does not depend on timing
    const mean = (a) => a.reduce((s, x) => s + x, 0) / a.length;
    const first = mean(losses.slice(0, 5)), last = mean(losses.slice(-5));
    assert.ok(first > 2, `first losses ${first}`);
    assert.ok(last < first - 0.5, `loss did not fall: ${first.toFixed(3)} -> ${last.toFixed(3)}`);
    assert.equal(page.errors, []);
  });

  test.run();
}
