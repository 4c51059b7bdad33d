// Loading the kernels: two builds from one source, relaxed SIMD and baseline SIMD (which one
// runs: buildchoice.ts).
import { CTRL } from "./pool.js";
import { folderUrl, isNode, nodeFsPromises } from "../platform/index.js";

export type Build = "relaxed" | "simd";

const cache = new Map<string, Promise<WebAssembly.Module>>();

/** The folder the .wasm files are loaded from, if the user named one (setWasmPath). */
let wasmBase: URL | null = null;

/** Load the .wasm files from `folder` instead of next to the library's bundle: a URL, or a
 *  path, absolute or relative. A relative one is resolved now, against the page's base URL
 *  (document.baseURI) in a page, the worker script's URL in a worker, process.cwd() in Node;
 *  a missing final "/" is added (it names a folder). */
export function setWasmPath(folder: string | URL): void {
  wasmBase = resolveFolder(folder);
  cache.clear();
}

function resolveFolder(folder: string | URL): URL {
  if (folder instanceof URL) return new URL(folder.href.endsWith("/") ? folder.href : folder.href + "/");
  if (typeof folder !== "string" || !folder) throw new TypeError(`simdnet: setWasmPath needs a folder (a URL or a path), got ${JSON.stringify(folder)}`);
  // a scheme of two letters or more (https:, file:, blob:; C: is a Windows drive)
  if (/^[a-zA-Z][a-zA-Z\d+.-]+:/.test(folder)) return new URL(folder.endsWith("/") ? folder : folder + "/");
  return folderUrl(folder);
}

/** Set by tools/build.mjs in the bundles (dist/index.js, dist/browser.js): the .wasm sit next
 *  to them. Not defined when the sources run as they are (their .wasm are in build/). */
declare const __SIMDNET_BUNDLE__: boolean | undefined;

function fileUrl(build: Build, shared: boolean): URL {
  // The .single builds import a plain (unshared) memory: pages without cross-origin isolation.
  const name = `simdnet.${build}${shared ? "" : ".single"}.wasm`;
  if (wasmBase) return new URL(name, wasmBase);
  // From the sources as they are: the .wasm are in build/. The bundles leave this statement out
  // (esbuild's dropLabels in tools/build.mjs), so an app's bundler never sees a computed URL.
  FROM_SOURCES: if (typeof __SIMDNET_BUNDLE__ === "undefined") return new URL(`../../build/${name}`, import.meta.url);
  // One literal `new URL("./file", import.meta.url)` per file: the form that Vite, webpack 5
  // and Rollup (with @web/rollup-plugin-import-meta-assets) recognise, so that an app's build
  // emits the four files and rewrites these URLs to where it put them. Keep them literal (a
  // computed name is not followed); see README "Using it in a web app".
  if (build === "relaxed")
    return shared ? new URL("./simdnet.relaxed.wasm", import.meta.url) : new URL("./simdnet.relaxed.single.wasm", import.meta.url);
  return shared ? new URL("./simdnet.simd.wasm", import.meta.url) : new URL("./simdnet.simd.single.wasm", import.meta.url);
}

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

/** What to do when a file is not where the library looks for it. */
function notFoundHelp(url: URL): string {
  return (
    `. The four simdnet.*.wasm files from node_modules/simdnet/dist/ (and simdnet.wgsl.json, for WebGPU) must be served next to the bundle that holds simdnet ` +
    `(Vite, webpack 5 and Rollup with @web/rollup-plugin-import-meta-assets emit them by themselves; esbuild does not: copy them into its output folder), ` +
    `or call setWasmPath(folder) with the folder they are served from before init(). Looked for ${url.href}`
  );
}

/** What the start of a file that should have been another says it is. */
function notWhatWasAsked(url: URL, head: Uint8Array, what: string): Error {
  const text = new TextDecoder().decode(head);
  return new Error(
    `simdnet: ${url.href} is not ${what} (it starts with ${JSON.stringify(text)}: ` +
      (/^\s*</.test(text) ? "an HTML page, likely a dev server's answer for a file it does not have" : "some other file") +
      `)${notFoundHelp(url)}`,
  );
}

async function loadBytes(url: URL): Promise<ArrayBuffer | Uint8Array> {
  const bytes = await readFile(url);
  const head = new Uint8Array(bytes instanceof ArrayBuffer ? bytes : bytes.buffer, bytes instanceof ArrayBuffer ? 0 : bytes.byteOffset, Math.min(4, bytes.byteLength));
  if (head.length < 4 || WASM_MAGIC.some((b, i) => head[i] !== b)) throw notWhatWasAsked(url, head, "WebAssembly");
  return bytes;
}

