// GoogLeNet / Inception v1 (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015,
// table 1 and figure 3), laid out as torchvision's googlenet(aux_logits=True) so that the
// state-dict names (conv1.conv.weight, inception3a.branch2.1.bn.running_var, aux1.fc2.weight)
// and parameter counts are torchvision's: 13,004,888 with the two auxiliary classifiers,
// 6,624,904 without. (The paper's table 1 adds up to about 6.8 million for the net without the
// heads; with real 5x5 convs, fiveByFive below, this build has 7,005,832, batch norm included.)
// Where torchvision differs from the paper, we follow it (its weights were trained so):
// - every conv is conv (no bias) + batch norm (eps 0.001) + ReLU, and there is no LRN;
// - the "5x5" branch of every Inception module is a 3x3 conv (a slip kept for its pretrained
//   weights); fiveByFive: true builds the paper's 5x5 (more parameters, other shapes);
// - dropout 0.2 before the last layer (the paper: 40%); the auxiliary heads as in the paper:
//   5x5/3 average pooling (an adaptive 4x4 pool, the same on 14x14 maps), 1x1 conv 128, FC 1024,
//   dropout 0.7, FC classes.
// The auxiliary classifiers sit on inception4a and inception4d. They run only in training mode:
// forward() returns the main logits and leaves the auxiliary ones in `auxLogits`; auxLoss()
// gives the paper's extra loss term ("weighted by 0.3"), and withAuxLoss() a loss for fit() that
// adds it. In eval mode they are skipped.
import { Tensor } from "../tensor.js";
import { Module, checkNamedChildren, type Flow, type SummaryRow, type ModuleConfig } from "../nn/module.js";
import { Sequential, Concat } from "../nn/containers.js";
import { Conv2d, Linear } from "../nn/conv.js";
import { MaxPool2d, AdaptiveAvgPool2d } from "../nn/pool.js";
import { ReLU } from "../nn/activation.js";
import { BatchNorm2d } from "../nn/norm.js";
import { Dropout, Flatten } from "../nn/misc.js";
import { registerModuleType } from "../nn/config.js";
import { add, mul, cross_entropy } from "../ops/index.js";
import { checkInt, checkOptions } from "./blocks.js";
import { keysOf } from "../options.js";

/** torchvision's BasicConv2d: conv without bias, batch norm (eps 0.001), ReLU. */
export function basicConv(inC: number, outC: number, k: number, options: { stride?: number; padding?: number } = {}): Sequential {
  checkOptions("basicConv", options, ["stride", "padding"]);
  const { stride = 1, padding = 0 } = options;
  return new Sequential({
    conv: new Conv2d(inC, outC, k, { stride, padding, bias: false }),
    bn: new BatchNorm2d(outC, { eps: 0.001 }),
    relu: new ReLU(),
  });
}

/** The Inception module with dimension reductions (figure 2b): 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 |
 *  3x3 max pool -> 1x1, joined on the channel axis. The numbers are table 1's columns. */
export function inception(inC: number, c1: number, r3: number, c3: number, r5: number, c5: number, pool: number, k5 = 3): Concat {
  return new Concat([
    ["branch1", basicConv(inC, c1, 1)],
    ["branch2", new Sequential(basicConv(inC, r3, 1), basicConv(r3, c3, 3, { padding: 1 }))],
    ["branch3", new Sequential(basicConv(inC, r5, 1), basicConv(r5, c5, k5, { padding: (k5 - 1) / 2 }))],
    ["branch4", new Sequential(new MaxPool2d(3, { stride: 1, padding: 1, ceilMode: true }), basicConv(inC, pool, 1))],
  ]);
}

/** The auxiliary classifier of section 5. */
export function inceptionAux(inC: number, classes: number): Sequential {
  return new Sequential({
    pool: new AdaptiveAvgPool2d(4),
    conv: basicConv(inC, 128, 1),
    flatten: new Flatten(),
    fc1: new Linear(2048, 1024),
    relu: new ReLU(),
    dropout: new Dropout(0.7),
    fc2: new Linear(1024, classes),
  });
}

type LossFn = (logits: Tensor, target: Tensor) => Tensor;
const crossEntropy: LossFn = (logits, target) => cross_entropy(logits, target);

/** Where the auxiliary heads read the trunk. */
const TAPS: Record<string, string> = { aux1: "inception4a", aux2: "inception4d" };

/** The trunk in order, with the auxiliary heads reading it at inception4a and inception4d. */
export class GoogLeNet extends Module {
  readonly type = "GoogLeNet";
  /** the auxiliary logits [aux1, aux2] of the last forward in training mode ([] in eval mode) */
  auxLogits: Tensor[] = [];
  private trunk: [string, Module][] = [];
  private heads: [string, Module][] = [];

  /** layers: children in torchvision's order; those named aux1/aux2 are the heads */
  constructor(layers: [string, Module][]) {
    super();
    checkNamedChildren("GoogLeNet", layers);
    for (const [n, m] of layers) {
      this.registerModule(n, m);
      (n in TAPS ? this.heads : this.trunk).push([n, m]);
    }
    for (const [n] of this.heads)
      if (!this.trunk.some(([t]) => t === TAPS[n])) throw new Error(`GoogLeNet: head ${n} reads ${TAPS[n]}, which the trunk lacks`);
  }

