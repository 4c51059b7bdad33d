// Bad inputs to every op in the table: each is a clear error that names the op, thrown before any
// kernel runs and before anything is allocated. The valid inputs that bad ones replace come from
// each op's first fixture case, so ops added later are covered without a line here. Also: bad
// sizes for tensor factories.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as sn from "../dist/index.js";
import { loadFixtures, caseInputs } from "./helpers.mjs";

const fixtures = loadFixtures(sn);
/** op name -> its first fixture case and that file's tensors */
const firstCase = new Map();
for (const { tensors, cases } of fixtures) for (const c of cases) if (!firstCase.has(c.op)) firstCase.set(c.op, { c, tensors });
const ops = [...sn.opTable.values()];
const bare = (n) => n.replace(/\?$|\.\.\.$/, "");
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
/** A last input name ending in "..." takes every remaining input (cat). */
const variadic = (op) => op.inputs[op.inputs.length - 1].endsWith("...");
/** The declared name of input i (a variadic name repeats). */
const nameAt = (op, i) => op.inputs[Math.min(i, op.inputs.length - 1)];
/** How the error may spell input i: its name without "?" (a variadic one with or without "..."). */
const spelled = (op, i) => escape(bare(nameAt(op, i))) + (variadic(op) && i >= op.inputs.length - 1 ? "(\\.\\.\\.)?" : "");

let kernelsRun = [];
function spyKernels() {
  const eng = sn.engine();
  const run = eng.run;
  eng.run = function (name, ...rest) {
    kernelsRun.push(name);
    return run.call(this, name, ...rest);
  };
}

test.before(async () => {
  await sn.init({ threads: 2 });
  spyKernels();
});

/** Valid inputs for op, as many as it declares (null where the case leaves an optional one out;
 *  all of the case's for a variadic op). An op without a case gets one-element tensors: the
 *  errors checked here come before any check of shapes. */
function validInputs(op) {
  if (!firstCase.has(op.name)) return [...op.inputs, ...(variadic(op) ? [op.inputs.at(-1)] : [])].map((n) => (n.endsWith("?") ? null : sn.tensor([0.5])));
  const { c, tensors } = firstCase.get(op.name);
  const ins = caseInputs(sn, c, tensors);
  return variadic(op) ? ins : op.inputs.map((_, i) => ins[i] ?? null);
}
const attrsOf = (op) => firstCase.get(op.name)?.c.attrs ?? {};

/** fn must throw an error starting with "<op>: " and matching `re`, with no kernel run and nothing allocated. */
function rejects(op, what, fn, re) {
  const live = sn.engine().memoryStats().live;
  kernelsRun = [];
  let err = null;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  const where = `${op}: ${what}`;
  assert.ok(err, `${where}: no error`);
  assert.ok(err.message.startsWith(`${op}: `), `${where}: the error does not name the op: ${err.message}`);
  assert.match(err.message, re, `${where}: unclear error: ${err.message}`);
  assert.equal(kernelsRun, [], `${where}: kernels ran before the error`);
  assert.is(sn.engine().memoryStats().live, live, `${where}: memory was allocated before the error`);
}

