// The library and the demo in WebKit (WebKitGTK's MiniBrowser, Safari's engine, through
// WebKitWebDriver under Xvfb): no relaxed SIMD, so the SIMD build; no SharedArrayBuffer even on a
// cross-origin isolated page (an open WebKitGTK bug), so one thread, and the fallback must say
// that rather than blame the page's isolation. The tests are in test/browser/suite.mjs.
import { browserSuite } from "./browser/suite.mjs";

browserSuite("webkit", { relaxedSimd: false, sharedArrayBuffer: false, fallback: /this browser has no SharedArrayBuffer, even on a cross-origin isolated page/ });
