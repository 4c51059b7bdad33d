// Learning-rate schedules, as torch.optim.lr_scheduler (1.13) computes them: step() applies the
// recursive ("chainable") form to each group's current lr, so the values match torch's step for
// step, warm-up chains included. Call scheduler.step() after optimizer.step().
import { Optimizer, OptimError, type BaseOptions, show } from "./optimizer.js";
import { checkOptions, badArgument } from "../options.js";

type AnyOptimizer = Optimizer<BaseOptions>;

export interface SchedulerState {
  last_epoch: number;
  step_count: number;
  base_lrs: number[];
  last_lr: number[];
}

export abstract class LRScheduler {
  lastEpoch: number;
  baseLrs: number[];
  protected stepCount = 0;
  protected lastLr: number[] = [];

  constructor(readonly name: string, readonly optimizer: AnyOptimizer) {
    if (!(optimizer instanceof Optimizer)) throw new OptimError(`${name}: the first argument must be an optimizer, got ${typeof optimizer}`);
    for (const g of optimizer.paramGroups) g.initial_lr ??= g.lr;
    this.baseLrs = optimizer.paramGroups.map((g) => g.initial_lr!);
    this.lastEpoch = -1;
  }

  /** torch's constructor ends with one step (to epoch 0); subclasses call this once set up. */
  protected initialStep(): void {
    this.stepCount = 0;
    this.step();
  }

  /** The recursive form: next lrs from the groups' current ones. */
  protected abstract computeLr(): number[];
  /** The closed form at lastEpoch (used when an epoch is given, as SequentialLR does). */
  protected abstract closedFormLr(): number[];

  /** Advances one epoch (or jumps to `epoch`, with the closed form) and sets every group's lr. */
  step(epoch?: number): void {
    this.stepCount++;
    let values: number[];
    if (epoch === undefined) {
      this.lastEpoch++;
      values = this.computeLr();
    } else {
      if (!Number.isInteger(epoch) || epoch < 0) throw new OptimError(`${this.name}.step: epoch must be an integer >= 0, got ${show(epoch)}`);
      this.lastEpoch = epoch;
      values = this.closedFormLr();
    }
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = values[i]));
    this.lastLr = this.optimizer.paramGroups.map((g) => g.lr);
  }

  /** The learning rates set by the last step, one per parameter group (torch's get_last_lr). */
  getLr(): number[] {
    return [...this.lastLr];
  }

  protected groupLrs(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  stateDict(): SchedulerState {
    return { last_epoch: this.lastEpoch, step_count: this.stepCount, base_lrs: [...this.baseLrs], last_lr: [...this.lastLr] };
  }

  /** Keys of the state dict besides the four every scheduler has. */
  protected extraStateKeys: string[] = [];

  /** Throws (naming the field and the value) unless `s` is a state this scheduler can take:
   *  the right keys, integer epochs and steps, one finite learning rate >= 0 per group. Checked
   *  in full before loadStateDict changes anything: a damaged value would otherwise surface as
   *  a NaN learning rate epochs later. */
  checkState(s: SchedulerState): void {
    const where = `${this.name}.loadStateDict`;
    const n = this.baseLrs.length;
    if (!s || typeof s !== "object" || Array.isArray(s)) throw new OptimError(`${where}: expected the state of a scheduler over ${n} parameter groups, got ${s === null ? "null" : typeof s}`);
    const known = ["last_epoch", "step_count", "base_lrs", "last_lr", ...this.extraStateKeys];
    for (const k of Object.keys(s)) if (!known.includes(k)) throw new OptimError(`${where}: unexpected key '${k}' (a ${this.name} state has ${known.join(", ")})`);
    const int = (k: "last_epoch" | "step_count", min: number) => {
      const v = s[k];
      if (typeof v !== "number" || !Number.isInteger(v) || v < min) throw new OptimError(`${where}: ${k} must be an integer >= ${min}, got ${show(v ?? null)}`);
    };
    int("last_epoch", -1);
    int("step_count", 0);
    for (const k of ["base_lrs", "last_lr"] as const) {
      const v = s[k];
      if (!Array.isArray(v) || v.length !== n) throw new OptimError(`${where}: expected the state of a scheduler over ${n} parameter groups (${k} must be a list of ${n} learning rates, got ${Array.isArray(v) ? `${v.length}` : show(v ?? null)})`);
      v.forEach((x, i) => {
        if (typeof x !== "number" || !Number.isFinite(x) || x < 0) throw new OptimError(`${where}: ${k}[${i}] must be a finite number >= 0, got ${show(x ?? null)}`);
      });
    }
  }

  loadStateDict(s: SchedulerState): void {
    this.checkState(s);
    this.lastEpoch = s.last_epoch;
    this.stepCount = s.step_count;
    this.baseLrs = [...s.base_lrs];
    this.lastLr = [...s.last_lr];
  }
}