async function readFile(url: URL): Promise<ArrayBuffer | Uint8Array> {
  let bytes: ArrayBuffer | Uint8Array;
  if (isNode && url.protocol === "file:") {
    const fs = await nodeFsPromises();
    try {
      bytes = await fs.readFile(url);
    } catch (e) {
      throw new Error(`simdnet: could not read ${decodeURIComponent(url.pathname)}: ${(e as Error).message} (setWasmPath(folder) names the folder that holds the .wasm files)`);
    }
  } else {
    let r: Response;
    try {
      r = await fetch(url);
    } catch (e) {
      throw new Error(`simdnet: could not load ${url.href}: ${(e as Error).message}${notFoundHelp(url)}`);
    }
    if (!r.ok) throw new Error(`simdnet: could not load ${url.href}: HTTP ${r.status}${notFoundHelp(url)}`);
    bytes = await r.arrayBuffer();
  }
  return bytes;
}

/** Vite's dev server before Vite 8 copies a dependency, pre-bundled, into
 *  node_modules/.vite/deps/ but not the files it finds with `new URL(..., import.meta.url)`, and
 *  answers for the missing file with the app's index.html. The package's own copy is served
 *  from node_modules/simdnet/dist/, which is where the file is then looked for. */
function viteDepsFallback(url: URL): URL | null {
  const m = /^(.*\/node_modules\/)\.vite\/deps[^/]*\/(simdnet\.[a-z.]+\.(?:wasm|json))$/.exec(url.pathname);
  return m ? new URL(`${m[1]}simdnet/dist/${m[2]}`, url) : null;
}

async function loadKernels<T>(url: URL, load: (url: URL) => Promise<T>): Promise<T> {
  try {
    return await load(url);
  } catch (e) {
    const alt = wasmBase ? null : viteDepsFallback(url);
    if (!alt) throw e;
    try {
      return await load(alt);
    } catch {
      throw e;
    }
  }
}

/** The WebGPU kernels' text, by wgsl/ file name: dist/simdnet.wgsl.json (tools/build.mjs), next
 *  to the bundle or in setWasmPath's folder; fetched by init({ webgpu: true }) only. */
export function loadWgsl(): Promise<Record<string, string>> {
  // a literal new URL(..., import.meta.url), as for the .wasm files: bundlers emit the file
  const url = wasmBase ? new URL("simdnet.wgsl.json", wasmBase) : new URL("./simdnet.wgsl.json", import.meta.url);
  return loadKernels(url, async (u) => {
    const raw = await readFile(u), bytes = raw instanceof Uint8Array ? raw : new Uint8Array(raw);
    try {
      const files = JSON.parse(new TextDecoder().decode(bytes));
      if (files && typeof files === "object" && Object.values(files).every((v) => typeof v === "string")) return files;
    } catch {}
    throw notWhatWasAsked(u, bytes.subarray(0, 16), "simdnet's WebGPU kernels");
  });
}

export function compileBuild(build: Build, shared: boolean): Promise<WebAssembly.Module> {
  const key = build + shared;
  let p = cache.get(key);
  if (!p) {
    p = loadKernels(fileUrl(build, shared), loadBytes).then((b) => {
      const end = staticDataEnd(new Uint8Array(b as ArrayBuffer));
      if (end > CTRL) throw new Error(`simdnet: the kernels' static data ends at ${end}, past the pool's control block at ${CTRL}`);
      return WebAssembly.compile(b as BufferSource);
    });
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

/** End address of the module's active data segments (0 if none). Each instance copies them
 *  into the shared memory when it starts, so they must not overlap anything written at run time. */
export function staticDataEnd(bytes: Uint8Array): number {
  let at = 8, end = 0;
  const leb = () => {
    let v = 0, shift = 0, b;
    do {
      b = bytes[at++];
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return v;
  };
  while (at < bytes.length) {
    const id = bytes[at++];
    const len = leb();
    const next = at + len;
    if (id === 11) {
      const count = leb();
      for (let i = 0; i < count; i++) {
        const flags = leb();
        if (flags === 1) { // passive: not copied on instantiation
          at += leb();
          continue;
        }
        if (flags === 2) leb(); // memory index
        if (bytes[at++] !== 0x41) throw new Error("simdnet: unexpected data segment offset in the kernels");
        const offset = leb(); // i32.const (small positive offsets: unsigned LEB reads the same)
        at++; // end
        const size = leb();
        end = Math.max(end, offset + size);
        at += size;
      }
    }
    at = next;
  }
  return end;
}
