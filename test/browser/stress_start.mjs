#!/usr/bin/env node
// Stress the worker pool's start in a real browser: `starts` fresh browser starts, each opening
// test/browser/runner.html on an isolated page and running init({ threads }) in `inits` fresh
// module workers one after the other (the pool's nested workers come from a Blob URL). Reports
// how many inits finished, how long they took, and every failure with its message: a start that
// never reports ready must end in the pool's own clear error (START_TIMEOUT_MS), never hang the
// page. Firefox ESR showed such hangs in about 3 % of fresh starts under its WebDriver agent.
//
//   node test/browser/stress_start.mjs [--browser firefox] [--starts 20] [--inits 5] [--threads 2] [--json]
import { launch } from "./drivers.mjs";
import { startServer } from "./launch.mjs";

const argv = process.argv.slice(2);
const arg = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const BROWSER = arg("browser", "firefox"), STARTS = +arg("starts", 20), INITS = +arg("inits", 5), THREADS = +arg("threads", 2);
// longer than the pool's own start timeout, so that one reports first
const PAGE_WAIT_MS = 40000;

const server = await startServer({ isolation: true });
const times = [], failures = [], launchMs = [];
let version = "";
try {
  for (let s = 0; s < STARTS; s++) {
    const tl = Date.now();
    const browser = await launch(BROWSER);
    launchMs.push(Date.now() - tl);
    version = browser.version;
    try {
      const page = await browser.newPage();
      await page.goto(server.url + "test/browser/runner.html");
      await page.waitFor(() => window.ready === true, null, 20000);
      for (let i = 0; i < INITS; i++) {
        const t0 = Date.now();
        const r = await Promise.race([
          page.evaluate((threads) => window.inWorker({ cmd: "init", threads, trace: true }), THREADS),
          new Promise((resolve) => setTimeout(() => resolve({ ok: false, error: `no answer from the page in ${PAGE_WAIT_MS / 1000} s` }), PAGE_WAIT_MS)),
        ]);
        if (r.ok && r.info.threads === THREADS) times.push(r.ms);
        else failures.push({ start: s, init: i, ms: Date.now() - t0, error: r.ok ? `started ${r.info.threads} threads: ${r.info.fallback}` : r.error });
        if (!r.ok) {
          // how far the pool's start got, as the module worker saw it
          const traces = await Promise.race([page.evaluate(() => window.traces), new Promise((res) => setTimeout(() => res(["(the page did not answer)"]), 10000))]);
          failures[failures.length - 1].traces = traces;
          console.log(`\nstart ${s}, init ${i}: ${r.error}\n  ${traces.join("\n  ")}`);
        }
      }
      await page.close();
    } catch (e) {
      failures.push({ start: s, error: `the page: ${e.message}` });
    } finally {
      await browser.close();
    }
    process.stdout.write(`\r${s + 1}/${STARTS} starts, ${times.length} inits ok, ${failures.length} failed`);
  }
} finally {
  await server.close();
}
process.stdout.write("\n");
const sorted = [...times].sort((a, b) => a - b);
const q = (p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))].toFixed(0) : "-");
const launchMedian = [...launchMs].sort((a, b) => a - b)[launchMs.length >> 1];
const result = { browser: version, starts: STARTS, initsPerStart: INITS, threads: THREADS, ok: times.length, failed: failures.length, initMs: { median: q(0.5), p95: q(0.95), max: q(1) }, launchMedianMs: launchMedian, failures };
if (argv.includes("--json")) console.log(JSON.stringify(result));
else {
  console.log(`${version}: ${STARTS} fresh starts x ${INITS} init({ threads: ${THREADS} }) in a module worker: ${times.length} ok, ${failures.length} failed`);
  console.log(`  init ms: median ${result.initMs.median}, p95 ${result.initMs.p95}, max ${result.initMs.max}; browser launch: median ${launchMedian} ms`);
  for (const f of failures) console.log(`  start ${f.start}${f.init !== undefined ? `, init ${f.init}` : ""}: ${f.error}${f.traces ? ` [${f.traces.join("; ")}]` : ""}`);
}
process.exit(failures.length ? 1 : 0);