/** A scheduler's options: an object of these keys (its required ones are checked after). */
function checkKeys(name: string, opts: unknown, known: string[]): void {
  checkOptions(name, opts, known, { error: OptimError });
}

function positiveInt(name: string, what: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new OptimError(`${name}: ${what} must be an integer >= 1, got ${show(v)}`);
  return v;
}

function finite(name: string, what: string, v: unknown, lo = -Infinity, hi = Infinity): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < lo || v > hi)
    throw new OptimError(`${name}: ${what} must be a finite number${lo > -Infinity ? ` in [${lo}, ${hi}]` : ""}, got ${show(v)}`);
  return v;
}

/** lr · gamma every step_size epochs. */
export class StepLR extends LRScheduler {
  readonly step_size: number;
  readonly gamma: number;
  constructor(optimizer: AnyOptimizer, opts: { step_size: number; gamma?: number }) {
    checkKeys("StepLR", opts, ["step_size", "gamma"]);
    super("StepLR", optimizer);
    this.step_size = positiveInt(this.name, "step_size", opts?.step_size);
    this.gamma = finite(this.name, "gamma", opts.gamma ?? 0.1);
    this.initialStep();
  }
  protected computeLr(): number[] {
    const lrs = this.groupLrs();
    if (this.lastEpoch === 0 || this.lastEpoch % this.step_size !== 0) return lrs;
    return lrs.map((lr) => lr * this.gamma);
  }
  protected closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** Math.floor(this.lastEpoch / this.step_size));
  }
}

/** lr · gamma every epoch. */
export class ExponentialLR extends LRScheduler {
  readonly gamma: number;
  constructor(optimizer: AnyOptimizer, opts: { gamma: number }) {
    checkKeys("ExponentialLR", opts, ["gamma"]);
    super("ExponentialLR", optimizer);
    this.gamma = finite(this.name, "gamma", opts?.gamma);
    this.initialStep();
  }
  protected computeLr(): number[] {
    const lrs = this.groupLrs();
    return this.lastEpoch === 0 ? lrs : lrs.map((lr) => lr * this.gamma);
  }
  protected closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** this.lastEpoch);
  }
}

/** Cosine from the base lr down to eta_min over T_max epochs (and back up, periodically, after). */
export class CosineAnnealingLR extends LRScheduler {
  readonly T_max: number;
  readonly eta_min: number;
  constructor(optimizer: AnyOptimizer, opts: { T_max: number; eta_min?: number }) {
    checkKeys("CosineAnnealingLR", opts, ["T_max", "eta_min"]);
    super("CosineAnnealingLR", optimizer);
    this.T_max = positiveInt(this.name, "T_max", opts?.T_max);
    this.eta_min = finite(this.name, "eta_min", opts.eta_min ?? 0);
    this.initialStep();
  }
  protected computeLr(): number[] {
    const { lastEpoch: e, T_max: T, eta_min: m } = this;
    const lrs = this.groupLrs();
    if (e === 0) return lrs;
    if (this.stepCount === 1 && e > 0) return this.baseLrs.map((b) => m + ((b - m) * (1 + Math.cos((e * Math.PI) / T))) / 2);
    // Python's % is a floor modulo: (e - 1 - T) is negative during the first period
    const mod = (a: number, n: number) => ((a % n) + n) % n;
    if (mod(e - 1 - T, 2 * T) === 0) return lrs.map((lr, i) => lr + ((this.baseLrs[i] - m) * (1 - Math.cos(Math.PI / T))) / 2);
    return lrs.map((lr) => ((1 + Math.cos((Math.PI * e) / T)) / (1 + Math.cos((Math.PI * (e - 1)) / T))) * (lr - m) + m);
  }
  protected closedFormLr(): number[] {
    return this.baseLrs.map((b) => this.eta_min + ((b - this.eta_min) * (1 + Math.cos((Math.PI * this.lastEpoch) / this.T_max))) / 2);
  }
}

/** Linear ramp of the lr factor from start_factor to end_factor over total_iters epochs (warm-up). */
export class LinearLR extends LRScheduler {
  readonly start_factor: number;
  readonly end_factor: number;
  readonly total_iters: number;
  constructor(optimizer: AnyOptimizer, opts: { start_factor?: number; end_factor?: number; total_iters?: number } = {}) {
    checkKeys("LinearLR", opts, ["start_factor", "end_factor", "total_iters"]);
    super("LinearLR", optimizer);
    this.start_factor = finite(this.name, "start_factor", opts.start_factor ?? 1 / 3, 0, 1);
    this.end_factor = finite(this.name, "end_factor", opts.end_factor ?? 1, 0, 1);
    this.total_iters = positiveInt(this.name, "total_iters", opts.total_iters ?? 5);
    this.initialStep();
  }
  protected computeLr(): number[] {
    const { lastEpoch: e, start_factor: s, end_factor: f, total_iters: n } = this;
    const lrs = this.groupLrs();
    if (e === 0) return lrs.map((lr) => lr * s);
    if (e > n) return lrs;
    return lrs.map((lr) => lr * (1 + (f - s) / (n * s + (e - 1) * (f - s))));
  }
  protected closedFormLr(): number[] {
    const { lastEpoch: e, start_factor: s, end_factor: f, total_iters: n } = this;
    return this.baseLrs.map((b) => b * (s + ((f - s) * Math.min(n, e)) / n));
  }
}

