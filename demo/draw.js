// The drawing pad (pointer events: mouse, pen and touch alike) and MNIST's preprocessing of a
// drawing: MNIST digits were scaled to fit a 20x20 box and placed in 28x28 with their centre
// of mass in the middle, so a drawing is prepared the same way before the network sees it.

export class Pad {
  /** onChange(done): called while a stroke is drawn (done = false) and when it ends (true). */
  constructor(canvas, onChange) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { willReadFrequently: true });
    this.onChange = onChange;
    this.last = null;
    this.clear();
    canvas.addEventListener("pointerdown", (e) => {
      canvas.setPointerCapture(e.pointerId);
      this.last = this.at(e);
      this.line(this.last, this.last);
      this.onChange(false);
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!this.last) return;
      // Coalesced events keep fast strokes smooth where the browser batches them.
      for (const ev of e.getCoalescedEvents?.() ?? [e]) {
        const p = this.at(ev);
        this.line(this.last, p);
        this.last = p;
      }
      this.onChange(false);
    });
    const end = () => {
      if (!this.last) return;
      this.last = null;
      this.onChange(true);
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
  }

  at(e) {
    const r = this.canvas.getBoundingClientRect();
    return { x: ((e.clientX - r.left) * this.canvas.width) / r.width, y: ((e.clientY - r.top) * this.canvas.height) / r.height };
  }

  line(a, b) {
    const c = this.ctx;
    c.strokeStyle = "#fff";
    c.lineWidth = this.canvas.width / 13;
    c.lineCap = c.lineJoin = "round";
    c.beginPath();
    c.moveTo(a.x, a.y);
    c.lineTo(b.x + 0.01, b.y);
    c.stroke();
  }

  clear() {
    this.ctx.fillStyle = "#000";
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
  }

  /** The drawing as 28x28 values in [0, 1], MNIST-style; null when nothing is drawn. */
  digit() {
    const { width: W, height: H } = this.canvas;
    const rgba = this.ctx.getImageData(0, 0, W, H).data;
    return toMnist(rgba, W, H);
  }
}

/** RGBA drawing (white on black) -> 28x28 in [0, 1]: bounding box scaled to fit 20x20 (box
 *  filter), then shifted so the centre of mass is at the centre. */
export function toMnist(rgba, W, H) {
  let x0 = W, y0 = H, x1 = -1, y1 = -1;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      if (rgba[(y * W + x) * 4] > 20) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
  if (x1 < 0) return null;
  const bw = x1 - x0 + 1, bh = y1 - y0 + 1;
  const s = 20 / Math.max(bw, bh);
  const tw = Math.max(1, Math.ceil(bw * s)), th = Math.max(1, Math.ceil(bh * s));
  // Each source pixel adds its share (s*s of a target pixel) to the target pixel it falls in.
  const box = new Float32Array(tw * th);
  for (let y = y0; y <= y1; y++)
    for (let x = x0; x <= x1; x++) {
      const v = rgba[(y * W + x) * 4] / 255;
      if (v) box[Math.min(th - 1, Math.floor((y - y0) * s)) * tw + Math.min(tw - 1, Math.floor((x - x0) * s))] += v * s * s;
    }
  let mass = 0, mx = 0, my = 0;
  for (let y = 0; y < th; y++)
    for (let x = 0; x < tw; x++) {
      const v = Math.min(1, box[y * tw + x]);
      box[y * tw + x] = v;
      mass += v;
      mx += v * x;
      my += v * y;
    }
  const clamp = (v, hi) => Math.max(0, Math.min(hi, v));
  const ox = clamp(Math.round(14 - (mx / mass + 0.5)), 28 - tw), oy = clamp(Math.round(14 - (my / mass + 0.5)), 28 - th);
  const out = new Float32Array(28 * 28);
  for (let y = 0; y < th; y++) for (let x = 0; x < tw; x++) out[(oy + y) * 28 + ox + x] = box[y * tw + x];
  return out;
}

/** Show 28x28 values in [0, 1] on a 28x28 canvas. */
export function showDigit(canvas, pixels) {
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = (pixels ? pixels[i] : 0) * 255;
    img.data.set([v, v, v, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
}
