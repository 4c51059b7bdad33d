// The package in a web app, as a user gets it: `npm pack`, installed (offline) into a scratch app
// outside the repo, built with esbuild, Vite (build, and the dev server: Vite 8's, and Vite 7's,
// whose dependency pre-bundling leaves the .wasm behind), webpack 5 and Rollup, each run from this
// repo's devDependencies through its JS API, served by a static server of our own with and
// without COOP/COEP, and loaded in Debian's chromium. The app is README's "Using it in a web app"
// example (main.js starts worker.js, which trains a tiny model): on an isolated page the worker
// runs threads, on a plain one a single thread; the loss must be finite and fall. main.js also
// runs init() on the page's main thread (one thread there). Nothing is fetched from outside.
// Vite 7 is the devDependency "vite7" (an npm alias of vite@7); node_modules/.bin/vite may be
// either version's, and nothing here runs it.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { pathToFileURL } from "node:url";
import * as sn from "../dist/index.js";
import { launchBrowser } from "./browser/launch.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const WASM = ["simdnet.relaxed.wasm", "simdnet.relaxed.single.wasm", "simdnet.simd.wasm", "simdnet.simd.single.wasm"];
const timings = {}, sizes = {};

/** The README block fenced as ```js NAME */
function readmeFile(name) {
  const text = readFileSync(join(root, "README.md"), "utf8");
  const m = text.match(new RegExp("```js " + name.replace(".", "\\.") + "\\n([\\s\\S]*?)```"));
  if (!m) throw new Error(`README.md has no \`\`\`js ${name} block`);
  return m[1];
}

// What the test adds to README's main.js: the library on the page's main thread as well.
const PAGE_CHECK = `
// (test) simdnet on the page's main thread too: one thread there, whatever the headers
import * as sn from "simdnet";
sn.init().then((info) => console.log({ page: true, threads: info.threads, mean: sn.mean(sn.tensor(new Float32Array([1, 2, 3]), [3])).item() }));
`;
// the setWasmPath case: the .wasm in out/wasm/, named by a relative path, resolved against the
// page (document.baseURI) and the worker script's URL; set-wasm-path.js runs before the app
const SET_WASM_PATH = `import { setWasmPath } from "simdnet";
setWasmPath("wasm");
`;
const HTML_CLASSIC = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body><script src="main.js"></script></body></html>\n`;
const HTML_MODULE = HTML_CLASSIC.replace("<script src", '<script type="module" src');

let work, app, browser;

/** A static server of files under `dir`; `isolation`: the two headers that make a page
 *  cross-origin isolated. */
function serve(dir, { isolation }) {
  const types = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".map": "application/json" };
  const server = createServer(async (req, res) => {
    let file = normalize(join(dir, decodeURIComponent(new URL(req.url, "http://x").pathname)));
    if (file !== dir && !file.startsWith(dir + sep)) return res.writeHead(403).end();
    try {
      if ((await stat(file)).isDirectory()) file = join(file, "index.html");
      const body = await readFile(file);
      const headers = { "content-type": types[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" };
      if (isolation) Object.assign(headers, { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" });
      res.writeHead(200, headers).end(body);
    } catch {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    }
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve({ url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) })),
  );
}

/** Opens `url`; waits for the worker's result and the page's; returns both and what went wrong. */
async function openApp(url, timeoutMs = 60000) {
  const page = await browser.newPage();
  const problems = [], wasm = [];
  let worker = null, onPage = null;
  const done = new Promise((resolve) => {
    const take = async (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
      if (m.type() !== "log") return;
      const v = await m.args()[0]?.jsonValue().catch(() => null);
      if (v?.losses) worker = v;
      if (v?.page) onPage = v;
      if (worker && onPage) resolve();
    };
    page.on("console", take);
    page.on("worker", (w) => w.on?.("console", (m) => m.type() === "error" && problems.push(`worker console: ${m.text()}`)));
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
    if (/\.wasm(\?|$)/.test(r.url())) wasm.push(r.url());
  });
  const t0 = Date.now();
  let timedOut = false;
  try {
    await page.goto(url);
    let timer;
    await Promise.race([done, new Promise((r) => (timer = setTimeout(() => r((timedOut = true)), timeoutMs)))]);
    clearTimeout(timer);
    const { isolated, cores } = await page.evaluate(() => ({ isolated: self.crossOriginIsolated, cores: navigator.hardwareConcurrency }));
    return { worker, onPage, problems, wasm, isolated, cores, timedOut, ms: Date.now() - t0 };
  } finally {
    await page.close();
  }
}

function checkRun(where, r, { isolated }) {
  assert.equal(r.problems, [], `${where}: problems on the page`);
  assert.ok(!r.timedOut, `${where}: no result within the time limit (worker: ${JSON.stringify(r.worker)}, page: ${JSON.stringify(r.onPage)})`);
  assert.is(r.isolated, isolated, `${where}: crossOriginIsolated`);
  assert.ok(r.wasm.length > 0, `${where}: no .wasm was fetched`);
  const { threads, losses } = r.worker;
  assert.is(threads, isolated ? Math.min(r.cores, 64) : 1, `${where}: threads in the worker (init()'s default: every core where it can)`);
  assert.ok(losses.length === 10 && losses.every(Number.isFinite), `${where}: losses ${losses}`);
  assert.ok(losses.at(-1) < losses[0] / 4 && losses.slice(1).every((l, i) => l < losses[i]), `${where}: the loss does not fall: ${losses}`);
  assert.is(r.onPage.threads, 1, `${where}: threads on the page's main thread`);
  assert.is(r.onPage.mean, 2, `${where}: a small op on the page`);
}