/** Runs schedulers one after another, switching at the milestones (epochs), as torch's
 *  SequentialLR: at a milestone the next scheduler restarts from its epoch 0 (closed form). */
export class SequentialLR extends LRScheduler {
  readonly schedulers: LRScheduler[];
  readonly milestones: number[];
  constructor(optimizer: AnyOptimizer, schedulers: LRScheduler[], milestones: number[]) {
    super("SequentialLR", optimizer);
    if (!Array.isArray(schedulers) || schedulers.length === 0) throw new OptimError(`${this.name}: schedulers must be a non-empty list`);
    schedulers.forEach((s, i) => {
      if (!(s instanceof LRScheduler) || s.optimizer !== optimizer) throw new OptimError(`${this.name}: scheduler ${i} does not belong to the same optimizer`);
    });
    if (!Array.isArray(milestones) || milestones.length !== schedulers.length - 1)
      throw new OptimError(`${this.name}: expected ${schedulers.length - 1} milestones for ${schedulers.length} schedulers, got ${show(milestones)}`);
    milestones.forEach((m, i) => {
      if (!Number.isInteger(m) || m < 1 || (i > 0 && m <= milestones[i - 1])) throw new OptimError(`${this.name}: milestones must be increasing integers >= 1, got ${show(milestones)}`);
    });
    this.schedulers = schedulers;
    this.milestones = [...milestones];
    this.lastEpoch = 0;
    for (const g of optimizer.paramGroups) g.lr = g.initial_lr!;
    for (const s of schedulers) s.lastEpoch -= 1;
    (schedulers[0] as SequentialLR).initialStep();
    this.lastLr = schedulers[0].getLr();
  }
  step(): void {
    this.lastEpoch++;
    // bisect_right: the number of milestones <= lastEpoch
    const idx = this.milestones.filter((m) => m <= this.lastEpoch).length;
    const s = this.schedulers[idx];
    if (idx > 0 && this.milestones[idx - 1] === this.lastEpoch) s.step(0);
    else s.step();
    this.lastLr = s.getLr();
  }
  protected computeLr(): number[] {
    return this.groupLrs();
  }
  protected closedFormLr(): number[] {
    return this.groupLrs();
  }
  stateDict(): SchedulerState & { schedulers: SchedulerState[] } {
    return { ...super.stateDict(), schedulers: this.schedulers.map((s) => s.stateDict()) };
  }
  protected extraStateKeys = ["schedulers"];
  checkState(s: SchedulerState & { schedulers: SchedulerState[] }): void {
    if (!Array.isArray(s?.schedulers) || s.schedulers.length !== this.schedulers.length)
      throw new OptimError(`${this.name}.loadStateDict: expected the states of ${this.schedulers.length} schedulers`);
    super.checkState(s);
    s.schedulers.forEach((st, i) => {
      try {
        this.schedulers[i].checkState(st);
      } catch (e) {
        throw new OptimError(`${this.name}.loadStateDict: scheduler ${i}: ${(e as Error).message}`);
      }
    });
  }
  loadStateDict(s: SchedulerState & { schedulers: SchedulerState[] }): void {
    this.checkState(s);
    super.loadStateDict(s);
    s.schedulers.forEach((st, i) => this.schedulers[i].loadStateDict(st));
  }
}

/** A linear warm-up from start_factor·lr to lr over `steps` epochs, then `then` (a scheduler
 *  made on the same optimizer), as SequentialLR([LinearLR, then], [steps]). */
export function linearWarmup(optimizer: AnyOptimizer, opts: { steps: number; start_factor?: number; then: LRScheduler }): SequentialLR {
  if (opts === null || typeof opts !== "object") badArgument("linearWarmup", "its options", "an object { steps, start_factor?, then }", opts);
  checkKeys("linearWarmup", opts, ["steps", "start_factor", "then"]);
  const warm = new LinearLR(optimizer, { start_factor: opts.start_factor ?? 1 / 3, end_factor: 1, total_iters: opts.steps });
  return new SequentialLR(optimizer, [warm, opts.then], [opts.steps]);
}
