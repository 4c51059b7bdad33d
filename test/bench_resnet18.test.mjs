// bench/resnet18.mjs at a small input (64x64, quick): our ResNet-18, the same network with batch
// norm folded (fuseBatchNorm), TF.js's wasm backend (tfjs-layers) and ONNX Runtime Web (an ONNX
// graph the bench writes) must all run, on 1 and 2 threads, and every runtime's logits must
// match ours within the bench's tolerance (max |diff| <= 1e-4 * max |our logits|). Times are
// printed by the bench, never asserted here.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const bench = fileURLToPath(new URL("../bench/resnet18.mjs", import.meta.url));

test("resnet18 bench --check at 64x64: every runtime runs and its logits match ours, 1 and 2 threads", () => {
  const r = spawnSync(process.execPath, [bench, "--size", "64", "--quick", "--check", "--json", "--threads", "1,2"], { encoding: "utf8", timeout: 170_000 });
  const rows = (r.stdout || "")
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l))
    .filter((row) => !row.kind);
  const show = () => `\n${(r.stdout || "").slice(-3000)}\n${(r.stderr || "").slice(-3000)}`;
  const runtimes = ["simdnet", "simdnet-fused", "tfjs-wasm", "ort-wasm"];
  for (const threads of [1, 2])
    for (const runtime of runtimes) {
      const row = rows.find((x) => x.threads === threads && x.runtime === runtime);
      assert.ok(row, `no row for ${runtime} with ${threads} thread(s)${show()}`);
      assert.is(row.status, "ok", `${runtime}, ${threads} thread(s): ${row.status}`);
      assert.is(row.size, 64);
      assert.ok(row.max_abs_logit > 0.1, `${runtime}: logits of a sensible size (max |logit| ${row.max_abs_logit})`);
      if (runtime === "simdnet") continue;
      assert.ok(
        row.match === true && row.max_abs_diff <= row.tol,
        `${runtime}, ${threads} thread(s): max |logit - ours| ${row.max_abs_diff} > tolerance ${row.tol}`,
      );
    }
  assert.is(r.status, 0, `the bench exited with ${r.status}${r.signal ? ` (${r.signal})` : ""}${show()}`);
});

test.run();
