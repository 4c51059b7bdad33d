// Shared test helpers.
/** Fails naming the first element outside |got - want| <= atol + rtol * |want|, with both values. */
export function compare(what, got, want, rtol, atol) {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} values, expected ${want.length}`);
  let worst = -1, worstErr = 0;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const ok = err <= atol + rtol * Math.abs(want[i]) || (Number.isNaN(got[i]) && Number.isNaN(want[i])) || got[i] === want[i];
    if (!ok && (worst < 0 || err > worstErr || Number.isNaN(err))) {
      worst = i;
      worstErr = err;
      if (Number.isNaN(err)) break;
    }
  }
  if (worst >= 0)
    throw new Error(`${what}: element ${worst}: got ${got[worst]}, expected ${want[worst]} (|diff| ${worstErr.toExponential(2)} > atol ${atol} + rtol ${rtol} * |expected|)`);
}
