// The WebGPU engine: the GPU twin of engine/engine.ts. Like the wasm engine, it keeps every
// tensor in one linear memory: a single GPU storage buffer (the "arena"), addressed by byte
// offsets that play the role of wasm pointers. So every kernel binds the same two things (the
// arena and its arguments), one bind group serves every pipeline and every dispatch, a training
// step creates no GPU buffer once the arena has grown to its working size, and a tensor's `ptr`
// means the same on both backends.
//
// Dispatches are recorded into one command encoder and submitted in batches (every
// SUBMIT_EVERY dispatches, before an upload and before a read). Kernel arguments (u32 words:
// offsets in elements, sizes, f32 bit patterns) go to a CPU-side staging array and are written
// to a uniform buffer just before the batch is submitted; each dispatch finds its arguments at a
// dynamic offset. Buffers freed by tensors are reused in queue order, which is safe because the
// GPU runs dispatches in the order they were recorded, each seeing the writes of the ones before.
//
// Errors found on the GPU (device-side asserts, as CUDA's): a kernel cannot throw, and the CPU
// cannot look at GPU values without a readback, which a training step must never do. So a kernel
// that meets bad data (a loss target that is not a class index, say) writes its normal output (NaN)
// and records the first bad element in a small error record, a storage buffer of its own bound
// next to the arena; every read copies the record back in the same submit as the values, clears
// it, and rejects with the error if it was set (see read() and checkTag()).
import { fmt } from "../engine/arena.js";
import { PRELUDE } from "./prelude.js";
import { nodeWebgpu, isNode } from "../platform/index.js";
import type { Tensor, Storage } from "../tensor.js";
import { describe } from "../options.js";
import { loadWgsl } from "../engine/wasm.js";

export class GpuError extends Error {}

/** A check that kernels make on their data, where the CPU op checks the values before running
 *  (the GPU twin of part of an op's check(): src/webgpu/ops/loss.ts has the examples). A kernel
 *  that meets a bad element calls the prelude's report_bad(tag, index) with the tag that
 *  GpuEngine.checkTag() gave its dispatch, and the next read of any tensor rejects with the error
 *  made here. */
export interface DeviceCheck<I> {
  /** The error for the first bad element of the checked tensor: its flat index; its value, read
   *  back when the error is reported (undefined when the tensor was freed or written since); the
   *  info given to checkTag (undefined when no longer kept: see KEEP_CHECKS); `where` says it was
   *  on webgpu and which read found it, for the end of the message. */
  error(bad: { index: number; value?: number; info?: I; where: string }): Error;
}

/** The checks declared by the ops, numbered from 1 (the low byte of a tag). */
const deviceChecks: DeviceCheck<any>[] = [];
const checkKinds = new Map<DeviceCheck<any>, number>();

/** Declares a device-side check (once, at module load, like wgslFile's kernels). */
export function deviceCheck<I>(check: DeviceCheck<I>): DeviceCheck<I> {
  // 254 at most: a tag of all ones (the last seq, kind 255) would record as an empty record
  if (deviceChecks.length === 254) throw new Error("simdnet: more than 254 device checks");
  deviceChecks.push(check);
  checkKinds.set(check, deviceChecks.length);
  return check;
}

/** The error record (u32 words; all zero: no error), written by the prelude's report_bad():
 *  [0] ~tag of the earliest dispatch in queue order that found bad data (atomicMax of the
 *  complement: tags grow with the dispatch order, and an empty record is 0), [1] ~index of its
 *  lowest bad element (atomicMax of the complement is a min). Integer atomics only, so the record
 *  is the same whatever order the threads run in. */
const ERR_BYTES = 16;
/** Checked dispatches whose details (the tensor, the op's info) are kept for the message, the
 *  latest first; an older one still reports its op and index. */
const KEEP_CHECKS = 4096;
/** A tag is seq << 8 | kind; seq counts the checked dispatches since the last read (saturating:
 *  past 2^24 - 1 of them without a read, later ones share a tag and their errors merge). */
const MAX_SEQ = 2 ** 24 - 1;

/** What checkTag() keeps about one checked dispatch, to word its error. */
interface CheckSite {
  check: DeviceCheck<any>;
  info: unknown;
  /** the checked tensor's storage, held weakly (keeping it would keep GPU memory), with where
   *  and at which version it was, to tell whether its values are still those the kernel saw */
  storage: WeakRef<Storage>;
  storagePtr: number;
  version: number;
  /** byte offset of the checked tensor's first element */
  ptr: number;
}

