// The fixture cases on WebGPU, in a browser: every case of every op that has WebGPU kernels,
// output and input gradients against the PyTorch reference with the case's tolerances (the same
// rule as test/helpers.mjs compare). Returns what ran and every element out of tolerance.
function check(what, got, want, rtol, atol, failures) {
  if (got.length !== want.length) return failures.push(`${what}: ${got.length} values, expected ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    const ok = Number.isNaN(w) ? Number.isNaN(g) : !Number.isFinite(w) ? g === w : Math.abs(g - w) <= atol + rtol * Math.abs(w);
    if (!ok) return failures.push(`${what}: element ${i}: got ${g}, expected ${w}`);
  }
}

export async function runGpuCases(sn, files) {
  const failures = [];
  let ran = 0;
  for (const { name, bytes } of files) {
    const { tensors, metadata } = sn.parseSafetensors(bytes, name);
    for (const c of JSON.parse(metadata.cases)) {
      const entry = sn.opTable.get(c.op);
      if (!entry?.webgpu) continue;
      ran++;
      const where = `${name}: ${c.op}: ${c.id}`;
      try {
        const inputs = c.inputs.map((n, i) => {
          if (!n) return null;
          const st = tensors.get(n);
          const t = sn.tensor(st.data, st.shape).to("webgpu");
          if (c.grads[i]) t.requireGrad();
          return t;
        });
        const y = entry.apply(inputs, c.attrs);
        check(`${where} out`, await y.read(), tensors.get(c.out).data, c.rtol, c.atol, failures);
        if (c.gout) {
          const g = tensors.get(c.gout);
          y.backward(sn.tensor(g.data, g.shape).to("webgpu"));
          for (let i = 0; i < c.grads.length; i++)
            if (c.grads[i]) check(`${where} d${c.inputs[i]}`, await inputs[i].grad.read(), tensors.get(c.grads[i]).data, c.grad_rtol, c.grad_atol, failures);
        }
        for (const t of inputs) t?.dispose();
        y.dispose();
      } catch (e) {
        failures.push(`${where}: ${e.message}`);
      }
    }
  }
  return { ran, failures };
}
