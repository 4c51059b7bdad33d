// Inference-time folding of batch norm into the convolution before it: in eval mode
//   bn(conv(x)) = gamma * (W*x + b - mean) / sqrt(var + eps) + beta = W'*x + b'
// with W' = W * s per output channel, b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps).
// The batch norm layer becomes an Identity; the convolution gets (or updates) its bias. One
// conv with a bias instead of a conv and a batch norm: no batch norm kernel, no pass over the
// activations, one layer less of JS per pair (what PyTorch's fuse_modules / torch.fx do).
import { Tensor, tensor } from "../tensor.js";
import { Module } from "./module.js";
import { Conv2d } from "./conv.js";
import { BatchNorm2d } from "./norm.js";
import { Identity } from "./misc.js";

/** The children of `m` that run one after the other, in order: every child of a Sequential,
 *  the body of a ResidualBlock (its shortcut and final ReLU are not part of the chain). Other
 *  containers run their children in their own ways (branches), so no pairs are formed there. */
function chain(m: Module): [string, Module][] {
  if (m.type === "Sequential") return [...m.namedChildren()];
  if (m.type === "ResidualBlock") return [...(m as unknown as { body: [string, Module][] }).body];
  return [];
}

function foldable(conv: Module, bn: Module): boolean {
  return (
    conv.type === "Conv2d" && // not a PartialConv2d (its output is rescaled per position)
    conv instanceof Conv2d &&
    bn instanceof BatchNorm2d &&
    bn.numFeatures === conv.outChannels &&
    !!bn.runningMean &&
    !!bn.runningVar // without running statistics eval mode uses the batch's: nothing to fold
  );
}

function fold(conv: Conv2d, bn: BatchNorm2d): void {
  const O = conv.outChannels;
  const mean = bn.runningMean!.data, vari = bn.runningVar!.data;
  const gamma = bn.weight?.data, beta = bn.bias?.data;
  const w = conv.weight.data;
  const per = w.length / O;
  const b = new Float32Array(O);
  const old = conv.bias?.data;
  for (let o = 0; o < O; o++) {
    // in float64, rounded once to float32; eps as the float32 the batch norm kernels add
    const s = (gamma ? gamma[o] : 1) / Math.sqrt(vari[o] + Math.fround(bn.eps));
    for (let i = o * per; i < (o + 1) * per; i++) w[i] = w[i] * s;
    b[o] = ((old ? old[o] : 0) - mean[o]) * s + (beta ? beta[o] : 0);
  }
  if (conv.bias) conv.bias.data.set(b);
  else {
    const t: Tensor = tensor(b, [O], conv.weight.engine);
    conv.registerParameter("bias", t);
    t.requiresGrad = conv.weight.requiresGrad; // a frozen conv stays frozen
    // Conv2d reads this.bias in forward() and in its config (bias: true from now on)
    (conv as { bias: Tensor | null }).bias = t;
  }
}

/**
 * Fold every BatchNorm2d that directly follows a Conv2d (in a Sequential or a ResNet block's
 * body) into that convolution, for inference: the convolution's weights are scaled per output
 * channel and it gets a bias; the batch norm becomes an Identity (its state-dict entries go, the
 * conv's `bias` comes). Changes the model in place and returns it.
 *
 * Only for models in eval mode: folding uses the running statistics, which training mode would
 * neither use (it normalises with the batch's) nor keep in step with the weights. A batch norm
 * without running statistics, or not right after a Conv2d, is left as it is. Load the weights
 * first: the fused model's state dict no longer has the batch norm entries.
 *
 *   const model = createModel("resnet18"); model.loadStateDict(sd); model.eval();
 *   fuseBatchNorm(model); // same outputs up to float32 rounding, fewer layers
 */
export function fuseBatchNorm<M extends Module>(model: M): M {
  if (!(model instanceof Module)) throw new Error("fuseBatchNorm: the argument must be a Module");
  const training = model.namedModules().filter(([, m]) => m.training);
  if (training.length) {
    const where = training[0][0] || "the model";
    throw new Error(
      `fuseBatchNorm: ${where === "the model" ? where : `'${where}'`} is in training mode; call model.eval() first. ` +
        "Folding batch norm into the convolutions uses the running statistics, which only eval mode uses (training normalises with the batch's statistics and updates the running ones)",
    );
  }
  for (const [, parent] of model.namedModules()) {
    const kids = chain(parent);
    for (let i = 0; i + 1 < kids.length; i++) {
      const [, conv] = kids[i];
      const [bnName, bn] = kids[i + 1];
      if (!foldable(conv, bn)) continue;
      fold(conv as Conv2d, bn as BatchNorm2d);
      const id = new Identity();
      id.training = false;
      parent.replaceModule(bnName, id);
      bn.dispose();
      i++; // the Identity cannot start a pair
    }
  }
  return model;
}
