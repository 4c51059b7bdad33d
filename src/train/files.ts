// File writes that never leave a half-written file: write a temporary file next to the target,
// flush it, then rename over the target (rename is atomic on POSIX file systems).

import { nodeFs, nodePath } from "../platform/index.js";
import { badArgument } from "../options.js";

function needNode(what: string) {
  if (typeof process === "undefined" || !process.versions?.node) throw new Error(`${what} writes files and runs in Node only`);
}

export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  if (typeof path !== "string" || !(bytes instanceof Uint8Array || typeof bytes === "string")) badArgument("writeFileAtomic", "(path, bytes)", "a path and a Uint8Array or string", [path, bytes]);
  needNode("writeFileAtomic");
  const fs = await nodeFs();
  const { dirname } = await nodePath();
  fs.mkdirSync(dirname(path), { recursive: true });
  removeStaleTemps(fs, path);
  const tmp = `${path}.tmp-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
  try {
    const fd = fs.openSync(tmp, "w");
    try {
      fs.writeFileSync(fd, bytes);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, path);
  } catch (e) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {}
    throw e;
  }
}

/** Temporary files of earlier writes to `path` whose process is gone (killed mid-write): they
 *  would otherwise stay forever. A live process's are left alone. */
function removeStaleTemps(fs: typeof import("node:fs"), path: string): void {
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  const dir = slash >= 0 ? path.slice(0, slash) || "/" : ".", base = path.slice(slash + 1);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const m = n.startsWith(base + ".tmp-") && /^(\d+)-\d+$/.exec(n.slice(base.length + 5));
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = pid === process.pid;
    if (!alive)
      try {
        process.kill(pid, 0);
        alive = true;
      } catch (e) {
        alive = (e as any)?.code === "EPERM"; // exists, another user's
      }
    if (!alive)
      try {
        fs.rmSync(`${dir}/${n}`, { force: true });
      } catch {}
  }
}

export async function readFileBytes(path: string): Promise<Uint8Array> {
  needNode("readFile");
  const fs = await nodeFs();
  return new Uint8Array(fs.readFileSync(path));
}
