// The demo's training session: the MNIST digits, the lecture's LeNet, SGD with momentum, one
// step at a time (the caller decides when to yield). It takes the library as an argument, so
// the page's worker (demo/worker.js) and bench/browser.mjs in Node run the very same code and
// their timings compare.

export const SIDE = 28;
export const CLASSES = 10;
/** The digits' pixel mean and standard deviation (in [0, 1] units), as the CLI writes them. */
export const NORMALIZE = { mean: [0.1307], std: [0.3081] };
const LENET = { zoo: "lenet", options: { classes: CLASSES, inChannels: 1, inputSize: SIDE } };

/** The server's digits file (N x 784 uint8 pixels, then N uint8 labels, sorted by digit) as a
 *  shuffled train / test split. The same seed gives the same split everywhere. */
export function digitsFromBytes(sn, bytes, { testFraction = 0.2, seed = 0 } = {}) {
  const per = SIDE * SIDE + 1;
  const n = bytes.length / per;
  if (!Number.isInteger(n) || n < CLASSES) throw new Error(`digits file: ${bytes.length} bytes is not N x (${SIDE}x${SIDE} pixels + 1 label)`);
  const x = new Float32Array(n * SIDE * SIDE);
  for (let i = 0; i < x.length; i++) x[i] = bytes[i] / 255;
  const y = Int32Array.from(bytes.subarray(n * SIDE * SIDE));
  const all = new sn.Dataset(x, [n, 1, SIDE, SIDE], y, CLASSES);
  const [train, test] = all.split(testFraction, seed);
  return { train, test };
}

/** How many of n rows of class scores have their label as the (first) largest. */
function correctCount(scores, labels, n) {
  let correct = 0;
  for (let i = 0; i < n; i++) correct += argmax(scores, i * CLASSES, CLASSES) === labels[i] ? 1 : 0;
  return correct;
}

/** Index of the largest of k values at v[off..off+k). */
function argmax(v, off, k) {
  let best = 0;
  for (let j = 1; j < k; j++) if (v[off + j] > v[off + best]) best = j;
  return best;
}

export class Trainer {
  constructor(sn, train, test, { batchSize = 64, lr = 0.05, momentum = 0.9, seed = 0 } = {}) {
    Object.assign(this, { sn, train, test, batchSize, lr, momentum, seed });
    this.restart();
  }

  /** Back to epoch 0: the first shuffle again. The epoch order lives here (plain JS), not in a
   *  DataLoader's iterator, so a step can be taken at any time and the position survives
   *  restarting the engine with other threads. */
  restart() {
    this.rng = new this.sn.Generator(this.seed);
    this.order = this.rng.permutation(this.train.length);
    this.pos = 0;
    this.epoch = 0;
    this.steps = 0;
  }

  /** A fresh LeNet (seeded: the same one every time) with its optimiser, on the current engine. */
  newModel() {
    this.sn.manualSeed(this.seed);
    this.adopt(this.sn.models.lenet(LENET.options), LENET);
  }

  /** A fresh model and epoch 0. */
  reset() {
    this.restart();
    this.newModel();
  }

  /** Train `model` from here on (a loaded one, or a new one); a fresh optimiser. */
  adopt(model, meta = {}) {
    this.disposeModel();
    this.model = model;
    this.meta = meta;
    this.normalize = meta.normalize ?? NORMALIZE;
    this.opt = new this.sn.SGD(model.parameters(), { lr: this.lr, momentum: this.momentum });
    this.makeLoaders();
  }

  makeLoaders() {
    this.loader?.dispose();
    this.testLoader?.dispose();
    this.loader = new this.sn.DataLoader(this.train, { batchSize: this.batchSize, normalize: this.normalize });
    this.testLoader = new this.sn.DataLoader(this.test, { batchSize: 500, shuffle: false, normalize: this.normalize });
  }

  /** One training step. ms: the step itself (forward, loss, backward, update), as
   *  bench/train_lenet.mjs times it; the batch is assembled before. */
  step() {
    const { sn, batchSize: B } = this;
    const idx = this.order.subarray(this.pos, this.pos + B);
    const b = this.loader.makeBatch(idx);
    this.model.train();
    const t0 = performance.now();
    const r = sn.tidy(() => {
      this.opt.zeroGrad();
      const out = this.model.forward(b.x);
      const l = sn.cross_entropy(out, b.y);
      const loss = l.item();
      // A diverged step must not write NaN into the weights: report it, change nothing.
      if (!Number.isFinite(loss)) return { loss, correct: 0 };
      l.backward();
      this.opt.step();
      const o = out.data;
      const correct = correctCount(o, b.labels, b.size);
      return { loss, correct };
    });
    const ms = performance.now() - t0;
    if (!Number.isFinite(r.loss)) throw new Error(`training diverged at step ${this.steps + 1}: loss is ${r.loss} (try Reset)`);
    const { epoch, epochDone } = this.advance();
    return { step: this.steps, epoch, loss: r.loss, acc: r.correct / b.size, ms, epochDone, size: b.size };
  }

  /** After a step: the position in the epoch's order, and a new shuffle at its end. Whole
   *  batches only: the few samples left at the end of an epoch go to the next shuffle. */
  advance() {
    const B = this.batchSize;
    this.steps++;
    this.pos += B;
    let epochDone = false;
    if (this.pos + B > this.order.length) {
      this.epoch++;
      this.order = this.rng.permutation(this.train.length);
      this.pos = 0;
      epochDone = true;
    }
    return { epochDone, epoch: this.epoch + (epochDone ? 0 : this.pos / this.order.length) };
  }

  // ---- WebGPU: the model, its optimiser state and each batch on the GPU ----

  /** "cpu" or "webgpu": where the model lives. */
  get device() {
    return this.model?.device ?? "cpu";
  }

