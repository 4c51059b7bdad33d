// The one place the library reaches Node's built-in modules. Each is imported dynamically, and
// only on a Node-only path, so this file (and dist/index.js built from it) also loads in
// browsers. The browser build (dist/browser.js, the package's "browser" export) uses
// browser.ts in its place: no `node:` specifier at all, so bundlers have nothing to resolve.
// Both files export the same names (browser.ts is typed against this one).

import { webFolderUrl } from "./web.js";

/** Running in Node (or Deno/Bun with Node's API), not in a browser page or worker. */
export const isNode: boolean =
  typeof process !== "undefined" && !!(process as any).versions?.node && typeof (globalThis as any).window === "undefined";

export const nodeFs = (): Promise<typeof import("node:fs")> => import("node:fs");
export const nodeFsPromises = () => import("node:fs/promises");
export const nodePath = () => import("node:path");
export const nodeOs = () => import("node:os");
export const nodeV8 = () => import("node:v8");
export const nodeModule = () => import("node:module");
export const nodeZlib = () => import("node:zlib");
export const nodeWorkerThreads = () => import("node:worker_threads");
/** The npm package `webgpu` (Dawn), an optional peer dependency: WebGPU in Node. Its name is in
 *  a variable so that bundlers leave it alone (browsers have navigator.gpu). */
export const nodeWebgpu = (): Promise<any> => {
  const pkg = "webgpu";
  return import(/* @vite-ignore */ /* webpackIgnore: true */ pkg);
};

/** A folder named by a path, as a URL ending in "/". In Node a file path, absolute (POSIX or
 *  Windows) or relative to process.cwd(); elsewhere a URL path, relative to the page's base URL
 *  (document.baseURI) or, in a worker, the worker script's URL. */
export function folderUrl(path: string): URL {
  if (!isNode) return webFolderUrl(path);
  let p = path.replace(/\\/g, "/");
  if (!p.startsWith("/") && !/^[a-zA-Z]:\//.test(p)) p = process.cwd().replace(/\\/g, "/").replace(/\/?$/, "/") + p;
  if (!p.startsWith("/")) p = "/" + p; // C:/x -> /C:/x
  if (!p.endsWith("/")) p += "/";
  return new URL("file://" + encodeURI(p).replace(/\?/g, "%3F").replace(/#/g, "%23"));
}
