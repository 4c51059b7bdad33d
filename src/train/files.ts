// File writes that never leave a half-written file: write a temporary file next to the target,
// flush it, then rename over the target (rename is atomic on POSIX file systems).

import { nodeFs, nodePath } from "../platform/index.js";

function needNode(what: string) {
  if (typeof process === "undefined" || !process.versions?.node) throw new Error(`${what} writes files and runs in Node only`);
}

export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  needNode("writeFileAtomic");
  const fs = await nodeFs();
  const { dirname } = await nodePath();
  fs.mkdirSync(dirname(path), { recursive: true });
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

export async function readFileBytes(path: string): Promise<Uint8Array> {
  needNode("readFile");
  const fs = await nodeFs();
  return new Uint8Array(fs.readFileSync(path));
}