/** A WGSL kernel: an entry point of a file in wgsl/ (the file is compiled once, after the
 *  prelude). */
export interface Kernel {
  file: string;
  code: string;
  entry: string;
}

/** Every kernel the library declares (compileAll compiles them ahead of use). */
const allKernels: Kernel[] = [];

/** In the library's bundles a wgsl/ file's text is a marker, #wgsl:NAME# (tools/build.mjs), and
 *  the text itself is in dist/simdnet.wgsl.json, which createGpuEngine loads: pages that never
 *  ask for WebGPU do not download the kernels. */
let wgslText: Record<string, string> | null = null;

/** The kernel with its file's text in place of the markers (once that text is loaded), its
 *  entry point checked. */
function resolveKernel(k: Kernel): void {
  if (k.code.includes("#wgsl:")) {
    if (!wgslText) return; // checked when loaded
    k.code = k.code.replace(/#wgsl:([\w.]+)#/g, (_, f: string) => {
      if (typeof wgslText![f] !== "string") throw new Error(`simdnet: simdnet.wgsl.json has no ${f} (it is from another build of simdnet)`);
      return wgslText![f];
    });
  }
  if (!new RegExp(`fn ${k.entry}\\s*\\(`).test(k.code)) throw new Error(`simdnet: wgsl/${k.file} has no entry point ${k.entry}`);
}

/** The kernels of one WGSL file, by entry-point name. */
export function wgslFile<N extends string>(file: string, code: string, entries: readonly N[]): Record<N, Kernel> {
  if (typeof file !== "string" || typeof code !== "string" || !Array.isArray(entries) || !entries.every((e) => typeof e === "string"))
    throw new Error(`wgslFile: expected (file name, WGSL code, entry point names), got (${describe(file)}, ${describe(code)}, ${describe(entries)})`);
  const out = {} as Record<N, Kernel>;
  for (const e of entries) {
    resolveKernel((out[e] = { file, code, entry: e }));
    allKernels.push(out[e]);
  }
  return out;
}

/** Loads the kernels' text where the bundle holds markers (once; a failed load is tried again
 *  by the next init). */
async function loadKernelText(): Promise<void> {
  if (wgslText || !allKernels.some((k) => k.code.includes("#wgsl:"))) return;
  wgslText = await loadWgsl();
  try {
    allKernels.forEach(resolveKernel);
  } catch (e) {
    wgslText = null;
    throw e;
  }
}

/** What init({ webgpu: true }) found. */
export interface WebgpuInfo {
  available: boolean;
  /** vendor / architecture / description of the adapter, when there is one */
  adapter?: string;
  /** a software (CPU) adapter such as SwiftShader: right for correctness, slow */
  isFallback?: boolean;
  limits?: { maxStorageBufferBindingSize: number; maxBufferSize: number; maxComputeWorkgroupStorageSize: number; maxComputeInvocationsPerWorkgroup: number };
  /** why there is no WebGPU engine, when there is none */
  reason?: string;
}

/** Dispatches recorded before a submit (ONNX Runtime and TF.js use 16 and 15: the CPU keeps
 *  encoding while the GPU runs the batch before). */
const SUBMIT_EVERY = 16;
/** Bytes of arguments per dispatch: the uniform-buffer offset alignment (256 everywhere). */
const ARG_STRIDE = 256;
export const MAX_ARGS = 32; // u32 words per dispatch (the prelude's Args struct)
const ALIGN = 256; // arena offsets: room for vec4 loads and copy alignment
const MAX_WORKGROUPS = 65535;

function sizeClass(bytes: number): number {
  // as the wasm arena: 256-byte steps below 64 KiB, else quarter powers of two
  if (bytes <= 65536) return Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  const p = 2 ** Math.floor(Math.log2(bytes));
  const q = p / 4;
  return Math.ceil(bytes / q) * q;
}

export interface GpuStats {
  dispatches: number;
  submits: number;
  buffersCreated: number;
  /** bytes of values read back (not counting the 16-byte error record each read copies too) */
  bytesRead: number;
  bytesWritten: number;
  pipelines: number;
}

let gpuCount = 0;

