// Nonlinearities as layers (no parameters, shape-preserving).
import { Tensor } from "../tensor.js";
import { Module } from "./module.js";
import { describe } from "./shapes.js";
import { relu, leaky_relu, sigmoid, tanh, softmax, log_softmax } from "../ops/index.js";

export class ReLU extends Module {
  readonly type = "ReLU";
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class LeakyReLU extends Module {
  readonly type = "LeakyReLU";
  constructor(readonly negativeSlope = 0.01) {
    super();
    if (!Number.isFinite(negativeSlope)) throw new Error(`LeakyReLU: negative_slope must be a number, got ${describe(negativeSlope)}`);
  }
  forward(x: Tensor): Tensor {
    return leaky_relu(x, this.negativeSlope);
  }
  protected args() {
    return [this.negativeSlope];
  }
  protected extraRepr() {
    return `negative_slope=${this.negativeSlope}`;
  }
}

export class Sigmoid extends Module {
  readonly type = "Sigmoid";
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

export class Tanh extends Module {
  readonly type = "Tanh";
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

function checkDim(type: string, dim: number, shape: number[]) {
  if (dim < 0 ? -dim > shape.length : dim >= shape.length) throw new Error(`dim ${dim} is out of range for rank ${shape.length}`);
}

export class Softmax extends Module {
  readonly type: string = "Softmax";
  constructor(readonly dim = 1) {
    super();
    if (!Number.isInteger(dim)) throw new Error(`Softmax: dim must be an integer, got ${describe(dim)}`);
  }
  outputShape(i: number[]): number[] {
    checkDim(this.type, this.dim, i);
    return i;
  }
  forward(x: Tensor): Tensor {
    return softmax(x, this.dim);
  }
  protected args() {
    return [this.dim];
  }
  protected extraRepr() {
    return `dim=${this.dim}`;
  }
}

export class LogSoftmax extends Softmax {
  readonly type: string = "LogSoftmax";
  forward(x: Tensor): Tensor {
    return log_softmax(x, this.dim);
  }
}
