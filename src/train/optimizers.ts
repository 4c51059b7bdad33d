// Optimisers by name, for fit() and the command line.
import type { Tensor } from "../tensor.js";
import type { Optimizer } from "./checkpoint.js";

export type OptimizerName = "sgd" | "adam" | "adamw" | "rmsprop";

export function createOptimizer(name: string, _params: Tensor[], _o: { lr: number; momentum?: number; weightDecay?: number }): Optimizer {
  throw new Error(`fit: optimizer '${name}': optimisers by name need src/optim (pass an optimiser object instead)`);
}
