// When the loss goes NaN or infinite: run the batch again with a hook on every layer and name
// the first one whose output is not finite, and any parameter that already is not.
import { Tensor, tidy } from "../tensor.js";
import { noGrad } from "../autograd.js";
import { Module, withForwardHook } from "../nn/module.js";
import { badArgument } from "../options.js";

export class NonFiniteError extends Error {
  constructor(
    message: string,
    readonly step: number,
    readonly layer: string | null,
  ) {
    super(message);
    this.name = "NonFiniteError";
  }
}

function finite(t: Tensor): boolean {
  const d = t.data;
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return false;
  return true;
}

export interface NonFiniteReport {
  input: boolean;
  /** path and description of the first layer (in execution order) with a non-finite output */
  layer: { path: string; describe: string } | null;
  parameters: string[];
}

/** Re-run model(x) (same mode, no gradients) and find where values stop being finite. */
export function traceNonFinite(model: Module, x: Tensor): NonFiniteReport {
  if (!(model instanceof Module) || !(x instanceof Tensor)) badArgument("traceNonFinite", "(model, x)", "a Module and a tensor", [model, x]);
  const parameters = model.namedParameters().filter(([, p]) => !finite(p)).map(([n]) => n);
  const input = !finite(x);
  let layer: NonFiniteReport["layer"] = null;
  try {
    withForwardHook(
      (m, _in, out) => {
        // children finish before their parents, so the first hit is the innermost layer
        if (!layer && !finite(out)) layer = { path: m.path() || "(model)", describe: m.describe() };
      },
      () => noGrad(() => tidy(() => void model.call(x))),
    );
  } catch {
    // the report is about values; a failing re-run (e.g. a NaN index) leaves what we have
  }
  return { input, layer, parameters };
}

export function nonFiniteError(value: number, epoch: number, step: number, batch: number, report: NonFiniteReport): NonFiniteError {
  const parts = [`loss is ${value} at step ${step} (epoch ${epoch}, batch ${batch})`];
  if (report.input) parts.push("the input batch has non-finite values");
  if (report.layer) parts.push(`first non-finite output: layer '${report.layer.path}' ${report.layer.describe}`);
  else parts.push("every layer's output is finite: the loss itself overflowed (check the targets and the learning rate)");
  if (report.parameters.length) parts.push(`non-finite parameters: ${report.parameters.slice(0, 5).join(", ")}${report.parameters.length > 5 ? ", ..." : ""}`);
  return new NonFiniteError(`training stopped: ${parts.join("; ")}`, step, report.layer?.path ?? null);
}
