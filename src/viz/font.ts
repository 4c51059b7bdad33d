// A 3×5 pixel font for the few words and numbers a plot needs in a PNG (curves.png): digits,
// lower-case letters, and . % - : space. Each glyph is five rows of three bits, top row first.
const GLYPHS: Record<string, string> = {
  "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
  "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001010010010",
  "8": "111101111101111", "9": "111101111001111", ".": "000000000000010", "%": "101001010100101",
  "-": "000000111000000", ":": "000010000010000", " ": "000000000000000",
  a: "000011101101011", b: "100110101101110", c: "000011100100011", d: "001011101101011",
  e: "000111111100011", f: "011100110100100", g: "011101011001110", h: "100110101101101",
  i: "010000010010010", j: "001000001001110", k: "100101110101101", l: "110010010010111",
  m: "000111111101101", n: "000110101101101", o: "000010101101010", p: "000110101110100",
  q: "000011101011001", r: "000011100100100", s: "000011110001110", t: "010111010010011",
  u: "000101101101011", v: "000101101101010", w: "000101101111111", x: "000101010010101",
  y: "000101011001110", z: "000111001010111",
};

/** Width in pixels of `text` drawn at `scale` (glyphs 3 wide, 1 apart). */
export const textWidth = (text: string, scale = 1) => Math.max(0, text.length * 4 - 1) * scale;

/** Draws `text` into RGBA pixels (width `W`) with its top-left corner at (x, y); characters the
 *  font lacks are drawn as blanks. */
export function drawText(data: Uint8Array, W: number, H: number, x: number, y: number, text: string, rgb: readonly number[], scale = 1): void {
  for (const [n, ch] of [...text.toLowerCase()].entries()) {
    const g = GLYPHS[ch];
    if (!g) continue;
    for (let i = 0; i < 15; i++) {
      if (g[i] !== "1") continue;
      const gx = x + (n * 4 + (i % 3)) * scale, gy = y + Math.floor(i / 3) * scale;
      for (let dy = 0; dy < scale; dy++)
        for (let dx = 0; dx < scale; dx++) {
          const px = gx + dx, py = gy + dy;
          if (px >= 0 && px < W && py >= 0 && py < H) data.set(rgb, (py * W + px) * 4);
        }
    }
  }
}