for (const op of ops) {
  const attrs = () => attrsOf(op);

  test(`${op.name}: a disposed input is a clear error, for each input`, () => {
    const ins = validInputs(op);
    ins.forEach((t, i) => {
      if (!t) return;
      const d = sn.tensor(t.toArray(), t.shape);
      d.dispose();
      const bad = ins.map((x, j) => (j === i ? d : x));
      rejects(op.name, `input ${i} disposed`, () => op.apply(bad, attrs()), /tensor \[[\d,]*\] was disposed/);
    });
  });

  test(`${op.name}: a non-Tensor input is a clear error naming the input, for each input`, () => {
    const ins = validInputs(op);
    ins.forEach((t, i) => {
      for (const v of [t ? t.toArray() : new Float32Array(1), 1.5, "x", { shape: [1], data: [0] }]) {
        const bad = ins.map((x, j) => (j === i ? v : x));
        rejects(op.name, `input ${i} is ${typeof v}`, () => op.apply(bad, attrs()), new RegExp(`input '${spelled(op, i)}' must be a Tensor, got ${typeof v}`));
      }
    });
  });

  test(`${op.name}: a missing required input is a clear error naming the input`, () => {
    const ins = validInputs(op);
    ins.forEach((_, i) => {
      if (nameAt(op, i).endsWith("?")) return;
      const re = new RegExp(`input '${spelled(op, i)}' is required`);
      rejects(op.name, `input ${i} null`, () => op.apply(ins.map((x, j) => (j === i ? null : x)), attrs()), re);
      rejects(op.name, `input ${i} undefined`, () => op.apply(ins.map((x, j) => (j === i ? undefined : x)), attrs()), re);
      // fewer inputs are a valid call of a variadic op
      if (!(variadic(op) && i >= op.inputs.length - 1)) rejects(op.name, `inputs cut before ${i}`, () => op.apply(ins.slice(0, i), attrs()), re);
    });
  });

  // a variadic op takes any number of inputs
  if (!variadic(op)) test(`${op.name}: too many inputs is a clear error`, () => {
    const ins = validInputs(op);
    const extra = sn.tensor(new Float32Array(1));
    const n = op.inputs.length;
    rejects(op.name, "one input too many", () => op.apply([...ins, extra], attrs()), new RegExp(`takes ${n} inputs, got ${n + 1}`));
    rejects(op.name, "attributes passed as an input", () => op.apply([...ins, attrs()], attrs()), new RegExp(`takes ${n} inputs, got ${n + 1}`));
  });
}

test("inputs from another live engine are a clear error (ops with two or more inputs)", async () => {
  const other = await sn.Engine.create({ threads: 1 });
  try {
    for (const op of ops) {
      const ins = validInputs(op);
      if (ins.filter(Boolean).length < 2) continue;
      const i = ins.findLastIndex(Boolean);
      const foreign = sn.tensor(ins[i].toArray(), ins[i].shape, other);
      rejects(op.name, "inputs on two engines", () => op.apply(ins.map((x, j) => (j === i ? foreign : x)), attrsOf(op)), /inputs belong to different engines/);
    }
  } finally {
    other.dispose();
  }
});

// Last of the op tests: it starts a new engine.
test("a tensor from a disposed engine (made before init() was called again) is a clear error, for every op", async () => {
  const stale = new Map(ops.map((op) => [op.name, validInputs(op)]));
  await sn.init({ threads: 2 });
  spyKernels();
  for (const op of ops)
    rejects(op.name, "stale engine", () => op.apply(stale.get(op.name), attrsOf(op)), /tensor \[[\d,]*\] belongs to a disposed engine; make it again after init\(\)/);
});

test("reshape to a shape with another number of elements is a clear error (the view would overrun)", () => {
  const x = sn.tensor(new Float32Array(24), [2, 3, 4]);
  const op = sn.opTable.get("reshape");
  for (const shape of [[7], [5, 5], [-1, 24], [2.5, 8], "24"])
    rejects("reshape", JSON.stringify(shape), () => op.apply([x], { shape }), /cannot view \[2,3,4\] \(24 elements\) as/);
  assert.throws(() => x.reshape(5, 5), /reshape: cannot view \[2,3,4\] \(24 elements\) as \[5,5\]/);
});