  private headsAt(trunkName: string): [string, Module][] {
    return this.heads.filter(([n]) => TAPS[n] === trunkName);
  }

  forward(x: Tensor): Tensor {
    const aux: Tensor[] = [];
    for (const [n, m] of this.trunk) {
      x = m.call(x);
      if (this.training) for (const [, h] of this.headsAt(n)) aux.push(h.call(x));
    }
    this.auxLogits = aux;
    return x;
  }

  /** 0.3 x the sum of the auxiliary heads' losses from the last training forward (section 5),
   *  to add to the main loss; null when there are none (eval mode, or built without heads). */
  auxLoss(target: Tensor, loss: LossFn = crossEntropy): Tensor | null {
    if (!this.auxLogits.length) return null;
    const terms = this.auxLogits.map((l) => loss(l, target));
    return mul(terms.reduce((a, b) => add(a, b)), 0.3);
  }

  /** A loss for fit(): loss(logits, target) plus, after a training-mode forward, auxLoss(). */
  withAuxLoss(loss: LossFn = crossEntropy): LossFn {
    return (logits, target) => {
      const main = loss(logits, target);
      const aux = this.auxLoss(target, loss);
      return aux ? add(main, aux) : main;
    };
  }

  outputShape(i: number[]): number[] {
    for (const [n, m] of this.trunk) {
      i = m.outputShape(i);
      for (const [, h] of this.headsAt(n)) h.outputShape(i);
    }
    return i;
  }

  summarize(flow: Flow, rows: SummaryRow[], name: string): Flow {
    const at = (n: string) => (name ? `${name}.${n}` : n);
    for (const [n, m] of this.trunk) {
      flow = m.summarize(flow, rows, at(n));
      for (const [hn, h] of this.headsAt(n)) h.summarize(flow, rows, at(hn));
    }
    return flow;
  }

  config(): ModuleConfig {
    return { type: this.type, children: [...this.namedChildren()].map(([n, m]) => [n, m.config()]) };
  }
}
registerModuleType("GoogLeNet", (_a, kids, names) => new GoogLeNet(names.map((n, i) => [n, kids[i]])));

export interface GoogLeNetOptions {
  classes?: number;
  inChannels?: number;
  /** height = width of the input; 224 in the paper, down to 64 works (the heads need 4x4+ maps) */
  inputSize?: number;
  /** build the two auxiliary classifiers (default true) */
  aux?: boolean;
  /** real 5x5 convs in the third branch, as in the paper (torchvision uses 3x3) */
  fiveByFive?: boolean;
  dropout?: number;
}

const GOOGLENET_OPTIONS = keysOf<GoogLeNetOptions>({ classes: true, inChannels: true, inputSize: true, aux: true, fiveByFive: true, dropout: true });

export function googlenet(options: GoogLeNetOptions = {}): GoogLeNet {
  checkOptions("googlenet", options, GOOGLENET_OPTIONS);
  const { classes = 1000, inChannels = 3, inputSize = 224, aux = true, fiveByFive = false, dropout = 0.2 } = options;
  checkInt("googlenet", "classes", classes, 1);
  checkInt("googlenet", "inChannels", inChannels, 1);
  checkInt("googlenet", "inputSize", inputSize, 1);
  const k5 = fiveByFive ? 5 : 3;
  const inc = (...a: [number, number, number, number, number, number, number]) => inception(...a, k5);
  const pool = (k: number) => new MaxPool2d(k, { stride: 2, ceilMode: true });
  const layers: [string, Module][] = [
    ["conv1", basicConv(inChannels, 64, 7, { stride: 2, padding: 3 })],
    ["maxpool1", pool(3)],
    ["conv2", basicConv(64, 64, 1)],
    ["conv3", basicConv(64, 192, 3, { padding: 1 })],
    ["maxpool2", pool(3)],
    ["inception3a", inc(192, 64, 96, 128, 16, 32, 32)],
    ["inception3b", inc(256, 128, 128, 192, 32, 96, 64)],
    ["maxpool3", pool(3)],
    ["inception4a", inc(480, 192, 96, 208, 16, 48, 64)],
    ["inception4b", inc(512, 160, 112, 224, 24, 64, 64)],
    ["inception4c", inc(512, 128, 128, 256, 24, 64, 64)],
    ["inception4d", inc(512, 112, 144, 288, 32, 64, 64)],
    ["inception4e", inc(528, 256, 160, 320, 32, 128, 128)],
    ["maxpool4", pool(2)],
    ["inception5a", inc(832, 256, 160, 320, 32, 128, 128)],
    ["inception5b", inc(832, 384, 192, 384, 48, 128, 128)],
  ];
  if (aux) layers.push(["aux1", inceptionAux(512, classes)], ["aux2", inceptionAux(528, classes)]);
  layers.push(["avgpool", new AdaptiveAvgPool2d(1)], ["flatten", new Flatten()], ["dropout", new Dropout(dropout)], ["fc", new Linear(1024, classes)]);
  const model = new GoogLeNet(layers);
  try {
    model.outputShape([1, inChannels, inputSize, inputSize]);
  } catch (e) {
    throw new Error(`googlenet: inputSize ${inputSize} is too small (${(e as Error).message})`);
  }
  return model;
}
