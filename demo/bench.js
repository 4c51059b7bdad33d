// The benchmark tab: runs demo/bench-worker.js (simdnet, 1 and 2 threads) and, when asked and
// available, demo/tfjs-worker.js (TF.js's wasm backend) in fresh workers, and fills the table.
import { CASES } from "./bench-cases.js";

const $ = (id) => document.getElementById(id);

/** Run one worker to its "done"; rows go to onRow. Rejects on an error, a crash or a timeout. */
function runWorker(file, msg, onRow, timeoutMs = 180000) {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(file, import.meta.url), { type: "module" });
    const end = (fn, v) => {
      clearTimeout(timer);
      w.terminate();
      fn(v);
    };
    const timer = setTimeout(() => end(reject, new Error(`${file}: no result after ${timeoutMs / 1000} s`)), timeoutMs);
    w.onmessage = (e) => {
      const m = e.data;
      if (m.type === "row") onRow(m);
      else if (m.type === "done") end(resolve);
      else if (m.type === "error") end(reject, new Error(m.message));
    };
    w.onerror = (e) => {
      e.preventDefault?.();
      end(reject, new Error(`${file}: ${e.message || "the worker could not start"}`));
    };
    w.postMessage(msg);
  });
}

/** A cell: the rate large, the time per call small; "–" where the runtime has no such op. */
function fillCell(td, c, r) {
  td.textContent = "";
  if (r.ms === null) {
    td.textContent = "n/a";
    td.title = r.note ?? "";
    return;
  }
  const rate = document.createElement("b");
  rate.textContent = c.images ? `${Math.round((c.images * 1000) / r.ms)} images/s` : `${(c.flops / r.ms / 1e6).toFixed(1)} GFLOP/s`;
  const ms = document.createElement("small");
  ms.textContent = `${r.ms.toFixed(2)} ms${r.threads !== r.asked ? `, ran on ${r.threads} thread${r.threads > 1 ? "s" : ""}` : ""}`;
  td.append(rate, document.createElement("br"), ms);
}

export function setupBench({ stopTraining, showError }) {
  const threads = crossOriginIsolated ? [1, 2] : [1];
  const state = (window.demo.bench = { rows: [], done: false, error: null, running: false });
  const head = $("bench-table").querySelector("thead tr");
  const cols = [];
  for (const t of threads)
    for (const runtime of ["simdnet", "tfjs"]) {
      cols.push({ runtime, threads: t });
      const th = document.createElement("th");
      th.textContent = `${runtime === "simdnet" ? "simdnet" : "TF.js wasm"}, ${t} thread${t > 1 ? "s" : ""}`;
      head.append(th);
    }
  const body = $("bench-table").querySelector("tbody");
  const cells = new Map();
  for (const c of CASES) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = c.name;
    tr.append(th);
    for (const col of cols) {
      const td = document.createElement("td");
      td.textContent = "";
      cells.set(`${c.name}|${col.runtime}|${col.threads}`, td);
      tr.append(td);
    }
    body.append(tr);
  }
  if (!crossOriginIsolated) $("bench-note").textContent = "This page is not cross-origin isolated, so only one thread can be measured.";

  const byName = new Map(CASES.map((c) => [c.name, c]));
  // A row says how many threads were asked for (its column) and how many really ran.
  const onRow = (r) => {
    state.rows.push(r);
    const td = cells.get(`${r.case}|${r.runtime}|${r.asked}`);
    if (!td) return;
    fillCell(td, byName.get(r.case), r);
    // TF.js rows come after ours: say how the two compare in our cell.
    const ours = state.rows.find((o) => o.runtime === "simdnet" && o.case === r.case && o.asked === r.asked);
    if (r.runtime === "tfjs" && r.ms && ours?.ms) {
      const x = document.createElement("span");
      x.className = "ratio";
      x.textContent = ` ${(r.ms / ours.ms).toFixed(2)}× TF.js's speed`;
      cells.get(`${r.case}|simdnet|${r.asked}`).querySelector("small").append(x);
    }
  };

  $("bench-run").onclick = async () => {
    $("bench-run").disabled = true;
    state.running = true;
    state.done = false;
    state.error = null;
    state.rows = [];
    for (const td of cells.values()) td.textContent = "";
    const status = $("bench-status");
    try {
      await stopTraining();
      status.textContent = "simdnet…";
      for (const t of threads) for (const c of CASES) cells.get(`${c.name}|simdnet|${t}`).textContent = "…";
      await runWorker("./bench-worker.js", { threads }, onRow);
      if ($("bench-tfjs").checked) {
        for (const t of threads) {
          status.textContent = `TF.js, ${t} thread${t > 1 ? "s" : ""}…`;
          try {
            await runWorker("./tfjs-worker.js", { threads: t }, onRow);
          } catch (e) {
            for (const c of CASES) {
              const td = cells.get(`${c.name}|tfjs|${t}`);
              td.textContent = "not available";
              td.title = e.message;
            }
            state.tfjsError = e.message;
          }
        }
      }
      status.textContent = state.tfjsError ? `done (TF.js: ${state.tfjsError})` : "done";
      state.done = true;
    } catch (e) {
      state.error = e.message;
      status.textContent = "";
      showError(`benchmark: ${e.message}`);
    } finally {
      state.running = false;
      $("bench-run").disabled = false;
    }
  };
}
