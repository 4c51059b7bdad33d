// Shared by the browser tests and bench/browser.mjs: starting Debian's chromium through
// playwright-core (headless, no GPU, nothing fetched from outside), the demo's server, and a
// page that records everything that goes wrong in it.
import { existsSync } from "node:fs";
export { startServer } from "../../demo/server.mjs";

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** webgpu: WebGPU on (SwiftShader, a CPU implementation, with no GPU). */
export async function launchBrowser({ webgpu = false } = {}) {
  if (!existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  const { chromium } = await import("playwright-core");
  return chromium.launch({ executablePath: CHROMIUM, args: webgpu ? [...ARGS, "--enable-unsafe-webgpu"] : ARGS });
}

/** A new page whose problems are collected: uncaught errors, console errors, failed requests
 *  (with their URL) and every URL requested. */
export async function watchedPage(browserOrContext) {
  const page = await browserOrContext.newPage();
  const log = { errors: [], failed: [], requests: [] };
  page.on("pageerror", (e) => log.errors.push(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && log.errors.push(`console: ${m.text()}`));
  page.on("requestfailed", (r) => log.failed.push(`${r.url()}: ${r.failure()?.errorText}`));
  page.on("request", (r) => log.requests.push(r.url()));
  page.on("worker", (w) => log.requests.push(w.url()));
  return { page, log };
}
