// activation kernels (see docs/kernels.md). Forward and backward side by side.
import { madd, rangeStart, rangeEnd, chunkStart, chunkEnd } from "./common";