test("tensor factories: negative, fractional, NaN and infinite sizes, and a shape that is not an array, are clear errors", () => {
  const live = sn.engine().memoryStats().live;
  for (const [name, make] of [
    ["zeros", (s) => sn.zeros(s)],
    ["ones", (s) => sn.ones(s)],
    ["full", (s) => sn.full(s, 2)],
    ["empty", (s) => sn.empty(s)],
  ]) {
    for (const s of [[-1], [2, -3], [2.5], [NaN], [Infinity], [3, "4"]])
      assert.throws(() => make(s), (e) => e.message === `${name}: bad shape [${s.join(",")}]: sizes must be integers >= 0`, `${name}(${JSON.stringify(s)})`);
    assert.throws(() => make(5), (e) => e.message === `${name}: shape must be an array of sizes, got number`);
  }
  // -1 x -2 has as many elements as the values, so the shape itself must be checked
  assert.throws(() => sn.tensor([1, 2], [-1, -2]), /^tensor: bad shape \[-1,-2\]: sizes must be integers >= 0$/);
  assert.throws(() => sn.tensor([1, 2], [NaN]), /tensor: bad shape \[NaN\]/);
  assert.throws(() => sn.tensor([1, 2], [0.5, 4]), /tensor: bad shape \[0\.5,4\]/);
  assert.throws(() => sn.tensor([1, 2, 3], [2, 2]), /tensor: 3 values do not fill shape \[2,2\]/);
  assert.throws(() => sn.tensor(5), /tensor: values must be an array or a typed array of numbers, got number/);
  assert.throws(() => sn.tensor(null), /tensor: values must be an array or a typed array of numbers, got null/);
  // the last argument is an engine: PyTorch's habits (requires_grad, a device) get a clear error
  // saying what to write, not a failure inside the allocator
  const engineArg = /: the last argument is the engine to make the tensor on \(sn\.engine\(\) or sn\.gpuEngine\(\)\), got /;
  assert.throws(() => sn.tensor([1, 2], [2], { requiresGrad: true }),
    (e) => e.message === "tensor: the last argument is the engine to make the tensor on (sn.engine() or sn.gpuEngine()), got an object with keys {requiresGrad}; for a tensor that records gradients write .requireGrad() after it");
  assert.throws(() => sn.zeros([2], { device: "webgpu" }), (e) => /^zeros: /.test(e.message) && engineArg.test(e.message) && e.message.endsWith('write .to("webgpu") after it'));
  assert.throws(() => sn.full([2], 1, "webgpu"), (e) => e.message.startsWith("full: ") && e.message.includes('got string "webgpu"; to put a tensor on a device write .to("webgpu") after it'));
  assert.throws(() => sn.ones([2], 5), (e) => e.message.startsWith("ones: ") && engineArg.test(e.message) && e.message.endsWith("got number 5"));
  assert.throws(() => sn.empty([2], null), (e) => e.message.startsWith("empty: ") && e.message.endsWith("got null"));
  assert.is(sn.engine().memoryStats().live, live, "nothing allocated");
  // the engine itself (and an explicit undefined: the current one) is still taken
  sn.tidy(() => {
    assert.equal(sn.tensor([1, 2], [2], sn.engine()).toArray(), new Float32Array([1, 2]));
    assert.equal(sn.zeros([2], undefined).toArray(), new Float32Array([0, 0]));
    assert.equal(sn.ones([2], undefined).toArray(), new Float32Array([1, 1]));
  });
});

test("harness: an error after a kernel ran, or after an allocation, or not naming the op, is caught", () => {
  const x = sn.tensor([1, -2, 3]);
  // (uvu's assert.throws passes assertion errors through, so catch them here)
  const fails = (fn) => {
    let caught = null;
    try {
      rejects("relu", "harness", fn, /boom/);
    } catch (e) {
      caught = e;
    }
    assert.ok(caught, "rejects() let a faulty call pass");
  };
  fails(() => {
    sn.relu(x);
    throw new Error("relu: boom");
  });
  fails(() => {
    sn.empty([4]);
    throw new Error("relu: boom");
  });
  fails(() => {
    throw new Error("boom");
  });
  fails(() => {});
  rejects("relu", "harness", () => {
    throw new Error("relu: boom");
  }, /boom/);
});