  /** Move the model and the optimiser's state to `device` (the CPU twin used for the maps is
   *  dropped: it is rebuilt from the GPU weights when asked for). */
  async toDevice(device) {
    if (device === this.device) return;
    if (device === "webgpu") {
      this.model.to("webgpu");
      this.opt.to("webgpu");
      await this.sn.gpuEngine().compileAll();
    } else {
      await this.model.cpu();
      await this.opt.cpu();
    }
    this.twin?.dispose();
    this.twin = null;
  }

  /** One training step on the GPU. Values come back from the GPU only asynchronously, so the
   *  loss and accuracy of a step are read every `readEvery` steps (chosen from the step's time:
   *  every step on a slow adapter, less often on a fast one); steps in between return null. */
  async stepGpu() {
    const { sn, batchSize: B } = this;
    const idx = this.order.subarray(this.pos, this.pos + B);
    const b = this.loader.makeBatch(idx);
    this.model.train();
    const t0 = performance.now();
    this.gpuStep = (this.gpuStep ?? 0) + 1;
    const read = this.gpuStep % (this.readEvery ?? 1) === 0;
    const kept = sn.tidy(() => {
      const x = b.x.to("webgpu"), y = b.y.to("webgpu");
      this.opt.zeroGrad(true);
      const out = this.model.forward(x);
      const l = sn.cross_entropy(out, y);
      l.backward();
      this.opt.step();
      return read ? [l, out] : null;
    });
    let r = null;
    if (kept) {
      const [lv, ov] = [await kept[0].read(), await kept[1].read()];
      kept.forEach((t) => t.dispose());
      const correct = correctCount(ov, b.labels, b.size);
      const ms = (performance.now() - t0) / (this.readEvery ?? 1);
      // a read stalls the pipeline: on a fast GPU read less often (about every 200 ms)
      this.readEvery = Math.max(1, Math.min(10, Math.round(200 / Math.max(ms, 1))));
      if (!Number.isFinite(lv[0])) throw new Error(`training diverged near step ${this.steps + 1}: loss is ${lv[0]} (try Reset)`);
      r = { loss: lv[0], acc: correct / b.size, ms };
    }
    const { epoch, epochDone } = this.advance();
    return r ? { step: this.steps, epoch, ...r, epochDone, size: b.size } : epochDone ? { step: this.steps, epoch, loss: NaN, acc: NaN, ms: 0, epochDone, size: b.size, noRead: true } : null;
  }

  /** evaluateChunk on either device (the GPU's values are read back). */
  async evaluateChunkAsync(start, count) {
    if (this.device === "cpu") return this.evaluateChunk(start, count);
    const { sn } = this;
    const idx = Int32Array.from({ length: Math.min(count, this.test.length - start) }, (_, i) => start + i);
    if (!idx.length) return { loss: 0, correct: 0, n: 0 };
    const b = this.testLoader.makeBatch(idx);
    this.model.eval();
    const [l, out] = sn.noGrad(() =>
      sn.tidy(() => {
        const out = this.model.forward(b.x.to("webgpu"));
        return [sn.cross_entropy(out, b.y.to("webgpu")), out];
      }),
    );
    const lv = await l.read(), o = await out.read();
    l.dispose();
    out.dispose();
    const correct = correctCount(o, b.labels, b.size);
    return { loss: lv[0] * b.size, correct, n: b.size };
  }

  /** The model on the CPU, for what needs synchronous values (drawing, maps, saving): the
   *  model itself on the CPU; on the GPU a CPU twin with the GPU's current weights. */
  async cpuModel() {
    if (this.device === "cpu") return this.model;
    this.twin ??= this.sn.nn.moduleFromConfig(this.model.config(), "the demo's model");
    const values = new Map();
    for (const [n, t] of this.model.stateDict()) values.set(n, { shape: t.shape, data: await t.read() });
    this.twin.loadStateDict(values);
    return this.twin;
  }

  /** Loss and accuracy over test samples [start, start + count): call in chunks and yield
   *  between them. Returns sums to add up. */
  evaluateChunk(start, count) {
    const { sn } = this;
    const idx = Int32Array.from({ length: Math.min(count, this.test.length - start) }, (_, i) => start + i);
    if (!idx.length) return { loss: 0, correct: 0, n: 0 };
    const b = this.testLoader.makeBatch(idx);
    this.model.eval();
    return sn.noGrad(() =>
      sn.tidy(() => {
        const out = this.model.forward(b.x);
        const loss = sn.cross_entropy(out, b.y).item() * b.size;
        const o = out.data;
        const correct = correctCount(o, b.labels, b.size);
        return { loss, correct, n: b.size };
      }),
    );
  }

  /** Model and optimiser state as bytes (to carry them across an engine restart). */
  snapshot() {
    return this.sn.packCheckpoint({ model: this.model, optimizer: this.opt, epoch: this.epoch, extra: { meta: this.meta } });
  }

  /** Rebuild on the current engine from snapshot() bytes. */
  restore(bytes) {
    const { metadata } = this.sn.parseSafetensors(bytes, "snapshot");
    const model = this.sn.nn.moduleFromConfig(JSON.parse(metadata.model), "snapshot");
    this.adopt(model, JSON.parse(metadata.extra).meta);
    this.sn.unpackCheckpoint(bytes, { model, optimizer: this.opt }, "snapshot");
  }

  disposeModel() {
    this.twin?.dispose?.();
    this.twin = null;
    this.loader?.dispose();
    this.testLoader?.dispose();
    this.loader = this.testLoader = null;
    // After an engine restart the old tensors are gone with their engine: nothing to free.
    if (this.model && !this.model.parameters()[0]?.engine?.disposed) this.model.dispose();
    this.model = null;
  }
}
