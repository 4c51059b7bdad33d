// What the demo shows about one drawn digit: class probabilities, and the lecture's
// visualisations (saliency, occlusion, first-layer filters and activation maps) as PNG bytes.
// Runs in the worker; takes the library as an argument like trainer.js.
import { SIDE, CLASSES } from "./trainer.js";

/** pixels: SIDE*SIDE values in [0, 1] (white digit on black, as MNIST) -> normalised [1,1,H,W]. */
function input(sn, pixels, normalize) {
  const m = normalize.mean[0], s = normalize.std[0];
  return sn.tensor(Float32Array.from(pixels, (v) => (v - m) / s), [1, 1, SIDE, SIDE]);
}

function softmax(logits) {
  const max = Math.max(...logits);
  const e = Array.from(logits, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** The model's class probabilities for one digit. */
export function predict(sn, model, pixels, normalize) {
  model.eval();
  const logits = sn.noGrad(() => sn.tidy(() => model.forward(input(sn, pixels, normalize)).toArray()));
  if (logits.length !== CLASSES) throw new Error(`the model gives ${logits.length} scores; the demo needs ${CLASSES}`);
  return softmax(logits);
}

/** Saliency and occlusion maps for class `cls`, the first conv layer's filters and its
 *  activation maps for this digit: each as PNG bytes. batch: occluded images per forward (1 for
 *  a graph that takes one image at a time). */
export function inspect(sn, model, pixels, normalize, cls, batch = 32) {
  model.eval();
  const forward = (x) => model.forward(x);
  const png = (img) => sn.viz.encodePNG(img);
  return sn.tidy(() => {
    const x = input(sn, pixels, normalize);
    const sal = sn.viz.saliency(forward, x, cls);
    // Occlusion covers a patch with background (a black pixel, normalised), so the map shows
    // which strokes the class score depends on.
    const background = (0 - normalize.mean[0]) / normalize.std[0];
    const occ = sn.viz.occlusion(forward, x, cls, { patch: 6, stride: 2, value: background, batch });
    const out = { saliency: png(sn.viz.heatImage(sal, 4)), occlusion: png(sn.viz.heatImage(occ, 8)) };
    const conv = model.modules().find((m) => m.type === "Conv2d");
    if (conv) {
      out.filters = png(sn.viz.filterGrid(conv.weight, { scale: 6, cols: 10 }));
      // The first conv layer's output for this digit, caught as the model runs.
      let act = null;
      sn.noGrad(() =>
        sn.nn.withForwardHook(
          (m, _in, y) => {
            if (m === conv) act = y;
          },
          () => model.forward(x),
        ),
      );
      if (act) out.activations = png(sn.viz.activationGrid(act, { scale: 2, cols: 10 }));
    }
    return out;
  });
}
