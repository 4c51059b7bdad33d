// Node's side of the browser tests: the fixture cases' hashes (cases.mjs) computed in Node, per
// kernel build, and the check that a browser got the same bits. init() picks a build per runtime
// (src/engine/buildchoice.ts), so each browser result is compared with Node on its own build.
import * as assert from "uvu/assert";
import { readdirSync, readFileSync } from "node:fs";
import * as sn from "../../dist/index.js";
import { runCases } from "./cases.mjs";

/** The fixture files the browsers run (the model_ files are for other tests). */
export const fixtureFiles = readdirSync(new URL("../fixtures/", import.meta.url)).filter((f) => f.endsWith(".safetensors") && !f.startsWith("model_"));

const results = new Map();
async function nodeResult(build) {
  if (!results.has(build)) {
    await sn.init({ threads: 2, minParallelWork: 0, build });
    results.set(build, runCases(sn, fixtureFiles.map((name) => ({ name, bytes: readFileSync(new URL(`../fixtures/${name}`, import.meta.url)) }))));
    sn.dispose();
  }
  return results.get(build);
}

/** Assert that `got` (runCases' hashes from a browser) has the bits Node gets with `build`. */
export async function sameBitsAsNode(where, build, got) {
  const want = await nodeResult(build);
  const keys = Object.keys(want);
  assert.ok(keys.length > 0, "no fixture cases");
  assert.equal(Object.keys(got).length, keys.length, `${where}: number of cases`);
  for (const k of keys) assert.equal(got[k], want[k], `${where} (${build} build): ${k}: bits differ from Node`);
}
