// The library and the demo in Firefox (Debian's firefox-esr, driven by puppeteer-core over
// WebDriver BiDi): relaxed SIMD and SharedArrayBuffer on an isolated page, so 2 threads in a
// worker. The tests are in test/browser/suite.mjs; test/browser_webkit.test.mjs runs them in
// WebKit, test/browser.test.mjs the same checks in Chromium.
import { browserSuite } from "./browser/suite.mjs";

browserSuite("firefox", { relaxedSimd: true, sharedArrayBuffer: true });
