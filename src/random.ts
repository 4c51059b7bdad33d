// Seeded random numbers: xoshiro128** (Blackman & Vigna, https://prng.di.unimi.it/) seeded
// through splitmix32, so every seed gives a well-mixed state. 128 bits of state, saved and
// restored as four uint32s for checkpoints. Normals by Box-Muller.

export interface RngState {
  s: [number, number, number, number];
}

function splitmix32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Generator {
  private s = new Uint32Array(4);

  constructor(seed = 0) {
    this.seed(seed);
  }

  seed(seed: number): this {
    if (!Number.isFinite(seed)) throw new Error(`Generator.seed: seed must be a finite number, got ${seed}`);
    // Fold in the high bits too, so seeds above 2^32 still differ.
    const sm = splitmix32((seed >>> 0) ^ Math.floor(seed / 2 ** 32));
    for (let i = 0; i < 4; i++) this.s[i] = sm();
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1; // the all-zero state is a fixed point
    return this;
  }

  /** Next uint32. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 24 bits (every value is an exact float32). */
  random(): number {
    return (this.nextUint32() >>> 8) / 16777216;
  }

  /** Uniform in [lo, hi). */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.random();
  }

  /** Fills `out` with uniform values in [lo, hi): the same values, in the same order, as
   *  `uniform(lo, hi)` once per element, leaving the same state. The state is kept in local
   *  variables through the loop (a call per element through the typed array costs several times
   *  more: this is what initialising a large model's weights spends its time in). */
  fillUniform(out: Float32Array, lo = 0, hi = 1): Float32Array {
    const st = this.s;
    let s0 = st[0] | 0, s1 = st[1] | 0, s2 = st[2] | 0, s3 = st[3] | 0;
    for (let i = 0; i < out.length; i++) {
      // nextUint32, inlined (int32 locals: the same bits as the uint32 words)
      const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      out[i] = lo + (hi - lo) * ((r >>> 8) / 16777216);
    }
    st[0] = s0;
    st[1] = s1;
    st[2] = s2;
    st[3] = s3;
    return out;
  }

  /** Fills `out` with normal values: the same values, in the same order, as `normal(mean, std)`
   *  once per element, leaving the same state (see fillUniform). */
  fillNormal(out: Float32Array, mean = 0, std = 1): Float32Array {
    const st = this.s;
    let s0 = st[0] | 0, s1 = st[1] | 0, s2 = st[2] | 0, s3 = st[3] | 0;
    for (let i = 0; i < out.length; i++) {
      // two draws of nextUint32, inlined as in fillUniform
      const r1 = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
      let t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      const r2 = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
      t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = (s3 << 11) | (s3 >>> 21);
      // normal(): u1 = 1 - random(), u2 = random(), Box-Muller, the same expression
      const u1 = 1 - (r1 >>> 8) / 16777216;
      const u2 = (r2 >>> 8) / 16777216;
      out[i] = mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }
    st[0] = s0;
    st[1] = s1;
    st[2] = s2;
    st[3] = s3;
    return out;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new Error(`Generator.int: n must be a positive integer, got ${n}`);
    // 53-bit product keeps the bias below 2^-21 for any n < 2^32.
    return Math.floor((this.nextUint32() * 2 ** 21 + (this.nextUint32() >>> 11)) / 2 ** 53 * n);
  }

  /** Standard normal (Box-Muller; one of the pair is used so the state stays four words). */
  normal(mean = 0, std = 1): number {
    const u1 = 1 - this.random(); // (0, 1]: log is finite
    const u2 = this.random();
    return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T extends { length: number; [i: number]: any }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** 0..n-1 in random order. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }

  /** A new generator seeded from this one (for a layer or a data loader of its own). */
  fork(): Generator {
    return new Generator(this.nextUint32());
  }

  getState(): RngState {
    return { s: [this.s[0], this.s[1], this.s[2], this.s[3]] };
  }

  setState(state: RngState): this {
    const s = state?.s;
    if (!Array.isArray(s) || s.length !== 4 || s.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff))
      throw new Error(`Generator.setState: expected {s: [four uint32]}, got ${JSON.stringify(state)}`);
    // xoshiro's all-zero state is a fixed point: every number after it would be 0
    if (s.every((v) => v === 0)) throw new Error("Generator.setState: the all-zero state is not a valid xoshiro128** state (it gives a constant stream of zeros)");
    this.s.set(s);
    return this;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** The generator layers draw their initial weights from (PyTorch's default generator). */
export const defaultGenerator = new Generator(0);

/** Seed the default generator (torch.manual_seed). */
export function manualSeed(seed: number): Generator {
  return defaultGenerator.seed(seed);
}
