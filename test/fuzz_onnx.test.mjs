// Fuzzing the ONNX importer: valid files (a handmade model and small torch exports), damaged
// thousands of ways (seeded, so every run tries the same inputs: truncations, flipped bits,
// overwritten bytes, huge varints, lengths past the end, wrong wire types, spliced and repeated
// slices). Each damaged file must either load or be refused with an OnnxError; what loads must
// run on an input of its declared shape or fail with an error naming the layer (ModuleError),
// never a TypeError or RangeError, never a hang, and leave no tensor behind once disposed.
// Then targeted cases the format's rules make hostile: external data, ints past 2^53, lengths
// past the end, groups, deep nesting, tensors that claim more values than they hold.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import * as sn from "../dist/index.js";
import { loadOnnx, OnnxError } from "../dist/onnx.js";
import { fuzzRng } from "./helpers.mjs";
import { smallModel, buildModel, field } from "./onnx_build.mjs";

const RUNS = 3000;
const rand = fuzzRng(20261206);
const int = (n) => rand.int(n);

const fixture = (name) => new Uint8Array(readFileSync(new URL(`./fixtures/onnx/${name}`, import.meta.url)));
const seeds = [smallModel(), fixture("unet.eval.op13.onnx"), fixture("fcn.train.op17.onnx"), fixture("handmade_c.onnx")];

function mutate(src) {
  const b = src.slice();
  switch (int(8)) {
    case 0: // truncate
      return b.subarray(0, int(b.length));
    case 1: { // flip bits
      for (let k = 1 + int(4); k > 0; k--) b[int(b.length)] ^= 1 << int(8);
      return b;
    }
    case 2: { // overwrite bytes
      for (let k = 1 + int(8); k > 0; k--) b[int(b.length)] = int(256);
      return b;
    }
    case 3: { // a huge varint (a length or an int past 2^53) at a random place
      const at = int(b.length);
      const v = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01].slice(int(4));
      return Uint8Array.from([...b.subarray(0, at), ...v, ...b.subarray(at + v.length)]);
    }
    case 4: { // change a wire type: the low 3 bits of a likely tag byte
      const at = int(b.length);
      b[at] = (b[at] & ~7) | int(8);
      return b;
    }
    case 5: { // splice a slice of the file elsewhere
      const s = int(b.length), e = Math.min(b.length, s + int(64)), at = int(b.length);
      return Uint8Array.from([...b.subarray(0, at), ...b.subarray(s, e), ...b.subarray(at)]);
    }
    case 6: { // delete a slice
      const s = int(b.length), e = Math.min(b.length, s + 1 + int(32));
      return Uint8Array.from([...b.subarray(0, s), ...b.subarray(e)]);
    }
    default: // bump a small number (dims, attribute ints, lengths)
      for (let k = 0; k < 20; k++) {
        const at = int(b.length);
        if (b[at] < 0x80 && b[at] > 0) {
          b[at] = Math.min(0x7f, b[at] + 1 + int(8));
          break;
        }
      }
      return b;
  }
}

function isClear(e) {
  return (e instanceof OnnxError || e?.name === "ModuleError" || e?.name === "OnnxError") && !(e instanceof TypeError) && !(e instanceof RangeError);
}

// a small memory: a damaged size (pads of 262145, a resize to 40000 columns) is then refused by
// the ops' own checks instead of running a valid but huge graph
test.before(async () => {
  await sn.init({ threads: 1, maxMemory: 32 * 2 ** 20 });
});

test(`${RUNS} damaged files: loaded and run, or refused with an OnnxError; no crash, hang or leak`, async () => {
  const stats = { loaded: 0, ran: 0, refused: 0, failedToRun: 0 };
  const live = sn.engine().memoryStats().live;
  const t0 = Date.now();
  let slowest = 0;
  for (let i = 0; i < RUNS; i++) {
    const bytes = mutate(seeds[i % seeds.length]);
    const start = Date.now();
    let m = null;
    try {
      m = await loadOnnx(bytes);
      stats.loaded++;
    } catch (e) {
      if (!isClear(e)) throw new Error(`run ${i}: loading gave ${e?.name}: ${e?.message}\n${e?.stack}`);
      stats.refused++;
      if (process.env.FUZZ_DEBUG) console.log(`run ${i}: ${e.message.slice(0, 300)}`);
    }
    if (m) {
      try {
        const shape = m.inputShape?.every((d) => typeof d === "number" && d > 0 && d < 64) ? m.inputShape : null;
        if (shape) {
          sn.noGrad(() => sn.tidy(() => void m.call(sn.zeros(shape))));
          stats.ran++;
        }
      } catch (e) {
        if (!isClear(e)) throw new Error(`run ${i}: running gave ${e?.name}: ${e?.message}\n${e?.stack}`);
        stats.failedToRun++;
        if (process.env.FUZZ_DEBUG) console.log(`run ${i}: ${e.message.slice(0, 300)}`);
      } finally {
        m.dispose();
      }
    }
    slowest = Math.max(slowest, Date.now() - start);
    assert.is(sn.engine().memoryStats().live, live, `run ${i} (seed ${i % seeds.length}, ${m ? "loaded" : "refused"}, ${JSON.stringify(stats)}): tensors left behind`);
  }
  console.log(`fuzz_onnx: ${JSON.stringify(stats)} in ${Date.now() - t0} ms, slowest input ${slowest} ms`);
  assert.ok(stats.refused > RUNS / 10 && stats.loaded > RUNS / 10, "the mutations hit both outcomes");
  // the slowest are valid graphs made larger (about 1 s alone on a shared machine); a hang is not
  assert.ok(slowest < 5000, `an input took ${slowest} ms`);
});

