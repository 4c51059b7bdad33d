// Loss and accuracy curves per epoch as a small self-contained SVG (no dependencies).
import type { EpochRecord } from "./fit.js";
import { badArgument } from "../options.js";

interface Series {
  name: string;
  color: string;
  dash?: boolean;
  values: (number | undefined)[];
}

function panel(x0: number, title: string, series: Series[], epochs: number[], yFixed?: [number, number]): string {
  const W = 360, H = 240, L = 50, R = 10, T = 28, B = 36;
  const all = series.flatMap((s) => s.values.filter((v): v is number => typeof v === "number" && Number.isFinite(v)));
  let [lo, hi] = yFixed ?? [Math.min(...all, Infinity), Math.max(...all, -Infinity)];
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
  if (hi - lo < 1e-9) [lo, hi] = [lo - 0.5, hi + 0.5];
  // round numbers on the axis: a step of 1, 2 or 5 times a power of ten, about 4 of them
  const raw = (hi - lo) / 4, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((st) => st >= raw)!;
  if (!yFixed) [lo, hi] = [Math.floor(lo / step) * step, Math.ceil(hi / step) * step];
  const n = Math.max(1, epochs.length - 1);
  const X = (i: number) => x0 + L + ((W - L - R) * (epochs.length === 1 ? 0.5 : i / n));
  const Y = (v: number) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  const out: string[] = [];
  out.push(`<text x="${x0 + L}" y="18" font-weight="bold">${title}</text>`);
  out.push(`<rect x="${x0 + L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#999"/>`);
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9; v += step) {
    out.push(`<line x1="${x0 + L}" x2="${x0 + W - R}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}" stroke="#eee"/>`);
    out.push(`<text x="${x0 + L - 4}" y="${(Y(v) + 4).toFixed(1)}" text-anchor="end" font-size="10">${+v.toPrecision(6)}</text>`);
  }
  epochs.forEach((e, i) => out.push(`<text x="${X(i).toFixed(1)}" y="${H - B + 14}" text-anchor="middle" font-size="10">${e}</text>`));
  out.push(`<text x="${x0 + L + (W - L - R) / 2}" y="${H - 6}" text-anchor="middle" font-size="11">epoch</text>`);
  series.forEach((s, k) => {
    const pts = s.values.map((v, i) => (typeof v === "number" && Number.isFinite(v) ? `${X(i).toFixed(1)},${Y(v).toFixed(1)}` : null)).filter(Boolean);
    if (!pts.length) return;
    out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ' stroke-dasharray="5,3"' : ""} points="${pts.join(" ")}"/>`);
    for (const p of pts) out.push(`<circle cx="${p!.split(",")[0]}" cy="${p!.split(",")[1]}" r="2.5" fill="${s.color}"/>`);
    out.push(`<text x="${x0 + W - R - 75 * (series.length - 1 - k)}" y="18" text-anchor="end" font-size="11" fill="${s.color}">${s.dash ? "- - " : "— "}${s.name}</text>`);
  });
  return out.join("\n");
}

/** Two panels: loss (train, validation) and top-1 accuracy (train, validation) per epoch. */
export function historySvg(history: EpochRecord[], title = ""): string {
  if (!Array.isArray(history) || history.some((r) => r === null || typeof r !== "object"))
    badArgument("historySvg", "the history", "fit()'s array of epoch records", history);
  const epochs = history.map((r) => r.epoch);
  const loss: Series[] = [{ name: "train", color: "#1f77b4", values: history.map((r) => r.loss) }];
  const acc: Series[] = [{ name: "train", color: "#1f77b4", values: history.map((r) => r.top1) }];
  if (history.some((r) => r.val_loss !== undefined)) {
    loss.push({ name: "validation", color: "#d62728", dash: true, values: history.map((r) => r.val_loss) });
    acc.push({ name: "validation", color: "#d62728", dash: true, values: history.map((r) => r.val_top1) });
  }
  const accs = acc.flatMap((s) => s.values.filter((v): v is number => typeof v === "number"));
  const lo = Math.max(0, Math.floor(Math.min(...accs, 1) * 10) / 10);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="720" height="${title ? 270 : 250}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    title ? `<text x="360" y="14" text-anchor="middle" font-size="13">${title.replace(/[<&>]/g, "")}</text><g transform="translate(0,20)">` : "<g>",
    panel(0, "loss", loss, epochs),
    panel(360, "top-1 accuracy", acc, epochs, [lo, 1]),
    "</g>",
    "</svg>",
  ].join("\n");
}