// Every function the library exports, called with arguments of the wrong kind (none, null, an
// empty object, a number, a string, a tensor followed by junk): a clear error from the library,
// never a TypeError from inside it ("Cannot read properties of undefined", "x.map is not a
// function"). Functions added later are covered without a line here.
const NOT_PROBED = new Map([
  // they start, stop or replace the engine this file runs on
  ...["init", "dispose", "engine", "gpuEngine", "setWasmPath"].map((n) => [n, "engine lifetime"]),
  // they write files named by their arguments, or read the network or datasets
  ...["writeFileAtomic", "saveCheckpoint", "saveModel", "loadFashionMnist", "loadMnistDigits", "measurePeak", "fit"].map((n) => [n, "files or long work"]),
  // kernel-level helpers the ops are built from: pointers and an engine as arguments, no checks
  // on the hot path (the ops that call them check everything first)
  ...["accumulateInto", "convForward", "convInput", "convWeight", "convEpiloguePass", "runGemm", "gemm", "packA", "packedABytes", "forwardSplit",
    "linearTable", "nearestTable", "poolGeom", "upGeom", "conv2dGeometry", "convTranspose2dGeometry", "batchNormEvalParams", "sumTo", "defineOp"].map((n) => [n, "kernel-level"]),
]);
const internalError = /Cannot read prop|is not a function|is not iterable|undefined is not|null is not|Cannot convert|Cannot destructure|Maximum call stack|out of bounds|unreachable|The "[a-z]+" argument must be/i;

/** The exported functions and classes: the library's own and its namespaces' (nn, data, train,
 *  models, viz, ...), as [shown name, function, is a class]. Not the op objects the namespaces
 *  re-export (reluOp and the like: their apply checks inputs, their forward and backward are the
 *  kernels' entry points), nor the classes the library makes for the user (Engine, GpuEngine,
 *  Tensor, Optimizer's base, ModuleError). */
const NOT_CONSTRUCTED = new Set(["Engine", "GpuEngine", "Tensor", "Optimizer", "ModuleError", "OpError", "GpuError", "SafetensorsError", "WorkerError", "OutOfMemoryError", "OptimError"]);
function exportedCallables() {
  const out = [];
  const add = (shown, name, f) => {
    if (typeof f !== "function" || NOT_PROBED.has(name) || /^_/.test(name)) return;
    const isClass = /^[A-Z]/.test(name) && !!f.prototype;
    if (isClass && NOT_CONSTRUCTED.has(name)) return;
    out.push([shown, f, isClass]);
  };
  for (const [k, v] of Object.entries(sn)) {
    add(k, k, v);
    // a namespace (export * as nn: a plain object of the module's exports in the bundle; two
    // levels: nn.init)
    const isNamespace = (n, o) => o && typeof o === "object" && !Array.isArray(o) && !(o instanceof Map) && !ArrayBuffer.isView(o) && !/Op(Def)?$/.test(n);
    if (isNamespace(k, v))
      for (const [k2, v2] of Object.entries(v)) {
        if (!/Op(Def)?$/.test(k2)) add(`${k}.${k2}`, k2, v2);
        if (isNamespace(k2, v2)) for (const [k3, v3] of Object.entries(v2)) add(`${k}.${k2}.${k3}`, k3, v3);
      }
  }
  return out;
}

test("every exported function and class: arguments of the wrong kind are a clear error, never a TypeError from inside", async () => {
  const callables = exportedCallables();
  assert.ok(callables.length > 200, `${callables.length} functions and classes probed`);
  assert.ok(["viz.encodePNG", "nn.Sequential", "nn.init.uniform"].every((n) => callables.some(([c]) => c === n)), "the namespaces are probed");
  const x = sn.tensor([1, 2, 3, 4], [1, 1, 2, 2]);
  const argSets = [[], [null], [{}], [5], ["x"], [[1, 2]], [x, null], [x, "bad"], [x, { bogus: 1 }], [x, x, { bogus: 1 }], [x, 5, 5]];
  const problems = [];
  for (const [name, f, isClass] of callables)
    for (const args of argSets) {
      // a zoo builder given no options (or {}) builds its model, which is right and slow
      if (name.startsWith("models.") && !isClass && (args.length === 0 || (args.length === 1 && args[0] && typeof args[0] === "object" && !Array.isArray(args[0])))) continue;
      const shown = `${isClass ? "new " : ""}${name}(${args.map((a) => (a === x ? "x" : JSON.stringify(a))).join(", ")})`;
      let pending = null;
      try {
        sn.tidy(() => {
          const r = isClass ? new f(...args) : f(...args);
          if (r && typeof r.then === "function") pending = r; // an async function's rejection is its error
          return null;
        });
        if (pending) await pending;
      } catch (e) {
        if (!(e instanceof Error)) problems.push(`${shown}: threw ${String(e)}`);
        else if (internalError.test(e.message)) problems.push(`${shown}: ${e.constructor.name}: ${e.message}`);
      }
    }
  x.dispose();
  assert.equal(problems, [], problems.slice(0, 10).join("\n"));
});

