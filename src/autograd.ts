// Reverse-mode differentiation over a tape of op applications (micrograd's idea: each op
// records its inputs and its backward; gradients accumulate, so fan-out is right).
import { Tensor, _setBackward, keep, shapeStr, full } from "./tensor.js";
import { badArgument, checkOptions } from "./options.js";

export interface Node {
  op: string;
  inputs: (Tensor | null)[];
  /** gradient of the output -> gradients of the inputs (null where not needed) */
  backward: (g: Tensor, needs: boolean[]) => (Tensor | null)[];
}

let gradEnabled = true;
/** Whether a backward pass is running (it records nothing either). */
let inBackward = false;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Whether parameters are being trained: recording for backward, or in a backward pass. */
export function isTraining(): boolean {
  return gradEnabled || inBackward;
}

/** Run fn without recording anything for backward (inference). */
export function noGrad<T>(fn: () => T): T {
  if (typeof fn !== "function") badArgument("noGrad", "its argument", "a function", fn);
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function needsGrad(t: Tensor | null | undefined): boolean {
  return !!t && (t.requiresGrad || t.node !== null);
}

/** Hook to add b into a (set by the ops module to avoid a cycle). */
let accumulate: (into: Tensor, g: Tensor) => void = () => {
  throw new Error("autograd: ops not loaded");
};
let cloneT: (t: Tensor) => Tensor = (t) => t;
export function _setAccumulate(acc: typeof accumulate, clone: typeof cloneT) {
  accumulate = acc;
  cloneT = clone;
}

/** Options of Tensor.backward: `inputs`, the tensors whose .grad receives the gradient (PyTorch's
 *  backward(inputs=...)); the others are left as they are, and no op computes a gradient that
 *  leads only to them (a saliency map's backward computes no weight gradient). An input the
 *  output does not depend on keeps its .grad, as in PyTorch. */
export interface BackwardOptions {
  inputs?: Tensor[];
}

function backward(root: Tensor, grad?: Tensor | null, opts?: BackwardOptions): void {
  if (grad !== undefined && grad !== null && !(grad instanceof Tensor)) badArgument("backward", "the output's gradient", `a tensor ${shapeStr(root.shape)}`, grad);
  let only: Set<Tensor> | null = null;
  if (opts !== undefined) {
    checkOptions("backward", opts, ["inputs"]);
    const ins = opts.inputs;
    if (ins !== undefined) {
      if (!Array.isArray(ins) || ins.length === 0) badArgument("backward", "inputs", "a non-empty array of tensors that require grad", ins);
      ins.forEach((t, i) => {
        if (!(t instanceof Tensor)) badArgument("backward", `inputs[${i}]`, "a tensor", t);
        if (!t.requiresGrad) throw new Error(`backward: inputs[${i}] ${shapeStr(t.shape)} does not require grad (call .requireGrad() on it)`);
      });
      only = new Set(ins);
    }
  }
  if (!grad && root.size !== 1)
    throw new Error(`backward: output ${shapeStr(root.shape)} is not a scalar; pass the gradient of the output`);
  if (grad && grad.size !== root.size)
    throw new Error(`backward: gradient ${shapeStr(grad.shape)} does not match output ${shapeStr(root.shape)}`);
  if (!needsGrad(root)) throw new Error("backward: output does not depend on any tensor that requires grad");
  // topological order from the root
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    if (i === 0) {
      if (seen.has(t)) {
        stack.pop();
        continue;
      }
      seen.add(t);
    }
    const ins = t.node ? t.node.inputs : [];
    if (i < ins.length) {
      top[1]++;
      const c = ins[i];
      if (c && needsGrad(c) && !seen.has(c)) stack.push([c, 0]);
    } else {
      stack.pop();
      order.push(t);
    }
  }
  // with inputs: the tensors from which one of them is reached (order lists inputs before users)
  let leads: Set<Tensor> | null = null;
  if (only) {
    leads = new Set();
    for (const t of order) if (only.has(t) || t.node?.inputs.some((x) => x && leads!.has(x))) leads.add(t);
    if (!leads.has(root)) return; // none of inputs is reached: their .grad stays as it is (as PyTorch)
  }
  const grads = new Map<Tensor, Tensor>();
  grads.set(root, grad ?? full(root.shape, 1, root.engine));
  const prev = gradEnabled, prevIn = inBackward;
  gradEnabled = false;
  inBackward = true;
  try {
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k];
      const g = grads.get(t);
      if (!g) continue;
      if (leads && !leads.has(t)) {
        // (ops compute no gradient toward such a tensor; one can only arrive as a view)
        if (!(grad && g.storage === grad.storage)) g.dispose();
        grads.delete(t);
        continue;
      }
      if (t.requiresGrad && !t.node) {
        // a leaf: accumulate into .grad (kept alive outside tidy scopes)
        if (t.grad) accumulate(t.grad, g);
        // the caller's gradient (or a view of it, after a reshape) stays the caller's
        else t.grad = keep(grad && g.storage === grad.storage ? cloneT(g) : g);
        continue;
      }
      if (!t.node) continue;
      const needs = t.node.inputs.map((x) => needsGrad(x) && (!leads || leads.has(x!)));
      const gin = t.node.backward(g, needs);
      t.node.inputs.forEach((x, j) => {
        const gj = gin[j];
        if (!x || !gj || !needs[j]) return;
        if (gj.size !== x.size)
          throw new Error(`backward of ${t.node!.op}: gradient ${shapeStr(gj.shape)} does not match input ${shapeStr(x.shape)}`);
        const have = grads.get(x);
        if (have) {
          accumulate(have, gj);
          gj.dispose();
        } else grads.set(x, gj.shape.length === x.shape.length ? gj : gj.reshape(x.shape as number[]));
      });
      if (t.requiresGrad && (!only || only.has(t))) {
        // a non-leaf that asked for its gradient
        if (t.grad) accumulate(t.grad, g);
        else t.grad = keep(cloneT(g));
      }
      // a gradient passed on as a view (reshape's backward) lives on in its input's gradient
      if (t !== root && g !== grad && !gin.some((gj) => gj && gj.storage === g.storage)) g.dispose();
      grads.delete(t);
    }
  } finally {
    gradEnabled = prev;
    inBackward = prevIn;
  }
}

_setBackward(backward);
