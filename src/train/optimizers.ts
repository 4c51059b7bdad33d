// Optimisers by name, for fit() and the command line.
import type { Tensor } from "../tensor.js";
import type { Optimizer } from "./checkpoint.js";
import { SGD, Adam, AdamW, RMSprop } from "../optim/index.js";
import { checkOptions, badArgument } from "../options.js";

export type OptimizerName = "sgd" | "adam" | "adamw" | "rmsprop";

export function createOptimizer(name: string, params: Tensor[], o: { lr: number; momentum?: number; weightDecay?: number }): Optimizer {
  if (o === null || typeof o !== "object") badArgument("createOptimizer", "its options", "an object { lr, momentum?, weightDecay? }", o);
  checkOptions("createOptimizer", o, ["lr", "momentum", "weightDecay"]);
  const weight_decay = o.weightDecay ?? 0;
  switch (name) {
    case "sgd":
      return new SGD(params, { lr: o.lr, momentum: o.momentum ?? 0, weight_decay });
    case "adam":
      return new Adam(params, { lr: o.lr, weight_decay });
    case "adamw":
      return new AdamW(params, { lr: o.lr, weight_decay: o.weightDecay ?? 0.01 });
    case "rmsprop":
      return new RMSprop(params, { lr: o.lr, momentum: o.momentum ?? 0, weight_decay });
    default:
      throw new Error(`fit: unknown optimizer '${name}' (sgd, adam, adamw, rmsprop)`);
  }
}
