// loss ops (see docs/ops.md): one defineOp per op, forward and backward side by side.
export {};
