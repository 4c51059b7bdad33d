// The demo's model file: one .safetensors file with the weights (PyTorch state-dict names, so
// safetensors.torch.load_file reads it) and the architecture JSON (what saveModel writes to its
// .json) in the header's metadata under "simdnet". Loading also takes saveModel's pair of files,
// or one .onnx file (an image classifier of the drawing's size).
import { SIDE, CLASSES, NORMALIZE } from "./trainer.js";

const KEY = "simdnet";

export function modelFileBytes(sn, model, meta) {
  return sn.weightsToSafetensors(model, { [KEY]: JSON.stringify(sn.modelConfig(model, meta)) });
}

/** files: [{name, bytes: Uint8Array}] -> { model, meta }. Errors say which file and why. */
export function modelFromFiles(sn, files) {
  const weights = files.filter((f) => /\.safetensors$/i.test(f.name));
  const configs = files.filter((f) => /\.json$/i.test(f.name));
  if (weights.length !== 1 || configs.length > 1 || files.length > 2)
    throw new Error(`choose one .safetensors file saved by the demo, or a model's .json and .safetensors pair (got ${files.map((f) => f.name).join(", ") || "no file"})`);
  const w = weights[0];
  let config, what;
  if (configs.length) {
    config = new TextDecoder().decode(configs[0].bytes);
    what = configs[0].name;
  } else {
    config = sn.parseSafetensors(w.bytes, w.name).metadata[KEY];
    what = w.name;
    if (!config) throw new Error(`${w.name}: holds weights but no model description; choose it together with the .json saved beside it`);
  }
  // the description is held to the weights before anything is built (a hostile 85-byte
  // description cannot make the page allocate gigabytes)
  const { model, meta } = sn.modelFromBytes(config, w.bytes, { configName: what, weightsName: w.name });
  let out;
  try {
    out = model.outputShape([1, 1, SIDE, SIDE]);
  } catch (e) {
    throw new Error(`${what}: this model does not take 1x${SIDE}x${SIDE} images (${e.message})`);
  }
  if (out.length !== 2 || out[1] !== CLASSES) throw new Error(`${what}: this model gives [${out}] for one image; the demo needs ${CLASSES} class scores`);
  const n = meta.normalize;
  const one = (v) => (Array.isArray(v) ? v.length === 1 && typeof v[0] === "number" : typeof v === "number");
  if (n && !(one(n.mean) && one(n.std) && [].concat(n.std)[0] > 0)) throw new Error(`${what}: meta.normalize must give one mean and one std > 0, got ${JSON.stringify(n)}`);
  if (n) meta.normalize = { mean: [].concat(n.mean), std: [].concat(n.std) };
  return { model, meta };
}

/** One .onnx file -> { model, meta }: loadOnnx (the simdnet/onnx entry point, imported only
 *  when an .onnx file comes) and the checks that the graph is a classifier of the drawing: its
 *  input 1xSIDExSIDE (batch 1 or any), 10 class scores out. ONNX holds no input
 *  normalisation: the page uses the one its own LeNet trains with (NORMALIZE). */
export async function modelFromOnnx(sn, file) {
  // dist/onnx.js, not onnx.browser.js: it imports the library as ./index.js, the same module the
  // worker runs (one engine, one Module class); onnx.browser.js pairs with dist/browser.js
  const { loadOnnx } = await import("../dist/onnx.js");
  let model;
  try {
    model = await loadOnnx(file.bytes);
  } catch (e) {
    throw new Error(`${file.name}: ${e.message}`);
  }
  try {
    const shape = model.inputShape;
    const fits = (d, want) => typeof d !== "number" || d === want;
    if (shape && (shape.length !== 4 || !fits(shape[0], 1) || !fits(shape[1], 1) || !fits(shape[2], SIDE) || !fits(shape[3], SIDE)))
      throw new Error(`${file.name}: this model takes input [${shape.join(", ")}]; the demo classifies one 1x${SIDE}x${SIDE} drawing at a time ([1, 1, ${SIDE}, ${SIDE}])`);
    model.eval();
    let out;
    try {
      out = sn.noGrad(() => sn.tidy(() => [...model.call(sn.zeros([1, 1, SIDE, SIDE])).shape]));
    } catch (e) {
      throw new Error(`${file.name}: this model does not run on one 1x${SIDE}x${SIDE} image (${e.message})`);
    }
    if (out.length !== 2 || out[1] !== CLASSES) throw new Error(`${file.name}: this model gives [${out}] for one image; the demo needs ${CLASSES} class scores`);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, meta: { onnx: file.name, normalize: NORMALIZE, ...(runsBatches(sn, model) ? {} : { batch: 1 }) } };
}

/** Whether the graph takes batches of images: torch's eval-mode x.view(x.size(0), -1), and
 *  exportOnnx's Flatten, bake the exported batch size into a Reshape. Such a model classifies
 *  the drawing but cannot train here, and the occlusion map runs one image at a time. */
function runsBatches(sn, model) {
  try {
    sn.noGrad(() => sn.tidy(() => void model.call(sn.zeros([2, 1, SIDE, SIDE]))));
    return true;
  } catch {
    return false;
  }
}
