// The demo's model file: one .safetensors file with the weights (PyTorch state-dict names, so
// safetensors.torch.load_file reads it) and the architecture JSON (what saveModel writes to its
// .json) in the header's metadata under "simdnet". Loading also takes saveModel's pair of files.
import { SIDE, CLASSES } from "./trainer.js";

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