/** Serves `dir` with and without isolation and checks both runs. */
async function checkServed(where, dir) {
  for (const isolated of [true, false]) {
    const server = await serve(dir, { isolation: isolated });
    try {
      const r = await openApp(server.url);
      timings[`${where}, ${isolated ? "isolated" : "plain"} page`] = r.ms;
      checkRun(`${where} (${isolated ? "isolated" : "not isolated"})`, r, { isolated });
    } finally {
      await server.close();
    }
  }
}

async function rejects(promise, check, what) {
  try {
    await promise;
  } catch (e) {
    assert.ok(check(e), `${what}: ${e.message}`);
    return;
  }
  assert.unreachable(`${what}: did not throw`);
}

const assetsIn = (dir) => readdirSync(dir, { recursive: true }).map(String);
/** KB of the app's JavaScript as its bundler wrote it, gzipped (the library is nearly all of it) */
/** Whether a build emitted dist/simdnet.wgsl.json (under any name: webpack names assets by hash). */
const emitsWgsl = (dir) => assetsIn(dir).some((f) => f.endsWith(".json") && readFileSync(join(dir, f), "utf8").includes('"conv.wgsl":'));
const jsKb = (dir) => +(assetsIn(dir).filter((f) => f.endsWith(".js")).reduce((n, f) => n + gzipSync(readFileSync(join(dir, f)), { level: 9 }).length, 0) / 1024).toFixed(1);

test.before(async () => {
  work = mkdtempSync(join(tmpdir(), "simdnet-bundlers-"));
  let t = Date.now();
  const packed = execFileSync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], { cwd: root, encoding: "utf8" });
  const tarball = join(work, JSON.parse(packed)[0].filename);
  timings["npm pack"] = Date.now() - t;
  app = join(work, "app");
  mkdirSync(join(app, "src"), { recursive: true });
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  writeFileSync(join(app, "index.html"), HTML_MODULE.replace('src="main.js"', 'src="/src/main.js"'));
  writeFileSync(join(app, "src", "main.js"), readmeFile("main.js") + PAGE_CHECK);
  writeFileSync(join(app, "src", "worker.js"), readmeFile("worker.js"));
  writeFileSync(join(app, "src", "set-wasm-path.js"), SET_WASM_PATH);
  writeFileSync(join(app, "src", "main-wasm-path.js"), 'import "./set-wasm-path.js";\nimport "./main.js";\n');
  writeFileSync(join(app, "src", "worker-wasm-path.js"), 'import "./set-wasm-path.js";\nimport "./worker.js";\n');
  writeFileSync(join(app, "vite.config.js"), readmeFile("vite.config.js"));
  t = Date.now();
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", tarball], { cwd: app, stdio: "pipe" });
  timings["npm install"] = Date.now() - t;
  browser = await launchBrowser();
});