export class GpuEngine {
  readonly device = "webgpu" as const;
  readonly id = ++gpuCount;
  disposed = false;
  /** why the engine stopped (device lost, disposed) */
  lostReason: string | null = null;
  readonly stats: GpuStats = { dispatches: 0, submits: 0, buffersCreated: 0, bytesRead: 0, bytesWritten: 0, pipelines: 0 };
  readonly maxBytes: number;

  private arena: GPUBuffer;
  private arenaBytes: number;
  private top = 0;
  /** free blocks below top, in address order */
  private freeBlocks: { ptr: number; size: number }[] = [];
  private sizes = new Map<number, number>();
  liveBytes = 0;

  private argsBuf: GPUBuffer;
  private argWords: Uint32Array;
  private layout: GPUBindGroupLayout;
  private pipelineLayout: GPUPipelineLayout;
  private bindGroup!: GPUBindGroup;
  private pipelines = new Map<string, GPUComputePipeline>();
  private modules = new Map<string, GPUShaderModule>();
  private compiling = new Map<string, Promise<void>>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pending = 0;
  private staging: GPUBuffer[] = [];
  private firstError: string | null = null;
  /** the error record of the device-side checks (ERR_BYTES; binding 2 of every kernel) */
  private errBuf: GPUBuffer;
  private checkSeq = 0;
  /** the checked dispatches since the last read, by seq (insertion order: oldest first) */
  private checkSites = new Map<number, CheckSite>();

  /** @internal (made by init({ webgpu: true })) */
  constructor(private gpu: GPUDevice, readonly info: WebgpuInfo) {
    const lim = gpu.limits;
    // one binding holds the whole arena, so the arena is at most the smaller of the two limits
    this.maxBytes = Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize);
    this.arenaBytes = Math.min(this.maxBytes, 16 * 2 ** 20);
    this.arena = this.createBuffer(this.arenaBytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
    this.argsBuf = this.createBuffer(SUBMIT_EVERY * ARG_STRIDE, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    // created zeroed: no error
    this.errBuf = this.createBuffer(ERR_BYTES, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
    this.argWords = new Uint32Array((SUBMIT_EVERY * ARG_STRIDE) / 4);
    this.layout = gpu.createBindGroupLayout({
      entries: [
        { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: "storage" } },
        { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform", hasDynamicOffset: true, minBindingSize: MAX_ARGS * 4 } },
        { binding: 2, visibility: GPUShaderStage.COMPUTE, buffer: { type: "storage", minBindingSize: ERR_BYTES } },
      ],
    });
    this.pipelineLayout = gpu.createPipelineLayout({ bindGroupLayouts: [this.layout] });
    this.makeBindGroup();
    gpu.lost.then((l) => {
      if (!this.disposed) this.lostReason = `the WebGPU device was lost (${l.reason}: ${l.message})`;
      this.disposed = true;
    });
    gpu.onuncapturederror = (ev: any) => {
      this.firstError ??= String(ev.error?.message ?? ev.error);
    };
  }

  private createBuffer(size: number, usage: number): GPUBuffer {
    this.stats.buffersCreated++;
    return this.gpu.createBuffer({ size, usage });
  }

  private makeBindGroup() {
    this.bindGroup = this.gpu.createBindGroup({
      layout: this.layout,
      entries: [
        { binding: 0, resource: { buffer: this.arena } },
        { binding: 1, resource: { buffer: this.argsBuf, size: MAX_ARGS * 4 } },
        { binding: 2, resource: { buffer: this.errBuf } },
      ],
    });
  }

  assertAlive(): void {
    if (this.disposed) throw new GpuError(`simdnet: ${this.lostReason ?? "the WebGPU engine was disposed"}; call init({ webgpu: true }) again`);
  }

  // ---- memory ----

  /** Size classes as in the wasm arena (so a repeated step finds its blocks again), but any
   *  free block can serve any request: the best fit is split, and freed neighbours merge, so
   *  memory freed by one model serves the next whatever its sizes (a GPU arena never shrinks,
   *  and growing it needs the old and the new buffer at once). */
  alloc(bytes: number, what = "buffer"): number {
    this.assertAlive();
    if (!(bytes >= 0) || !Number.isFinite(bytes)) throw new RangeError(`simdnet: cannot allocate ${bytes} bytes for ${what} on webgpu`);
    const cls = sizeClass(Math.max(bytes, 4));
    let ptr = -1;
    // best fit among the free blocks (exact fits first: the steady state of a training loop)
    let best = -1;
    for (let i = 0; i < this.freeBlocks.length; i++) {
      const f = this.freeBlocks[i];
      if (f.size >= cls && (best < 0 || f.size < this.freeBlocks[best].size)) {
        best = i;
        if (f.size === cls) break;
      }
    }
    if (best >= 0) {
      const f = this.freeBlocks[best];
      ptr = f.ptr;
      if (f.size === cls) this.freeBlocks.splice(best, 1);
      else {
        f.ptr += cls;
        f.size -= cls;
      }
    } else {
      const need = this.top + cls;
      if (need > this.maxBytes)
        throw new GpuError(
          `simdnet: out of GPU memory: ${what} needs ${fmt(bytes)}, but the WebGPU engine keeps every tensor in one buffer ` +
            `of at most ${fmt(this.maxBytes)} (the adapter's maxStorageBufferBindingSize/maxBufferSize); ${fmt(this.liveBytes)} in use`,
        );
      if (need > this.arenaBytes) this.grow(need);
      ptr = this.top;
      this.top = need;
    }
    this.sizes.set(ptr, cls);
    this.liveBytes += cls;
    return ptr;
  }

  release(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) return;
    this.sizes.delete(ptr);
    this.liveBytes -= size;
    // insert in address order and merge with the neighbours; a block at the top lowers it
    const fb = this.freeBlocks;
    let lo = 0, hi = fb.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (fb[mid].ptr < ptr) lo = mid + 1;
      else hi = mid;
    }
    let block = { ptr, size };
    fb.splice(lo, 0, block);
    const next = fb[lo + 1];
    if (next && block.ptr + block.size === next.ptr) {
      block.size += next.size;
      fb.splice(lo + 1, 1);
    }
    const prev = fb[lo - 1];
    if (prev && prev.ptr + prev.size === block.ptr) {
      prev.size += block.size;
      fb.splice(lo, 1);
      block = prev;
      lo--;
    }
    if (block.ptr + block.size === this.top) {
      this.top = block.ptr;
      fb.splice(lo, 1);
    }
  }

