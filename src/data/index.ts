export { parseIdx, writeIdx, gunzip, isGzip, IdxError, type IdxArray } from "./idx.js";
export { Dataset, type DatasetOptions } from "./dataset.js";
export { DataLoader, type DataLoaderOptions, type Batch } from "./loader.js";
export { randomCrop, horizontalFlip, shift, rotation, colorJitter, randomErasing, compose, type Transform, type Image, type FillOptions } from "./augment.js";
export { fromPixels, pixelsToArray, type PixelsLike, type PixelOptions } from "./image.js";
export { loadMnistDigits, loadFashionMnist, loadIdxFolder, FASHION_MNIST_CLASSES, FASHION_MNIST_DIR } from "./sources.js";
