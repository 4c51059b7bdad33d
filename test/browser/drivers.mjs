// Firefox and WebKit for the browser tests and bench/browser.mjs, behind one small page
// interface (goto, evaluate, waitFor, close) so a test runs the same in both:
// - Firefox: Debian's firefox-esr, headless, driven by puppeteer-core over WebDriver BiDi
//   (playwright-core cannot drive Firefox ESR).
// - WebKit: WebKitGTK's MiniBrowser (Safari's engine) through Debian's WebKitWebDriver, driven
//   by selenium-webdriver. MiniBrowser has no headless mode, so it runs on its own Xvfb display.
// Chromium is on playwright-core (launch.mjs); launch("chromium") wraps it the same way.
import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { createServer } from "node:net";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { CHROMIUM, launchBrowser } from "./launch.mjs";

export const FIREFOX = process.env.FIREFOX_PATH || "/usr/bin/firefox-esr";
export const WEBKIT_DRIVER = process.env.WEBKIT_DRIVER_PATH || "/usr/bin/WebKitWebDriver";
const XVFB = "/usr/bin/Xvfb";
/** The longest one call into a page may take before it fails. */
const EVAL_MS = 10 * 60000;

/** MiniBrowser lies in WebKitGTK's library folder (/usr/lib/<triplet>/webkit2gtk-4.1/). */
function findMiniBrowser() {
  if (process.env.MINIBROWSER_PATH) return process.env.MINIBROWSER_PATH;
  for (const triplet of existsSync("/usr/lib") ? readdirSync("/usr/lib") : [])
    for (const v of ["webkit2gtk-4.1", "webkit2gtk-4.0", "webkitgtk-6.0"]) {
      const p = `/usr/lib/${triplet}/${v}/MiniBrowser`;
      if (existsSync(p)) return p;
    }
  return null;
}