/** The bytes of a model with one tensor initializer replaced by `tensorBytes` (field 5 of the graph). */
function withInitializer(tensorBytes) {
  const graph = Uint8Array.from([
    ...field.bytes(1, Uint8Array.from([...field.string(1, "x"), ...field.string(2, "y"), ...field.string(4, "Relu")])),
    ...field.bytes(5, tensorBytes),
    ...field.bytes(11, field.string(1, "x")),
    ...field.bytes(12, field.string(1, "y")),
  ]);
  return Uint8Array.from([...field.varint(1, 8), ...field.bytes(7, graph), ...field.bytes(8, field.varint(2, 13))]);
}

async function refuses(bytes, re) {
  try {
    await loadOnnx(bytes);
  } catch (e) {
    assert.instance(e, OnnxError);
    assert.ok(re.test(e.message), `"${e.message}" does not match ${re}`);
    return;
  }
  assert.unreachable(`expected an OnnxError matching ${re}`);
}

test("hostile files: external data, ints past 2^53, lengths past the end, groups, deep nesting, short tensors", async () => {
  const name = field.string(8, "w");
  // external data (data_location = EXTERNAL)
  await refuses(withInitializer(Uint8Array.from([...field.varint(1, 4), ...field.varint(2, 1), ...name, ...field.varint(14, 1)])), /tensor 'w' keeps its data in an external file/);
  // a dimension past 2^53 (a ten-byte varint)
  const big = Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
  await refuses(withInitializer(Uint8Array.from([...big, ...field.varint(2, 1), ...name])), /integer \d+ is past 2\^53/);
  // a tensor claiming 2^40 floats with 8 bytes of data: refused before any allocation
  await refuses(withInitializer(Uint8Array.from([...field.varint(1, 2 ** 20), ...field.varint(1, 2 ** 20), ...field.varint(2, 1), ...name, ...field.bytes(9, new Uint8Array(8))])), /tensor 'w' of shape \[1048576, 1048576\] and FLOAT needs 4398046511104 bytes of raw_data, has 8/);
  await refuses(withInitializer(Uint8Array.from([...field.varint(1, 3), ...field.varint(2, 1), ...name, ...field.float(4, 1)])), /tensor 'w' of shape \[3\] has 1 values, expected 3/);
  // a length past the end of the file
  await refuses(Uint8Array.from([0x3a, 0xff, 0xff, 0x03, 0x01]), /length 65535 runs past the end of the message/);
  // a group (wire type 3)
  await refuses(Uint8Array.from([0x0b, 0x0c]), /wire type 3/);
  // a field of the wrong wire type
  await refuses(Uint8Array.from([0x3d, 0, 0, 0, 0]), /field 'graph' has wire type 5, expected 2/);
  // If branches nested deeper than the limit
  let g = Uint8Array.from(field.string(2, "leaf"));
  for (let d = 0; d < 12; d++) {
    const attr = Uint8Array.from([...field.string(1, "then_branch"), ...field.bytes(6, g), ...field.varint(20, 5)]);
    g = Uint8Array.from(field.bytes(1, Uint8Array.from([...field.string(4, "If"), ...field.bytes(5, attr)])));
  }
  await refuses(Uint8Array.from([...field.bytes(7, g), ...field.bytes(8, field.varint(2, 13))]), /graphs nested more than 8 deep/);
  // INT64 values past 2^53 are only taken as Slice's "to the end": as a Reshape shape they are an error
  const m = buildModel({
    opset: 13, input: ["x", [1, 4]], output: "y",
    nodes: [{ op: "Reshape", inputs: ["x", "shape"], outputs: ["y"], name: "reshape" }],
    inits: [{ name: "shape", dims: [2], ints: [1n << 60n, 4] }],
  });
  const model = await loadOnnx(m);
  assert.throws(() => model.call(sn.zeros([1, 4])), /node 'reshape' \(Reshape\): shape must be integers within 2\^53, got \[Infinity, 4\]/);
  model.dispose();
  // not an ONNX file at all
  await refuses(new TextEncoder().encode("PK\x03\x04 a zip file"), /onnx: ModelProto/);
  await refuses(new Uint8Array(0), /the file has no graph/);
});

test.run();