test.after(async () => {
  await browser?.close();
  if (work) rmSync(work, { recursive: true, force: true });
  console.log("bundlers: times (ms):", JSON.stringify(timings));
  console.log("bundlers: the app's JavaScript, gzipped (KB; main and worker each hold the library, except Rollup's shared chunk):", JSON.stringify(sizes));
});

test("dist/browser.js: no node: import and no import() at all; with one .wasm under 150 KB gzipped (with WebGPU's kernels, under 165 KB)", () => {
  const js = readFileSync(join(root, "dist/browser.js"), "utf8");
  assert.not.match(js, /\bimport\s*\(|\bfrom\s*["']node:|\brequire\s*\(\s*["'`]node:|^\s*import\s*["']node:/m);
  const jsGz = gzipSync(js, { level: 9 }).length;
  const wasmGz = Math.max(...WASM.map((f) => gzipSync(readFileSync(join(root, "dist", f)), { level: 9 }).length));
  // fetched by init({ webgpu: true }) only (src/webgpu/engine.ts)
  const wgslGz = gzipSync(readFileSync(join(root, "dist/simdnet.wgsl.json")), { level: 9 }).length;
  console.log(`bundlers: dist/browser.js ${(js.length / 1024).toFixed(0)} KB, gzipped ${(jsGz / 1024).toFixed(1)} KB, + one .wasm ${(wasmGz / 1024).toFixed(1)} KB gzipped; + simdnet.wgsl.json ${(wgslGz / 1024).toFixed(1)} KB gzipped with WebGPU`);
  assert.ok(jsGz + wasmGz < 150 * 1024, `${jsGz} + ${wasmGz} bytes gzipped`);
  assert.ok(jsGz + wasmGz + wgslGz < 165 * 1024, `${jsGz} + ${wasmGz} + ${wgslGz} bytes gzipped`);
});

test("dist/browser.js: its identifiers are minified, its functions' and classes' names kept (stack traces, printed modules)", async () => {
  // (this build fetches its .wasm, which Node's fetch cannot do from a file: no init here; its
  // workers, whose code is the text of functions in the bundle, start in the pages above)
  const sn = await import(pathToFileURL(join(root, "dist/browser.js")).href);
  for (const name of ["Conv2d", "Linear", "BatchNorm2d", "Sequential"]) assert.is(sn.nn[name].name, name);
  assert.is(sn.GpuError.name, "GpuError");
  // a library function's own name in an error's stack
  let stack = "";
  try {
    sn.tensor([1], [1], { requiresGrad: true });
  } catch (e) {
    stack = e.stack;
  }
  assert.match(stack, /\n\s+at checkEngine \(/);
  assert.match(readFileSync(join(root, "dist/browser.js"), "utf8").slice(0, 200), /^var [A-Za-z_$]{1,3}=Object\.defineProperty;/, "identifiers minified");
});

test("Node: the installed package resolves to dist/index.js and runs", () => {
  const code = `import * as sn from "simdnet";
const info = await sn.init({ threads: 2 });
console.log(JSON.stringify({ file: import.meta.resolve("simdnet"), threads: info.threads, mean: sn.mean(sn.tensor(new Float32Array([1, 2, 3]), [3])).item() }));
sn.dispose();`;
  writeFileSync(join(app, "node-check.mjs"), code);
  const r = JSON.parse(execFileSync(process.execPath, ["node-check.mjs"], { cwd: app, encoding: "utf8" }));
  assert.match(r.file, /node_modules\/simdnet\/dist\/index\.js$/);
  assert.is(r.mean, 2);
  assert.is(r.threads, 2);
});

test("esbuild: the bundle builds with no flag; with the .wasm copied next to it, it trains", async () => {
  const { build } = await import("esbuild");
  const out = join(work, "out-esbuild");
  const t = Date.now();
  const r = await build({ entryPoints: [join(app, "src/main.js"), join(app, "src/worker.js")], bundle: true, format: "esm", minify: true, outdir: out, metafile: true, logLevel: "silent", absWorkingDir: app });
  timings["esbuild build"] = Date.now() - t;
  assert.ok(Object.keys(r.metafile.inputs).some((f) => f.endsWith("node_modules/simdnet/dist/browser.js")), "esbuild took dist/browser.js");
  assert.equal(r.warnings, []);
  sizes.esbuild = jsKb(out);
  for (const f of WASM) copyFileSync(join(app, "node_modules/simdnet/dist", f), join(out, f)); // README: cp node_modules/simdnet/dist/*.wasm out/
  writeFileSync(join(out, "index.html"), HTML_MODULE);
  await checkServed("esbuild", out);
});

test("esbuild: the .wasm elsewhere, named by setWasmPath with a relative path", async () => {
  const { build } = await import("esbuild");
  const out = join(work, "out-esbuild-wasm-path");
  await build({ entryPoints: { main: join(app, "src/main-wasm-path.js"), worker: join(app, "src/worker-wasm-path.js") }, bundle: true, format: "esm", outdir: out, logLevel: "silent", absWorkingDir: app });
  mkdirSync(join(out, "wasm"));
  for (const f of WASM) copyFileSync(join(app, "node_modules/simdnet/dist", f), join(out, "wasm", f));
  writeFileSync(join(out, "index.html"), HTML_MODULE);
  const server = await serve(out, { isolation: true });
  try {
    const r = await openApp(server.url);
    checkRun("esbuild + setWasmPath", r, { isolated: true });
    assert.ok(r.wasm.every((u) => u.startsWith(server.url + "wasm/")), r.wasm.join(", "));
  } finally {
    await server.close();
  }
});

test("Vite build: zero configuration", async () => {
  const vite = await import("vite");
  const out = join(work, "out-vite");
  const t = Date.now();
  await vite.build({ root: app, configFile: false, logLevel: "silent", build: { outDir: out, emptyOutDir: true } });
  timings["vite build"] = Date.now() - t;
  assert.is(assetsIn(out).filter((f) => f.endsWith(".wasm")).length, 4, "the four .wasm emitted");
  assert.ok(emitsWgsl(out), "simdnet.wgsl.json emitted (the WebGPU kernels, fetched by init({ webgpu: true }))");
  sizes.vite = jsKb(out);
  await checkServed("vite build", out);
});

/** The dev server of `vite` (the module), on the app; `config`: README's vite.config.js (the
 *  headers) or none. Pre-bundling is forced, as on a first start. */
async function viteDev(where, vite, { config, isolated }) {
  const server = await vite.createServer({
    root: app,
    configFile: config ? join(app, "vite.config.js") : false,
    logLevel: "silent",
    clearScreen: false,
    optimizeDeps: { force: true },
    server: { host: "127.0.0.1", port: 0, strictPort: false },
  });
  await server.listen();
  try {
    const r = await openApp(server.resolvedUrls.local[0], 90000);
    timings[where] = r.ms;
    checkRun(where, r, { isolated });
    return r;
  } finally {
    await server.close();
  }
}

test("Vite dev server: zero configuration; with README's vite.config.js, threads", async () => {
  const vite = await import("vite");
  await viteDev("vite dev", vite, { config: false, isolated: false });
  await viteDev("vite dev, vite.config.js", vite, { config: true, isolated: true });
});

test("Vite 7 dev server: pre-bundled without the .wasm, which simdnet then finds in node_modules/simdnet/dist/", async () => {
  const vite = await import("vite7");
  assert.match(vite.version, /^7\./);
  const r = await viteDev("vite 7 dev", vite, { config: false, isolated: false });
  assert.ok(r.wasm.some((u) => /\/node_modules\/\.vite\/deps\/simdnet\.[a-z.]+\.wasm$/.test(u)), `first try from the deps folder: ${r.wasm}`);
  assert.ok(r.wasm.some((u) => /\/node_modules\/simdnet\/dist\/simdnet\.[a-z.]+\.wasm$/.test(u)), `then from the package: ${r.wasm}`);
});

test("webpack 5: zero configuration (production mode)", async () => {
  const { default: webpack } = await import("webpack");
  const out = join(work, "out-webpack");
  const t = Date.now();
  const stats = await new Promise((resolve, reject) => {
    const compiler = webpack({ mode: "production", context: app, entry: "./src/main.js", output: { path: out }, infrastructureLogging: { level: "error" } });
    compiler.run((err, s) => compiler.close(() => (err ? reject(err) : resolve(s))));
  });
  timings["webpack build"] = Date.now() - t;
  const info = stats.toJson({ all: false, errors: true, warnings: true });
  assert.equal(info.errors.map((e) => e.message), [], "webpack errors");
  // (not the size hints of production mode, which depend on the app)
  assert.equal(info.warnings.map((e) => e.message).filter((m) => !/recommended size limit|entrypoint size limit|performance recommendations/.test(m)), [], "webpack warnings");
  assert.is(assetsIn(out).filter((f) => f.endsWith(".wasm")).length, 4, "the four .wasm emitted");
  assert.ok(emitsWgsl(out), "simdnet.wgsl.json emitted (the WebGPU kernels, fetched by init({ webgpu: true }))");
  sizes.webpack = jsKb(out);
  writeFileSync(join(out, "index.html"), HTML_CLASSIC);
  await checkServed("webpack", out);
});

test("Rollup: node-resolve and import-meta-assets", async () => {
  const { rollup } = await import("rollup");
  const { nodeResolve } = await import("@rollup/plugin-node-resolve");
  const { importMetaAssets } = await import("@web/rollup-plugin-import-meta-assets");
  const out = join(work, "out-rollup");
  const warnings = [];
  const t = Date.now();
  const bundle = await rollup({
    input: { main: join(app, "src/main.js"), worker: join(app, "src/worker.js") },
    plugins: [nodeResolve(), importMetaAssets({ include: "**/node_modules/**" })],
    onwarn: (w) => warnings.push(w.message),
  });
  await bundle.write({ dir: out, format: "es", entryFileNames: "[name].js" });
  await bundle.close();
  timings["rollup build"] = Date.now() - t;
  assert.equal(warnings, [], "rollup warnings");
  assert.is(assetsIn(out).filter((f) => f.endsWith(".wasm")).length, 4, "the four .wasm emitted");
  assert.ok(emitsWgsl(out), "simdnet.wgsl.json emitted (the WebGPU kernels, fetched by init({ webgpu: true }))");
  sizes.rollup = jsKb(out);
  writeFileSync(join(out, "index.html"), HTML_MODULE);
  await checkServed("rollup", out);
});

test("setWasmPath in Node: a relative path is a folder under process.cwd()", async () => {
  const dir = join(work, "cwd");
  mkdirSync(join(dir, "kernels", "a b#1"), { recursive: true });
  for (const f of WASM) copyFileSync(join(root, "dist", f), join(dir, "kernels", "a b#1", f));
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    sn.setWasmPath("kernels/a b#1"); // no final slash; a space and a # in the name
    const info = await sn.init({ threads: 1 });
    assert.ok(info.build === "relaxed" || info.build === "simd");
    sn.dispose();
    sn.setWasmPath("./nowhere/");
    await rejects(sn.init({ threads: 1 }), (e) => /could not read .*nowhere\/simdnet\.[a-z.]+\.wasm/.test(e.message), "no such folder");
  } finally {
    process.chdir(cwd);
    sn.setWasmPath(new URL("../dist/", import.meta.url));
  }
});

test("init() says what is wrong when a .wasm is missing or a page stands in its place", async () => {
  const server = createServer((req, res) =>
    req.url.startsWith("/html/") ? res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><p>app</p>") : res.writeHead(404).end(),
  );
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${server.address().port}/`;
  try {
    sn.setWasmPath(base + "html");
    await rejects(sn.init({ threads: 1 }), (e) => /is not WebAssembly \(it starts with "<!do": an HTML page/.test(e.message) && /setWasmPath/.test(e.message), "HTML");
    sn.setWasmPath(base + "missing/");
    await rejects(sn.init({ threads: 1 }), (e) => /HTTP 404/.test(e.message) && /esbuild does not: copy them/.test(e.message), "404");
  } finally {
    server.close();
    sn.setWasmPath(new URL("../dist/", import.meta.url));
  }
  await sn.init({ threads: 1 });
  sn.dispose();
});

test.run();