/** Why `name` cannot run here (a missing program, with what installs it), or null. */
export function missing(name) {
  if (name === "chromium") return existsSync(CHROMIUM) ? null : `chromium not found at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;
  if (name === "firefox") return existsSync(FIREFOX) ? null : `firefox not found at ${FIREFOX} (apt-get install firefox-esr, or set FIREFOX_PATH)`;
  if (name === "webkit") {
    if (!existsSync(WEBKIT_DRIVER)) return `WebKitWebDriver not found at ${WEBKIT_DRIVER} (apt-get install webkit2gtk-driver, or set WEBKIT_DRIVER_PATH)`;
    if (!findMiniBrowser()) return "WebKitGTK's MiniBrowser not found (apt-get install webkit2gtk-driver, or set MINIBROWSER_PATH)";
    if (!existsSync(XVFB)) return `Xvfb not found at ${XVFB} (apt-get install xvfb)`;
    return null;
  }
  throw new Error(`no driver for ${name}`);
}

/** For a test file: if `name` cannot run here, its tests fail under CI (CI=true: a browser the
 *  suite should cover must not pass silently) and are skipped with the reason printed otherwise.
 *  Returns true when the browser is there. */
export function requireBrowser(name) {
  const why = missing(name);
  if (!why) return true;
  if (process.env.CI === "true" || process.env.CI === "1") test(`${name} is installed`, () => assert.unreachable(why));
  else {
    console.log(`skipping the ${name} tests: ${why}`);
    test.skip(`${name} tests (${why})`, () => {});
  }
  return false;
}

/** Start `name` ("chromium", "firefox" or "webkit"). Returns { name, version, newPage(), close() }. */
export async function launch(name) {
  const why = missing(name);
  if (why) throw new Error(why);
  return name === "chromium" ? launchChromium() : name === "firefox" ? launchFirefox() : launchWebKit();
}

async function launchChromium() {
  const browser = await launchBrowser();
  return {
    name: "chromium",
    version: `chromium ${browser.version()}`,
    async newPage() {
      const page = await browser.newPage();
      const errors = [];
      page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
      return wrap({ errors, goto: (url) => page.goto(url), evaluate: (fn, arg) => page.evaluate(fn, arg), close: () => page.close() });
    },
    close: () => browser.close(),
  };
}

async function launchFirefox() {
  const { default: puppeteer } = await import("puppeteer-core");
  // a page call may take minutes on a loaded machine (all fixture cases): allow EVAL_MS, not
  // puppeteer's default 3 min
  const browser = await puppeteer.launch({ browser: "firefox", executablePath: FIREFOX, headless: true, protocol: "webDriverBiDi", protocolTimeout: EVAL_MS });
  return {
    name: "firefox",
    version: await browser.version(),
    async newPage() {
      const page = await browser.newPage();
      const errors = [];
      page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
      return wrap({
        errors,
        goto: (url) => page.goto(url),
        evaluate: (fn, arg) => page.evaluate(fn, arg),
        close: () => page.close(),
      });
    },
    close: () => browser.close(),
    /** ends the browser's processes without asking (after a hang, close() may not return) */
    kill: () => browser.process()?.kill("SIGKILL"),
  };
}

/** A free TCP port on the loopback interface. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/** Wait until `fn` resolves truthy, polling, or fail after `ms` with `what`. */
async function poll(fn, ms, what) {
  const end = Date.now() + ms;
  let last = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e; // not up yet
    }
    if (Date.now() > end) throw new Error(`${what} within ${ms / 1000} s${last ? ` (last error: ${last.message})` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function launchWebKit() {
  const children = [];
  const stop = () => children.forEach((c) => c.exitCode === null && c.kill());
  try {
    // Xvfb picks a free display itself and writes its number to fd 3 (-displayfd)
    const xvfb = spawn(XVFB, ["-displayfd", "3", "-nolisten", "tcp", "-screen", "0", "1280x1024x24"], { stdio: ["ignore", "ignore", "ignore", "pipe"] });
    children.push(xvfb);
    const display = await new Promise((resolve, reject) => {
      xvfb.stdio[3].once("data", (d) => resolve(":" + String(d).trim()));
      xvfb.once("exit", (code) => reject(new Error(`Xvfb exited (${code}) before it opened a display`)));
    });
    const port = await freePort();
    const driver = spawn(WEBKIT_DRIVER, [`--port=${port}`], { env: { ...process.env, DISPLAY: display }, stdio: "ignore" });
    children.push(driver);
    await poll(async () => (await fetch(`http://127.0.0.1:${port}/status`)).ok, 10000, "WebKitWebDriver did not answer");
    const { Builder } = await import("selenium-webdriver");
    const caps = { browserName: "MiniBrowser", "webkitgtk:browserOptions": { binary: findMiniBrowser(), args: ["--automation"] } };
    const session = await new Builder().usingServer(`http://127.0.0.1:${port}`).withCapabilities(caps).build();
    await session.manage().setTimeouts({ script: EVAL_MS, pageLoad: 60000 });
    const version = (await session.getCapabilities()).get("browserVersion");
    let open = false;
    return {
      name: "webkit",
      version: `WebKitGTK ${version}`,
      // WebDriver drives one window per session: one page at a time
      async newPage() {
        if (open) throw new Error("webkit: one page at a time (close the last one first)");
        open = true;
        return wrap({
          errors: [],
          goto: (url) => session.get(url),
          evaluate: async (fn, arg) => {
            // the page's promise is settled into a plain object: WebDriver has no rejection
            const r = await session.executeAsyncScript(
              `const done = arguments[arguments.length - 1];
               Promise.resolve().then(() => (${fn})(arguments[0])).then((value) => done({ value: value === undefined ? null : value }),
                 (e) => done({ error: String(e && e.message ? e.message + "\\n" + (e.stack || "") : e) }));`,
              arg ?? null,
            );
            if (r.error) throw new Error(`in the page: ${r.error}`);
            return r.value;
          },
          close: async () => {
            await session.get("about:blank");
            open = false;
          },
        });
      },
      async close() {
        try {
          await session.quit();
        } finally {
          stop();
        }
      },
    };
  } catch (e) {
    stop();
    throw e;
  }
}

/** The page interface: waitFor(fn, arg, ms) polls `fn` in the page until it returns something
 *  truthy, which it returns, or fails after ms. */
function wrap(p) {
  return {
    ...p,
    waitFor: (fn, arg, ms = 60000) => poll(() => p.evaluate(fn, arg), ms, `waited for ${fn.toString().slice(0, 80)}: not true`),
  };
}