test("nn.init: the numbers and the generator are checked before anything is drawn (uniform(t, { a, b }) filled t with NaN)", () => {
  const { init } = sn.nn;
  const t = sn.zeros([2, 3]);
  const before = t.toArray();
  const cases = [
    [() => init.uniform(t, { a: -1, b: 1 }), /^uniform: lo must be a finite number, got an object$/],
    [() => init.uniform(t, 0, NaN), /^uniform: hi must be a finite number, got NaN$/],
    [() => init.gaussian(t, "0.1"), /^gaussian: std must be a finite number, got "0\.1"$/],
    [() => init.gaussian(t, 0.1, { mean: null }), /^gaussian: mean must be a finite number, got null$/],
    [() => init.constant(t, "1"), /^constant: value must be a number, got "1"$/],
    [() => init.xavierUniform(t, { gain: "2" }), /^xavierUniform: gain must be a finite number, got "2"$/],
    [() => init.kaimingNormal(t, { a: [1] }), /^kaimingNormal: a must be a finite number, got \[1\]$/],
    [() => init.kaimingUniform(t, { rng: 5 }), /^kaimingUniform: rng must be a Generator \(new sn\.Generator\(seed\), or leave it out for the default one\), got 5$/],
    [() => init.uniform([1, 2]), /^uniform: the tensor must be a Tensor, got \[1, 2\]$/],
  ];
  for (const [f, re] of cases) assert.throws(f, re);
  assert.equal(t.toArray(), before, "nothing drawn");
  // the valid forms still work, and an infinite constant is a fill like any other
  init.uniform(t, -1, 1, { rng: new sn.Generator(1) });
  assert.ok(t.toArray().every((v) => v >= -1 && v <= 1 && v !== 0));
  init.constant(t, -Infinity);
  assert.ok(t.toArray().every((v) => v === -Infinity));
  t.dispose();
});

test("sum and mean refuse a dim (they reduce every element; PyTorch's x.sum(1) would have been summed whole)", () => {
  const t = sn.tensor([1, 2, 3, 4], [2, 2]);
  assert.throws(() => sn.sum(t, 1), /^sum: sums every element and takes no dim \(got a second argument 1\); there is no per-dimension sum yet$/);
  assert.throws(() => sn.mean(t, { dim: 0 }), /^mean: averages every element and takes no dim \(got a second argument an object\)/);
  assert.is(sn.tidy(() => sn.sum(t).item()), 10);
  assert.is(sn.tidy(() => sn.mean(t).item()), 2.5);
  t.dispose();
});

test("a tensor where the options belong is named as one (PyTorch's cross_entropy(x, y, weight)), not listed by its fields", () => {
  const x = sn.zeros([2, 3]), y = sn.tensor([0, 1], [2]), w = sn.ones([3]);
  assert.throws(() => sn.cross_entropy(x, y, w), /^cross_entropy: the attributes must be an object \{ reduction, ignore_index \}, got a tensor \[3\] on cpu$/);
  assert.throws(() => sn.conv2d(sn.zeros([1, 1, 3, 3]), sn.zeros([1, 1, 1, 1]), null, new Float32Array(2)), /^conv2d: the attributes must be an object \{ stride, padding, dilation, \.\.\. \}, got an object$/);
  for (const t of [x, y, w]) t.dispose();
});

