// Runs every test/*.test.mjs with uvu (each file in its own process, so one engine per file)
// and ends with a plain "N passed, N failed" line counting the test cases.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";

const filter = process.argv[2];
const files = readdirSync("test").filter((f) => f.endsWith(".test.mjs") && (!filter || f.includes(filter))).sort();
let passed = 0, failed = 0;
const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, "");
for (const f of files) {
  const r = spawnSync(process.execPath, ["--expose-gc", `test/${f}`], { encoding: "utf8", timeout: 30 * 60 * 1000 });
  const out = strip((r.stdout || "") + (r.stderr || ""));
  process.stdout.write(out);
  const total = +(out.match(/Total:\s+(\d+)/)?.[1] ?? 0);
  const ok = +(out.match(/Passed:\s+(\d+)/)?.[1] ?? 0);
  if (r.status !== 0 && total === 0) {
    console.log(`${f}: crashed before reporting (exit ${r.status}${r.signal ? ", " + r.signal : ""})`);
    failed++;
    continue;
  }
  passed += ok;
  // (uvu's Total leaves skipped tests out: a browser that is not installed skips its file)
  failed += total - ok + (r.status !== 0 && total === ok ? 1 : 0);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
