// Builds the wasm kernels (four variants from one source) and the JS bundles into dist/.
import { execFileSync } from "node:child_process";
import { build } from "esbuild";
import { readFileSync, writeFileSync, mkdirSync, copyFileSync, readdirSync, existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { resolve, basename } from "node:path";

const only = process.argv[2];
const targets = ["simd", "relaxed", "simd-single", "relaxed-single"];
if (only !== "js") {
  const newest = (dir) => Math.max(...readdirSync(dir).map((f) => statSync(`${dir}/${f}`).mtimeMs));
  const fresh = existsSync("build/simdnet.relaxed.single.wasm") && statSync("build/simdnet.relaxed.single.wasm").mtimeMs > newest("assembly") && statSync("build/simdnet.relaxed.single.wasm").mtimeMs > statSync("asconfig.json").mtimeMs;
  // the first build takes a while (about 40 s on two cores): say so rather than sit silent
  if (!fresh) console.error(`simdnet: building the WebAssembly kernels (${targets.length} variants; a minute or less, once)...`);
  if (!fresh)
    for (const t of targets) execFileSync(process.execPath, ["node_modules/assemblyscript/bin/asc.js", "assembly/index.ts", "--target", t], { stdio: "inherit" });
}
/** WGSL as text without comments and indentation (WGSL has no strings, so // always starts one). */
/** WGSL without comments, indentation, blank lines, the spaces next to , ; : ( ) { } [ ] * /
 *  and after =, and the line breaks after ; { } , : removing those never joins two tokens into
 *  another (- + < > & | keep their spaces, so a - -b stays; the space before = stays, so
 *  vec4<f32> = x never reads as >=; a line break is whitespace to WGSL, and the ones kept end
 *  lines with a token a name could run into), except that * and / could make a comment marker,
 *  which is refused. The joined lines took 300 bytes off the gzipped download. */
function stripWgsl(src, path) {
  const out = src.replace(/\/\*[\s\S]*?\*\//g, "").split("\n")
    .map((l) => l.replace(/\/\/.*$/, "").trim().replace(/ *([,;:(){}[\]*/]) */g, "$1").replace(/= +/g, "="))
    .filter(Boolean).join("\n").replace(/([;{},])\n/g, "$1");
  if (/\/\/|\/\*|\*\//.test(out)) throw new Error(`${path}: stripping spaces made a comment marker; keep a space there`);
  return out;
}

const wgslStripped = {
  name: "wgsl-stripped",
  setup(b) {
    b.onLoad({ filter: /\.wgsl$/ }, async (args) => ({
      contents: stripWgsl(await readFile(args.path, "utf8"), args.path),
      loader: "text",
    }));
  },
};
/** The library's bundles hold no WGSL: each wgsl/ file becomes a marker naming it, and the
 *  kernels' text is dist/simdnet.wgsl.json, fetched by init({ webgpu: true }) only
 *  (src/webgpu/engine.ts loadKernelText), so a page that never asks for WebGPU does not download it
 *  (about 13 KB gzipped). The onnx bundles keep theirs inline (wgslStripped). */
const wgslDeferred = {
  name: "wgsl-deferred",
  setup(b) {
    b.onLoad({ filter: /\.wgsl$/ }, (args) => ({ contents: `#wgsl:${basename(args.path)}#`, loader: "text" }));
  },
};

/** For dist/browser.js: the browser platform module, and no Node built-in. An import of one
 *  that does not go through src/platform (code that is Node-only anyway) becomes a module that
 *  fails when loaded, with an error naming it, instead of a `node:` import in the bundle. */
const browserPlatform = {
  name: "simdnet-browser-platform",
  setup(b) {
    const neutral = resolve("src/platform/index.ts");
    b.onResolve({ filter: /(^|\/)platform\/index\.js$/ }, (args) =>
      resolve(args.resolveDir, args.path.replace(/\.js$/, ".ts")) === neutral ? { path: resolve("src/platform/browser.ts") } : undefined);
    b.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: "node-builtin" }));
    b.onLoad({ filter: /.*/, namespace: "node-builtin" }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`simdnet: ${args.path} is a Node module; this is simdnet's browser build (in Node, import simdnet from Node so that its "node" export is used)`)});`,
      loader: "js",
    }));
  },
};

if (only !== "wasm") {
  mkdirSync("dist", { recursive: true });
  for (const f of readdirSync("build")) if (f.endsWith(".wasm")) copyFileSync(`build/${f}`, `dist/${f}`);
  const wgsl = {};
  for (const f of readdirSync("wgsl").sort()) if (f.endsWith(".wgsl")) wgsl[f] = stripWgsl(readFileSync(`wgsl/${f}`, "utf8"), `wgsl/${f}`);
  writeFileSync("dist/simdnet.wgsl.json", JSON.stringify(wgsl));
  const common = {
    bundle: true,
    format: "esm",
    target: "es2022",
    sourcemap: true,
    // the .wasm sit next to the bundles (src/engine/wasm.ts)
    define: { __SIMDNET_BUNDLE__: "true" },
    dropLabels: ["FROM_SOURCES"],
    logLevel: "warning",
    loader: { ".wgsl": "text" },
  };
  // The library (browser and Node: node: imports are dynamic and only reached in Node).
  await build({ ...common, entryPoints: ["src/index.ts"], outfile: "dist/index.js", platform: "neutral", external: ["node:*"], plugins: [wgslDeferred] });
  // The browser build (package.json's "browser" and "default" exports): src/platform/browser.ts in
  // place of src/platform/index.ts, so it holds no `node:` import at all and bundlers (esbuild,
  // Vite, webpack, Rollup) have nothing Node-only to resolve. Not minified: the app's bundler
  // minifies it, and it stays readable with its source map.
  // the browser download is a feature: whitespace, syntax and local identifiers minified, and
  // the WGSL without its comments (the .wgsl files keep them). keepNames keeps every function's
  // and class's name (`.name`, which V8's stack traces print, and the modules' printed names);
  // local variables read through the source map. The workers' code (src/engine/pool.ts) gets
  // the name helper it calls from namePrelude.
  // Measured: identifiers minified with keepNames took 4.8 KB off the gzipped download.
  await build({ ...common, entryPoints: ["src/index.ts"], outfile: "dist/browser.js", platform: "browser", plugins: [browserPlatform, wgslDeferred], minifyWhitespace: true, minifySyntax: true, minifyIdentifiers: true, keepNames: true });
  // simdnet/onnx (src/onnx): its import of the library ("../index.js") stays an import of the
  // library's bundle beside it (index.js in Node, browser.js in browsers), so an app that uses both
  // has one engine and one Module class, and apps without ONNX do not download it.
  const libraryAs = (file) => ({
    name: "simdnet-library-external",
    setup(b) {
      b.onResolve({ filter: /^\.\.\/index\.js$/ }, (args) =>
        resolve(args.resolveDir) === resolve("src/onnx") ? { path: `./${file}`, external: true } : undefined);
    },
  });
  await build({ ...common, entryPoints: ["src/onnx/index.ts"], outfile: "dist/onnx.js", platform: "neutral", external: ["node:*"], plugins: [libraryAs("index.js"), wgslStripped] });
  await build({ ...common, entryPoints: ["src/onnx/index.ts"], outfile: "dist/onnx.browser.js", platform: "browser", plugins: [libraryAs("browser.js"), browserPlatform, wgslStripped], minifyWhitespace: true, minifySyntax: true });
  if (existsSync("src/cli.ts"))
    await build({ ...common, define: { ...common.define, __SIMDNET_VERSION__: JSON.stringify(JSON.parse(readFileSync("package.json", "utf8")).version) }, entryPoints: ["src/cli.ts"], outfile: "dist/cli.js", platform: "node", plugins: [wgslDeferred], banner: { js: "#!/usr/bin/env node" } });
  // The type declarations that package.json's "types" names (tsconfig.json: declarations only,
  // into dist/types); about 6 s, so skipped while they are newer than every source file.
  const newestSrc = (dir) => Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) =>
    e.isDirectory() ? newestSrc(`${dir}/${e.name}`) : statSync(`${dir}/${e.name}`).mtimeMs));
  const dts = "dist/types/index.d.ts";
  if (!existsSync(dts) || statSync(dts).mtimeMs < Math.max(newestSrc("src"), statSync("tsconfig.json").mtimeMs))
  {
    console.error("simdnet: writing the type declarations...");
    execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "."], { stdio: "inherit" });
  }
}