test("flatten and nn.Flatten refuse an end dim other than the last (PyTorch's flatten(x, 1, 2) was flattened to the end)", () => {
  const t = sn.zeros([2, 3, 4, 5]);
  assert.throws(() => sn.flatten(t, 1, 2), /^flatten: flattens from startDim to the last dimension; endDim 2 \(not the last of \[2,3,4,5\]\) is not supported$/);
  assert.throws(() => new sn.nn.Flatten(1, 2), /^Flatten: flattens from start_dim to the last dimension; end_dim 2 \(other than -1\) is not supported$/);
  sn.tidy(() => {
    for (const y of [sn.flatten(t, 1, 3), sn.flatten(t, 1, -1), new sn.nn.Flatten(1, -1).call(t)]) assert.equal(y.shape, [2, 60]);
    assert.equal(new sn.nn.Flatten(2).call(t).shape, [2, 3, 20]);
  });
  t.dispose();
});

// The public methods of the objects users hold (tensors, modules, optimizers, schedulers, data
// sets), with arguments of the wrong kind. Left out: the internal steps the classes call on
// themselves (their names below; TypeScript marks them protected or internal).
const INTERNAL_METHODS = new Set(["adoptMoved", "checkWhole", "markWritten", "view", "assertUsable", "summarize", "traceFlow", "macs",
  "receptiveField", "checkName", "validate", "update", "checkKeys", "checkNonNeg", "buffer", "bufferNames", "fail"]);
test("public methods: arguments of the wrong kind are a clear error, never a TypeError from inside", async () => {
  const makers = {
    tensor: () => sn.tensor([1, 2, 3, 4], [1, 1, 2, 2]),
    Linear: () => new sn.nn.Linear(2, 2),
    Conv2d: () => new sn.nn.Conv2d(1, 2, 1),
    Sequential: () => sn.nn.sequential(new sn.nn.Linear(2, 2), new sn.nn.ReLU()),
    SGD: () => new sn.SGD(new sn.nn.Linear(2, 2).parameters(), { lr: 0.1 }),
    Adam: () => new sn.Adam(new sn.nn.Linear(2, 2).parameters(), { lr: 0.1 }),
    StepLR: () => new sn.StepLR(new sn.SGD(new sn.nn.Linear(2, 2).parameters(), { lr: 0.1 }), { step_size: 1 }),
    Dataset: () => new sn.data.Dataset(new Float32Array(8), [2, 1, 2, 2], new Int32Array([0, 1])),
  };
  const argSets = [[], [null], [{}], [5], ["x"], [[1, 2]], [{ bogus: 1 }], ["x", "y"], [5, 5, 5]];
  const problems = [];
  let probed = 0;
  for (const [kind, make] of Object.entries(makers)) {
    const methods = new Set();
    sn.tidy(() => {
      for (let p = Object.getPrototypeOf(make()); p && p !== Object.prototype; p = Object.getPrototypeOf(p))
        for (const k of Object.getOwnPropertyNames(p))
          if (typeof Object.getOwnPropertyDescriptor(p, k).value === "function" && !["constructor", "dispose", "toString"].includes(k) && !k.startsWith("_") && !INTERNAL_METHODS.has(k)) methods.add(k);
    });
    for (const m of methods)
      for (const args of argSets) {
        probed++;
        let pending = null;
        try {
          sn.tidy(() => {
            const r = make()[m](...args);
            if (r && typeof r.then === "function") pending = r;
            return null;
          });
          if (pending) await pending;
        } catch (e) {
          if (!(e instanceof Error) || internalError.test(e.message)) problems.push(`${kind}.${m}(${args.map((a) => JSON.stringify(a)).join(", ")}): ${e?.message}`);
        }
      }
  }
  assert.ok(probed > 500, `${probed} calls`);
  assert.equal(problems, [], problems.slice(0, 10).join("\n"));
});

test.after(() => sn.dispose());
test.run();
