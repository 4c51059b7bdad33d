#!/usr/bin/env node
// Stress the worker pool's start in a real browser: `starts` fresh browser starts, each loading
// test/browser/loop.html on an isolated page, which runs init({ threads }) in `inits` fresh
// module workers one after the other (the pool's workers are nested workers from a Blob URL) and
// reports every result here over HTTP. An init with no answer in 30 s is a hang, reported with
// the module worker's trace (each new Worker() called / returned, each worker's ready).
//
// --no-driver starts the browser as a plain process (Firefox only) instead of through its
// WebDriver client, so that no automation agent is attached: Firefox ESR hangs inside a nested
// `new Worker()` about 2 % of the time under its WebDriver BiDi agent (bench/README.md).
//
//   node test/browser/stress_start.mjs [--browser firefox] [--no-driver] [--starts 10] [--inits 20] [--threads 2] [--json]
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FIREFOX, launch } from "./drivers.mjs";
import { startServer } from "./launch.mjs";

const argv = process.argv.slice(2);
const arg = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const BROWSER = arg("browser", "firefox"), STARTS = +arg("starts", 10), INITS = +arg("inits", 20), THREADS = +arg("threads", 2);
const NO_DRIVER = argv.includes("--no-driver");
if (NO_DRIVER && BROWSER !== "firefox") throw new Error("--no-driver: Firefox only");

// the reports: loop.html sends each result as the query of a GET
let onReport = () => {};
const reports = createServer((req, res) => {
  res.writeHead(204, { "Access-Control-Allow-Origin": "*", "Cross-Origin-Resource-Policy": "cross-origin" });
  res.end();
  const q = req.url.indexOf("?");
  if (q >= 0) onReport(JSON.parse(decodeURIComponent(req.url.slice(q + 1))));
});
await new Promise((r) => reports.listen(0, "127.0.0.1", r));
const reportUrl = `http://127.0.0.1:${reports.address().port}/report`;
const server = await startServer({ isolation: true });

/** One fresh browser running loop.html to the end (or until it stops reporting). */
async function oneStart(s) {
  const url = `${server.url}test/browser/loop.html?n=${INITS}&threads=${THREADS}&report=${encodeURIComponent(reportUrl)}`;
  const results = [];
  let agent = "";
  const finished = new Promise((resolve) => {
    let quiet;
    const arm = () => {
      clearTimeout(quiet);
      quiet = setTimeout(() => resolve("the page stopped reporting for 60 s"), 60000);
    };
    arm();
    onReport = (m) => {
      arm();
      if (m.hello) agent = m.hello;
      else if (m.done) resolve("done");
      else results.push(m);
    };
  });
  let close;
  if (NO_DRIVER) {
    const profile = mkdtempSync(join(tmpdir(), "stress-firefox-"));
    const ff = spawn(FIREFOX, ["--headless", "--no-remote", "--profile", profile, url], { stdio: "ignore" });
    close = async () => {
      ff.kill();
      await new Promise((r) => (ff.exitCode !== null ? r() : ff.once("exit", r)));
      rmSync(profile, { recursive: true, force: true });
    };
  } else {
    const browser = await launch(BROWSER);
    const page = await browser.newPage();
    // as the tests do: a call into the page that awaits the page's promise, in flight throughout
    page.goto(url).then(() => page.evaluate(() => window.loopDone)).catch(() => {});
    close = () => browser.close();
  }
  const end = await finished;
  await close();
  return { end, agent, results };
}

const times = [], failures = [];
try {
  for (let s = 0; s < STARTS; s++) {
    const { end, results } = await oneStart(s);
    for (const r of results) {
      if (r.ok) times.push(r.ms);
      else {
        failures.push({ start: s, ...r });
        console.log(`\nstart ${s}, init ${r.i}: ${r.error}\n  ${(r.traces || []).join("\n  ")}`);
      }
    }
    if (end !== "done") failures.push({ start: s, error: `${end} after ${results.length} of ${INITS} inits` });
    process.stdout.write(`\r${s + 1}/${STARTS} starts, ${times.length} inits ok, ${failures.length} failed`);
  }
} finally {
  await server.close();
  reports.close();
}
process.stdout.write("\n");
const sorted = [...times].sort((a, b) => a - b);
const q = (p) => (sorted.length ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]) : null);
const how = NO_DRIVER ? "a plain process, no automation" : "its WebDriver client";
const result = { browser: BROWSER, driver: !NO_DRIVER, starts: STARTS, initsPerStart: INITS, threads: THREADS, ok: times.length, failed: failures.length, initMs: { median: q(0.5), p95: q(0.95), max: q(1) }, failures };
if (argv.includes("--json")) console.log(JSON.stringify(result));
else {
  console.log(`${BROWSER} (${how}): ${STARTS} fresh starts x ${INITS} init({ threads: ${THREADS} }) in fresh module workers: ${times.length} ok, ${failures.length} failed`);
  console.log(`  init ms: median ${result.initMs.median}, p95 ${result.initMs.p95}, max ${result.initMs.max}`);
  for (const f of failures) console.log(`  start ${f.start}${f.i !== undefined ? `, init ${f.i}` : ""}: ${f.error}${f.traces ? ` [${f.traces.join("; ")}]` : ""}`);
}
process.exit(failures.length ? 1 : 0);
