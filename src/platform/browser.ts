// The browser build's platform (tools/build.mjs puts it in place of index.ts for
// dist/browser.js): no Node built-ins, so the bundle holds no `node:` import for a bundler to
// trip over. The Node-only paths that would use them are never reached (isNode is false); if one
// is called anyway it fails with an error naming the module.
import type * as Neutral from "./index.js";
import type * as Self from "./browser.js";

export const isNode: typeof Neutral.isNode = false;

const nodeOnly = (name: string): (() => Promise<never>) => () =>
  Promise.reject(new Error(`simdnet: ${name} is a Node module; this is simdnet's browser build (in Node, import simdnet from Node so that its "node" export is used)`));

export const nodeFs: typeof Neutral.nodeFs = nodeOnly("node:fs");
export const nodeFsPromises: typeof Neutral.nodeFsPromises = nodeOnly("node:fs/promises");
export const nodePath: typeof Neutral.nodePath = nodeOnly("node:path");
export const nodeOs: typeof Neutral.nodeOs = nodeOnly("node:os");
export const nodeV8: typeof Neutral.nodeV8 = nodeOnly("node:v8");
export const nodeModule: typeof Neutral.nodeModule = nodeOnly("node:module");
export const nodeZlib: typeof Neutral.nodeZlib = nodeOnly("node:zlib");
export const nodeWorkerThreads: typeof Neutral.nodeWorkerThreads = nodeOnly("node:worker_threads");
export const nodeWebgpu: typeof Neutral.nodeWebgpu = nodeOnly("webgpu (Dawn, WebGPU for Node; browsers have navigator.gpu)");

export { webFolderUrl as folderUrl } from "./web.js";

// browser.ts exports what index.ts exports, with the same types (a type error here otherwise)
type Assert<T extends true> = T;
export type SameApiAsIndex = Assert<typeof Self extends typeof Neutral ? true : false>;
