// Optimisers, gradient utilities and learning-rate schedules.
export { Optimizer, OptimError, type OptimStateDict, type ParamGroup, type ParamsArg } from "./optimizer.js";
export { SGD, type SGDOptions } from "./sgd.js";
export { RMSprop, type RMSpropOptions } from "./rmsprop.js";
export { Adam, AdamW, type AdamOptions } from "./adam.js";
export { clipGradNorm, clipGradNormTensor, clipGradValue, addL1Grad } from "./clip.js";
export { LRScheduler, StepLR, ExponentialLR, CosineAnnealingLR, LinearLR, SequentialLR, linearWarmup, type SchedulerState } from "./lr_scheduler.js";
