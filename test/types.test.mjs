// The package is typed: package.json's "types" file exists after the build, and the examples of
// README.md and docs/zoo.md typecheck as TypeScript (strict) against it, imported by the
// package's name as a user would. readme.test.mjs and zoo.test.mjs run the same examples.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const blocksOf = (file) => [...readFileSync(join(root, file), "utf8").matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);

// What the examples leave to the reader: README's raw arrays, docs/zoo.md's data set and fs.
const preamble = `import * as sn from "simdnet";
declare const pixels: Float32Array, weights: Float32Array;
declare const data: sn.Dataset;
declare const fs: { readFileSync(path: string): Uint8Array };
`;

/** Runs tsc over the files (name -> text) in a scratch project whose node_modules/simdnet is
 *  this package; returns tsc's output, "" when they typecheck. */
function typecheck(files) {
  const dir = mkdtempSync(join(tmpdir(), "simdnet-types-"));
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(root, join(dir, "node_modules", "simdnet"), "dir");
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
    compilerOptions: { target: "ES2022", module: "ESNext", moduleResolution: "Bundler", lib: ["ES2022", "DOM"], types: [], strict: true, noEmit: true },
    files: Object.keys(files),
  }));
  try {
    execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", dir], { encoding: "utf8" });
    return "";
  } catch (e) {
    return (e.stdout || "") + (e.stderr || "") || String(e);
  }
}

test("package.json's types file exists after the build", () => {
  assert.ok(pkg.types && existsSync(join(root, pkg.types)), `missing ${pkg.types}`);
  assert.is(pkg.exports["."].types, "./" + pkg.types);
});

test("README.md's and docs/zoo.md's examples typecheck against the package's types", () => {
  const files = {};
  for (const doc of ["README.md", "docs/zoo.md"])
    blocksOf(doc).forEach((code, i) => {
      files[`${doc.replace(/\W/g, "_")}_${i + 1}.ts`] = preamble + code.replace(/^import \* as sn from "simdnet";$/m, "");
    });
  assert.ok(Object.keys(files).length >= 5, `found ${Object.keys(files).length} examples`);
  const out = typecheck(files);
  assert.is(out, "", out);
});

test("the typecheck can fail: a wrong call is reported", () => {
  const out = typecheck({ "wrong.ts": preamble + "sn.conv2d(1, 2);\n" });
  assert.match(out, /wrong\.ts.*error TS/);
});

test.run();
