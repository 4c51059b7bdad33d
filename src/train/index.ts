export { fit, evaluate, evaluateAsync, pickDevice, AUTO_GPU_MACS, type FitOptions, type FitResult, type EpochRecord, type Progress, type LossFn, type Monitor, type EvaluateOptions } from "./fit.js";
export { packCheckpoint, unpackCheckpoint, saveCheckpoint, loadCheckpoint, readCheckpointInfo, CHECKPOINT_FORMAT, type Optimizer, type Stateful, type CheckpointParts, type RestoreParts, sealCheckpoint } from "./checkpoint.js";
export { traceNonFinite, NonFiniteError } from "./nan.js";
export { topkCorrect } from "./metrics.js";
export { historySvg } from "./plot.js";
export { writeFileAtomic } from "./files.js";
export { createOptimizer, type OptimizerName } from "./optimizers.js";
