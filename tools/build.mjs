// Builds the wasm kernels (four variants from one source) and the JS bundles into dist/.
import { execFileSync } from "node:child_process";
import { build } from "esbuild";
import { mkdirSync, copyFileSync, readdirSync, existsSync, statSync } from "node:fs";

const only = process.argv[2];
const targets = ["simd", "relaxed", "simd-single", "relaxed-single"];
if (only !== "js") {
  const newest = (dir) => Math.max(...readdirSync(dir).map((f) => statSync(`${dir}/${f}`).mtimeMs));
  const fresh = existsSync("build/simdnet.relaxed.single.wasm") && statSync("build/simdnet.relaxed.single.wasm").mtimeMs > newest("assembly") && statSync("build/simdnet.relaxed.single.wasm").mtimeMs > statSync("asconfig.json").mtimeMs;
  if (!fresh)
    for (const t of targets) execFileSync(process.execPath, ["node_modules/assemblyscript/bin/asc.js", "assembly/index.ts", "--target", t], { stdio: "inherit" });
}
if (only !== "wasm") {
  mkdirSync("dist", { recursive: true });
  for (const f of readdirSync("build")) if (f.endsWith(".wasm")) copyFileSync(`build/${f}`, `dist/${f}`);
  const common = {
    bundle: true,
    format: "esm",
    target: "es2022",
    sourcemap: true,
    define: { __SIMDNET_WASM_DIR__: '"./"' },
    logLevel: "warning",
    loader: { ".wgsl": "text" },
  };
  // The library (browser and Node: node: imports are dynamic and only reached in Node).
  await build({ ...common, entryPoints: ["src/index.ts"], outfile: "dist/index.js", platform: "neutral", external: ["node:*"] });
  if (existsSync("src/cli.ts"))
    await build({ ...common, entryPoints: ["src/cli.ts"], outfile: "dist/cli.js", platform: "node", banner: { js: "#!/usr/bin/env node" } });
  // The type declarations that package.json's "types" names (tsconfig.json: declarations only,
  // into dist/types); about 6 s, so skipped while they are newer than every source file.
  const newestSrc = (dir) => Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) =>
    e.isDirectory() ? newestSrc(`${dir}/${e.name}`) : statSync(`${dir}/${e.name}`).mtimeMs));
  const dts = "dist/types/index.d.ts";
  if (!existsSync(dts) || statSync(dts).mtimeMs < Math.max(newestSrc("src"), statSync("tsconfig.json").mtimeMs))
    execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "."], { stdio: "inherit" });
}
