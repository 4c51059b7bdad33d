// A small line plot on a canvas: steps on x, one or more series, a legend. Drawn at the
// device's pixel ratio so it stays sharp; redrawn whole (a few thousand points at most).

/** series: [{ label, color, points: [[x, y], ...], width?, dots? }]; opts: { title, yMin, yMax
 *  (default: the largest y), ticks (grid lines above yMin), xLabel, yFormat } */
export function drawPlot(canvas, series, { title = "", yMin = 0, yMax, ticks = 4, xLabel = "step", yFormat = (v) => v.toFixed(1) } = {}) {
  const dpr = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth || canvas.width, cssH = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(cssW * dpr)) canvas.width = Math.round(cssW * dpr);
  if (canvas.height !== Math.round(cssH * dpr)) canvas.height = Math.round(cssH * dpr);
  const c = canvas.getContext("2d");
  c.setTransform(dpr, 0, 0, dpr, 0, 0);
  c.clearRect(0, 0, cssW, cssH);
  const L = 40, R = 10, T = 22, B = 22;
  const w = cssW - L - R, h = cssH - T - B;
  let xMax = 1;
  let top = yMax ?? 0;
  for (const s of series)
    for (const [x, y] of s.points) {
      if (x > xMax) xMax = x;
      if (yMax === undefined && Number.isFinite(y) && y > top) top = y;
    }
  if (!(top > yMin)) top = yMin + 1;
  const X = (x) => L + (x / xMax) * w;
  const Y = (y) => T + h - ((Math.min(top, Math.max(yMin, y)) - yMin) / (top - yMin)) * h;

  c.font = "11px system-ui, sans-serif";
  c.strokeStyle = "#d0d4da";
  c.fillStyle = "#5b6470";
  c.lineWidth = 1;
  c.textAlign = "right";
  c.textBaseline = "middle";
  for (let i = 0; i <= ticks; i++) {
    const v = yMin + ((top - yMin) * i) / ticks;
    c.beginPath();
    c.moveTo(L, Y(v) + 0.5);
    c.lineTo(L + w, Y(v) + 0.5);
    c.stroke();
    c.fillText(yFormat(v), L - 4, Y(v));
  }
  c.textAlign = "center";
  c.textBaseline = "top";
  c.fillText(`${xLabel} ${Math.round(xMax)}`, L + w - 20, T + h + 6);
  c.fillText("0", L, T + h + 6);

  let lx = L;
  c.textAlign = "left";
  c.textBaseline = "middle";
  if (title) {
    c.font = "600 12px system-ui, sans-serif";
    c.fillStyle = "#1f2630";
    c.fillText(title, lx, 10);
    lx += 14 + c.measureText(title).width;
    c.font = "11px system-ui, sans-serif";
  }
  for (const s of series) {
    c.strokeStyle = c.fillStyle = s.color;
    c.lineWidth = s.width ?? 1.5;
    c.beginPath();
    s.points.forEach(([x, y], i) => (i ? c.lineTo(X(x), Y(y)) : c.moveTo(X(x), Y(y))));
    c.stroke();
    if (s.dots) for (const [x, y] of s.points) c.fillRect(X(x) - 2.5, Y(y) - 2.5, 5, 5);
    // legend along the top
    c.fillRect(lx, 8, 12, 3);
    c.fillStyle = "#333";
    c.fillText(s.label, lx + 16, 10);
    lx += 24 + c.measureText(s.label).width;
  }
}
