// WebGPU in the tests: Dawn (npm "webgpu") on the SwiftShader Vulkan driver that Debian's chromium
// ships, unless the environment names another driver. Node keeps running while a GPU device
// lives, so each GPU test file ends its process after uvu's report.
import { existsSync } from "node:fs";
import { test } from "uvu";

const SWIFTSHADER = "/usr/lib/chromium/vk_swiftshader_icd.json";
if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER)) process.env.VK_ICD_FILENAMES = SWIFTSHADER;

/** init() with WebGPU; throws naming the reason when there is none (the suite needs one). */
export async function initGpu(sn, opts = {}) {
  const info = await sn.init({ threads: 2, webgpu: true, ...opts });
  if (!info.webgpu?.available) throw new Error(`no WebGPU for the tests: ${info.webgpu?.reason}`);
  return info;
}

/** Run the file's tests, then exit (a live Dawn instance keeps Node's event loop alive). */
export function runAndExit(sn) {
  test.after(() => {
    sn.dispose();
    setTimeout(() => process.exit(process.exitCode ?? 0), 50);
  });
  test.run();
}

/** A GPU copy of a CPU tensor, with its requiresGrad. */
export const gpu = (t) => (t ? t.to("webgpu") : t);