  /** A bigger arena: the old contents are copied in queue order, so offsets stay valid. */
  private grow(need: number) {
    const size = Math.min(this.maxBytes, Math.max(need, Math.ceil(this.arenaBytes * 1.5)));
    const bigger = this.createBuffer(Math.ceil(size / 4) * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
    this.endPass();
    const enc = this.encoder ?? this.gpu.createCommandEncoder();
    enc.copyBufferToBuffer(this.arena, 0, bigger, 0, this.top);
    this.encoder = enc;
    this.flush();
    const old = this.arena;
    this.arena = bigger;
    this.arenaBytes = bigger.size;
    this.makeBindGroup();
    old.destroy();
  }

  memoryStats() {
    return { live: this.liveBytes, reserved: this.top, arena: this.arenaBytes, human: fmt(this.liveBytes) };
  }

  // ---- kernels ----

  /** @internal The pipeline of a kernel, compiled on first use (one shader module per WGSL file). */
  pipeline(k: Kernel): GPUComputePipeline {
    const key = `${k.file}:${k.entry}`;
    let p = this.pipelines.get(key);
    if (!p) {
      let module = this.modules.get(k.file);
      if (!module) {
        module = this.gpu.createShaderModule({ label: k.file, code: PRELUDE + k.code });
        this.modules.set(k.file, module);
      }
      p = this.gpu.createComputePipeline({ label: key, layout: this.pipelineLayout, compute: { module, entryPoint: k.entry } });
      this.pipelines.set(key, p);
      this.stats.pipelines++;
    }
    return p;
  }

  /** Compiles every kernel's pipeline at once, in parallel (createComputePipelineAsync), so
   *  that the first training step does not wait for them one by one (fit() calls this before
   *  its first step). Idempotent. */
  async compileAll(): Promise<void> {
    this.assertAlive();
    const pending: Promise<void>[] = [];
    for (const k of allKernels) {
      const key = `${k.file}:${k.entry}`;
      if (this.pipelines.has(key) || this.compiling.has(key)) continue;
      let module = this.modules.get(k.file);
      if (!module) this.modules.set(k.file, (module = this.gpu.createShaderModule({ label: k.file, code: PRELUDE + k.code })));
      const p = this.gpu
        .createComputePipelineAsync({ label: key, layout: this.pipelineLayout, compute: { module, entryPoint: k.entry } })
        .then((pipe) => {
          if (!this.pipelines.has(key)) {
            this.pipelines.set(key, pipe);
            this.stats.pipelines++;
          }
        })
        .finally(() => this.compiling.delete(key));
      this.compiling.set(key, p);
      pending.push(p);
    }
    await Promise.all(pending);
  }

  /** Records one dispatch of kernel k over `groups` workgroups (x may exceed the 65,535
   *  limit: it is folded into y, and kernels use the prelude's `wid()` for the flat index).
   *  args: u32 words (use f32bits() for floats). */
  dispatch(k: Kernel, args: ArrayLike<number>, groups: number, groupsY = 1): void {
    this.assertAlive();
    const key = `${k.file}:${k.entry}`;
    if (args.length > MAX_ARGS) throw new Error(`simdnet: webgpu kernel ${key}: ${args.length} arguments, at most ${MAX_ARGS}`);
    if (groups === 0 || groupsY === 0) return;
    const pipe = this.pipeline(k);
    let gx = groups, gy = groupsY;
    if (gx > MAX_WORKGROUPS) {
      if (gy !== 1) throw new Error(`simdnet: webgpu kernel ${key}: ${groups}x${groupsY} workgroups is past the limit`);
      gy = Math.ceil(gx / MAX_WORKGROUPS);
      gx = MAX_WORKGROUPS;
      if (gy > MAX_WORKGROUPS) throw new GpuError(`simdnet: webgpu kernel ${key}: ${groups} workgroups is past the limit`);
    }
    const base = (this.pending * ARG_STRIDE) / 4;
    for (let i = 0; i < args.length; i++) this.argWords[base + i] = args[i];
    this.argWords[base + MAX_ARGS - 1] = gx; // the prelude's wid() folds y back with this
    if (!this.pass) {
      this.encoder ??= this.gpu.createCommandEncoder();
      this.pass = this.encoder.beginComputePass();
    }
    this.pass.setPipeline(pipe);
    this.pass.setBindGroup(0, this.bindGroup, [this.pending * ARG_STRIDE]);
    this.pass.dispatchWorkgroups(gx, gy);
    this.stats.dispatches++;
    if (++this.pending === SUBMIT_EVERY) this.flush();
  }

  private endPass() {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  /** Submit what is recorded (the arguments of the batch are written first, in queue order). */
  flush(): void {
    this.endPass();
    if (!this.encoder) return;
    if (this.pending) this.gpu.queue.writeBuffer(this.argsBuf, 0, this.argWords as any, 0, (this.pending * ARG_STRIDE) / 4);
    this.gpu.queue.submit([this.encoder.finish()]);
    this.stats.submits++;
    this.encoder = null;
    this.pending = 0;
    if (this.firstError) {
      const e = this.firstError;
      this.firstError = null;
      throw new GpuError(`simdnet: WebGPU error: ${e}`);
    }
  }

  /** Copy values into the arena at byte offset ptr. Pending dispatches are submitted first:
   *  a queue write runs before any command recorded but not yet submitted. */
  write(ptr: number, values: Float32Array): void {
    this.assertAlive();
    this.flush();
    // not every implementation takes a view of shared memory (the wasm heap): copy those
    if (!(values.buffer instanceof ArrayBuffer)) values = values.slice();
    this.gpu.queue.writeBuffer(this.arena, ptr, values.buffer as any, values.byteOffset, values.byteLength);
    this.stats.bytesWritten += values.byteLength;
  }

  /** Copy values into the arena at byte offset ptr at once, without submitting what is pending:
   *  only for memory that no dispatch recorded but not yet submitted reads or writes (the
   *  optimisers' argument tables, src/webgpu/optim.ts, which track that with stats.submits). */
  writeUnpending(ptr: number, values: Float32Array): void {
    this.assertAlive();
    this.gpu.queue.writeBuffer(this.arena, ptr, values.buffer as any, values.byteOffset, values.byteLength);
    this.stats.bytesWritten += values.byteLength;
  }

  // ---- device-side checks ----

  /** @internal The tag argument of a dispatch whose kernel checks the elements of `data` with
   *  `check` (its report_bad() calls record under it); `info` is kept for the message. Costs no
   *  GPU work: the record is only read with the next read(). */
  checkTag<I>(check: DeviceCheck<I>, data: Tensor, info: I): number {
    const kind = checkKinds.get(check);
    if (!kind) throw new Error("simdnet: checkTag of a check not made by deviceCheck()");
    if (this.checkSeq < MAX_SEQ) this.checkSeq++;
    const seq = this.checkSeq;
    const st = data.storage;
    this.checkSites.delete(seq); // re-inserted last (a saturated seq is reused)
    this.checkSites.set(seq, { check, info, storage: new WeakRef(st), storagePtr: st.ptr, version: st.version, ptr: data.ptr });
    if (this.checkSites.size > KEEP_CHECKS) this.checkSites.delete(this.checkSites.keys().next().value!);
    return ((seq << 8) | kind) >>> 0;
  }

  /** The error of a set error record: the check's own message, with the bad value read back
   *  (4 bytes, no error check: that would clear what a later dispatch may have recorded) while
   *  the checked tensor still holds the values the kernel saw. */
  private async deviceError(rec: Uint32Array, sites: Map<number, CheckSite>, what: string): Promise<Error> {
    const tag = ~rec[0] >>> 0, index = ~rec[1] >>> 0;
    const check = deviceChecks[(tag & 0xff) - 1];
    const where = `on webgpu, found when reading ${what} back`;
    if (!check) return new GpuError(`simdnet: a kernel reported bad data with an unknown tag ${tag} (${where})`);
    const site = sites.get(tag >>> 8);
    if (!site) return check.error({ index, where });
    let value: number | undefined;
    const st = site.storage.deref();
    if (st && !st.released && st.ptr === site.storagePtr && st.version === site.version && !this.disposed) {
      try {
        value = (await this.readback(site.ptr + index * 4, 1, false)).values[0];
      } catch {
        // the device went away meanwhile: report the check's error without the value
      }
    }
    return check.error({ index, value, info: site.info, where });
  }

  // ---- reading back ----

  /** Copy n floats from byte offset ptr back to the CPU (the only way values come back). Rejects
   *  instead when a kernel recorded bad data since the last read (checkTag): the error record
   *  comes back in the same copy, so this costs no extra submit or map. `what` names what is read
   *  in that error ("a tensor [8]"). */
  async read(ptr: number, n: number, what = "a tensor"): Promise<Float32Array> {
    this.assertAlive();
    const sites = this.checkSites;
    const { values, record } = await this.readback(ptr, n, true);
    if (record![0] !== 0) throw await this.deviceError(record!, sites, what);
    return values;
  }

  /** The copy behind read(); with `check`, the error record is copied after the values (and
   *  its details handed over: the caller took this.checkSites before) and cleared in the same
   *  submit, so every error is reported by exactly one read: the first one submitted after it. */
  private async readback(ptr: number, n: number, check: boolean): Promise<{ values: Float32Array; record?: Uint32Array }> {
    const bytes = n * 4;
    const size = Math.ceil(bytes / 4) * 4;
    const total = size + (check ? ERR_BYTES : 0);
    let buf = this.staging.find((b) => b.size >= total && b.size <= 4 * total + 65536);
    if (buf) this.staging.splice(this.staging.indexOf(buf), 1);
    else buf = this.createBuffer(Math.max(total, 256), GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    this.endPass();
    const enc = this.encoder ?? this.gpu.createCommandEncoder();
    if (size) enc.copyBufferToBuffer(this.arena, ptr, buf, 0, size);
    if (check) {
      enc.copyBufferToBuffer(this.errBuf, 0, buf, size, ERR_BYTES);
      enc.clearBuffer(this.errBuf);
      // dispatches recorded from now on run after the clear: their tags start again
      this.checkSites = new Map();
      this.checkSeq = 0;
    }
    this.encoder = enc;
    this.flush();
    try {
      await buf.mapAsync(GPUMapMode.READ, 0, total);
    } catch (e) {
      this.assertAlive();
      throw new GpuError(`simdnet: reading a tensor back from the GPU failed: ${(e as Error).message}`);
    }
    const mapped = buf.getMappedRange(0, total);
    const values = new Float32Array(mapped.slice(0, bytes));
    const record = check ? new Uint32Array(mapped.slice(size, total)) : undefined;
    buf.unmap();
    this.staging.push(buf);
    if (this.staging.length > 8) this.staging.shift()!.destroy();
    // the values asked for (the test of "a step reads nothing" counts them); not the record
    this.stats.bytesRead += bytes;
    return { values, record };
  }

  /** Resolves when everything submitted so far has run. */
  async sync(): Promise<void> {
    this.flush();
    await this.gpu.queue.onSubmittedWorkDone();
    this.assertAlive();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.lostReason ??= "the WebGPU engine was disposed";
    try {
      this.gpu.destroy();
    } catch {
      /* already gone */
    }
  }
}

/** The bit pattern of a float, for a kernel argument. */
const f32box = new Float32Array(1);
const u32box = new Uint32Array(f32box.buffer);
export function f32bits(x: number): number {
  f32box[0] = x;
  return u32box[0];
}

/** Workgroups to cover n items with `size` threads each. */
export function groupsFor(n: number, size: number): number {
  return Math.ceil(n / size);
}

// ---- the adapter ----

let gpuApi: GPU | null | undefined;
let gpuApiReason = "";

async function findGpu(): Promise<GPU | null> {
  if (gpuApi !== undefined) return gpuApi;
  const nav: any = (globalThis as any).navigator;
  if (nav?.gpu) return (gpuApi = nav.gpu);
  if (!isNode) {
    gpuApiReason = "this browser has no navigator.gpu (WebGPU is off or unsupported; is the page served over https or localhost?)";
    return (gpuApi = null);
  }
  // Node: the npm package `webgpu` (Dawn), an optional dependency
  try {
    const mod: any = await nodeWebgpu();
    Object.assign(globalThis, mod.globals);
    return (gpuApi = mod.create([]));
  } catch (e) {
    gpuApiReason = `Node has no WebGPU: install the npm package "webgpu" (Dawn) to use it (${(e as Error).message.split("\n")[0]})`;
    return (gpuApi = null);
  }
}

export interface WebgpuOptions {
  /** accept a software adapter such as SwiftShader (default true: correct, but slow) */
  allowFallback?: boolean;
  powerPreference?: "high-performance" | "low-power";
}

/** Find an adapter and open a device with the adapter's maximum limits. */
export async function createGpuEngine(opts: WebgpuOptions = {}): Promise<{ engine: GpuEngine | null; info: WebgpuInfo }> {
  const gpu = await findGpu();
  if (!gpu) return { engine: null, info: { available: false, reason: gpuApiReason } };
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? "high-performance" });
  } catch (e) {
    return { engine: null, info: { available: false, reason: `requestAdapter failed: ${(e as Error).message}` } };
  }
  if (!adapter) return { engine: null, info: { available: false, reason: "no WebGPU adapter (no GPU driver for WebGPU, or WebGPU is blocked on this system)" } };
  const ai: any = (adapter as any).info ?? {};
  const isFallback = !!((adapter as any).isFallbackAdapter ?? ai.isFallbackAdapter) || /swiftshader|llvmpipe|lavapipe|warp/i.test(`${ai.vendor} ${ai.architecture} ${ai.description}`);
  const name = [ai.vendor, ai.architecture, ai.description].filter(Boolean).join(" / ") || "unknown adapter";
  const L = adapter.limits;
  const limits = {
    maxStorageBufferBindingSize: L.maxStorageBufferBindingSize,
    maxBufferSize: L.maxBufferSize,
    maxComputeWorkgroupStorageSize: L.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: L.maxComputeInvocationsPerWorkgroup,
  };
  if (isFallback && opts.allowFallback === false)
    return { engine: null, info: { available: false, adapter: name, isFallback, limits, reason: `only a software adapter (${name}) is available` } };
  if (limits.maxComputeInvocationsPerWorkgroup < 256 || limits.maxComputeWorkgroupStorageSize < 16384)
    return { engine: null, info: { available: false, adapter: name, isFallback, limits, reason: `the adapter's limits are too small (${JSON.stringify(limits)})` } };
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: L.maxStorageBufferBindingSize,
        maxBufferSize: L.maxBufferSize,
        maxComputeWorkgroupStorageSize: L.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: L.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: L.maxComputeWorkgroupSizeX,
        maxComputeWorkgroupSizeY: L.maxComputeWorkgroupSizeY,
      },
    });
  } catch (e) {
    return { engine: null, info: { available: false, adapter: name, isFallback, limits, reason: `requestDevice failed: ${(e as Error).message}` } };
  }
  try {
    await loadKernelText();
  } catch (e) {
    device.destroy();
    return { engine: null, info: { available: false, adapter: name, isFallback, limits, reason: (e as Error).message } };
  }
  const info: WebgpuInfo = { available: true, adapter: name, isFallback, limits };
  return { engine: new GpuEngine(device, info), info };
}
