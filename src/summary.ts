// summary(model, inputShape): per layer the output shape, parameters, multiply-adds and receptive
// field, worked out from the shapes alone (nothing runs), plus totals; as data and as a table.
import { Module, ModuleError, type SummaryRow, type Flow } from "./nn/module.js";
import { shapeStr } from "./tensor.js";
import { badArgument } from "./options.js";

export interface ModelSummary {
  inputShape: number[];
  outputShape: number[];
  rows: SummaryRow[];
  /** distinct parameter values (a shared tensor counts once) */
  totalParams: number;
  trainableParams: number;
  /** multiply-adds of one forward pass over the whole input batch */
  totalMacs: number;
  /** receptive field of one output position, in input pixels [h, w] */
  receptiveField: [number, number];
  /** the printed table */
  toString(): string;
}

/** inputShape: [C, H, W] (a batch of one is assumed), [N, C, H, W], or [N, features]. */
export function summary(model: Module, inputShape: readonly number[]): ModelSummary {
  if (!(model instanceof Module)) throw new Error("summary: the first argument must be a Module");
  if (!Array.isArray(inputShape) || inputShape.some((d) => !Number.isInteger(d) || d < 1))
    throw new Error(`summary: inputShape must be positive integers, got ${JSON.stringify(inputShape)}`);
  const shape = inputShape.length === 3 ? [1, ...inputShape] : [...inputShape];
  const rows: SummaryRow[] = [];
  const start: Flow = { shape, rf: [1, 1], jump: [1, 1] };
  let end: Flow;
  try {
    end = model.summarize(start, rows, "");
  } catch (e) {
    if (e instanceof ModuleError) throw new Error(`summary: ${e.message}`);
    throw e;
  }
  const s: ModelSummary = {
    inputShape: shape,
    outputShape: end.shape,
    rows,
    totalParams: model.numParameters(),
    trainableParams: model.numParameters(true),
    totalMacs: rows.reduce((a, r) => a + r.macs, 0),
    receptiveField: end.rf,
    toString: () => formatSummary(s),
  };
  return s;
}

const num = (n: number) => n.toLocaleString("en-US");
const dims = (shape: number[]) => shape.slice(1).join("x");

export function formatSummary(s: ModelSummary): string {
  if (s === null || typeof s !== "object" || !Array.isArray(s.rows)) badArgument("formatSummary", "its argument", "what summary() returns", s);
  const head = ["Layer", "Type", "Output", "Params", "Mult-adds", "RF"];
  const body = s.rows.map((r) => [r.name || "(model)", r.layer, dims(r.outputShape), r.params ? num(r.params) : "-", r.macs ? num(r.macs) : "-", `${r.rf[0]}x${r.rf[1]}`]);
  const all = [head, ...body];
  const w = head.map((_, c) => Math.max(...all.map((r) => r[c].length)));
  const right = [false, false, false, true, true, true];
  const line = (r: string[]) => r.map((v, c) => (right[c] ? v.padStart(w[c]) : v.padEnd(w[c]))).join("  ").trimEnd();
  const rule = "-".repeat(w.reduce((a, b) => a + b + 2, -2));
  const batch = s.inputShape[0] === 1 ? "" : ` (mult-adds for a batch of ${s.inputShape[0]})`;
  return [
    `Input ${dims(s.inputShape)}${batch}`,
    rule,
    line(head),
    rule,
    ...body.map(line),
    rule,
    `Output: ${shapeStr(s.outputShape)}`,
    `Parameters: ${num(s.totalParams)} (trainable ${num(s.trainableParams)})`,
    `Mult-adds: ${num(s.totalMacs)}`,
    `Receptive field: ${s.receptiveField[0]}x${s.receptiveField[1]}`,
  ].join("\n");
}
