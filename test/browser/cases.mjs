// Runs fixture cases and returns a hash of the bits of every output and gradient, so a browser
// and Node can be compared exactly. Used by test/browser.test.mjs in both places.
export function fnv(bits, h = 0x811c9dc5) {
  for (let i = 0; i < bits.length; i++) {
    h ^= bits[i];
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

const hashOf = (t) => fnv(new Uint32Array(t.toArray().buffer));

/** files: [{name, bytes: Uint8Array}] fixture files. Returns {"file: id": [hash of out, of each grad]}. */
export function runCases(sn, files) {
  const result = {};
  for (const { name, bytes } of files) {
    const { tensors, metadata } = sn.parseSafetensors(bytes, name);
    for (const c of JSON.parse(metadata.cases)) {
      const entry = sn.opTable.get(c.op);
      if (!entry) {
        result[`${name}: ${c.id}`] = ["missing op " + c.op];
        continue;
      }
      sn.tidy(() => {
        const inputs = c.inputs.map((n, i) => {
          if (!n) return null;
          const st = tensors.get(n);
          const t = sn.tensor(st.data, st.shape);
          if (c.grads[i]) t.requireGrad();
          return t;
        });
        const y = entry.apply(inputs, c.attrs);
        const hashes = [hashOf(y)];
        if (c.gout) {
          const g = tensors.get(c.gout);
          y.backward(sn.tensor(g.data, g.shape));
          c.grads.forEach((n, i) => n && hashes.push(hashOf(inputs[i].grad)));
        }
        result[`${name}: ${c.id}`] = hashes;
      });
    }
  }
  return result;
}
