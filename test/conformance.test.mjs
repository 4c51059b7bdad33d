// Every case of every fixture file in test/fixtures (written by tools/fixtures/gen.py from
// PyTorch, float64 reference): our output and every input gradient, within the case's stated
// tolerance, with sentinel guards around every buffer.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync, readdirSync } from "node:fs";
import * as sn from "../dist/index.js";
import { compare } from "./helpers.mjs";

const dir = new URL("./fixtures/", import.meta.url);
const groups = readdirSync(dir).filter((f) => f.endsWith(".safetensors") && !f.startsWith("model_"));

test.before(async () => {
  await sn.init({ threads: 2, sentinels: true });
});

for (const file of groups) {
  const { tensors, metadata } = sn.parseSafetensors(readFileSync(new URL(file, dir)), file);
  const cases = JSON.parse(metadata.cases);
  for (const c of cases) {
    test(`${file.replace(".safetensors", "")}: ${c.op}: ${c.id}`, () => {
      const entry = sn.opTable.get(c.op);
      assert.ok(entry, `op ${c.op} is not in the op table`);
      const inputs = c.inputs.map((name, i) => {
        if (!name) return null;
        const st = tensors.get(name);
        const t = sn.tensor(st.data, st.shape);
        if (c.grads[i]) t.requireGrad();
        return t;
      });
      const y = entry.apply(inputs, c.attrs);
      const want = tensors.get(c.out);
      assert.equal([...y.shape], want.shape, "output shape");
      compare(`${c.op} out`, y.toArray(), want.data, c.rtol, c.atol);
      for (const [i, name] of Object.entries(c.after)) compare(`${c.op} input ${i} after`, inputs[i].toArray(), tensors.get(name).data, c.rtol, c.atol);
      if (c.gout) {
        const g = tensors.get(c.gout);
        y.backward(sn.tensor(g.data, g.shape));
        c.grads.forEach((name, i) => {
          if (!name) return;
          assert.ok(inputs[i].grad, `no gradient for input ${i}`);
          compare(`${c.op} d${c.inputs[i]}`, inputs[i].grad.toArray(), tensors.get(name).data, c.grad_rtol, c.grad_atol);
        });
      }
      sn.engine().arena.checkSentinels();
    });
  }
}

test.after(() => sn.dispose());
test.run();
