// The playground: one expression at one point, sent to the service's own endpoints.
// Every URL is relative to the page's <base href>, so the page works under a gateway prefix.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const script = $("playground-script");
  const HAS_SYMBOLIC = script && script.dataset.symbolic === "true";
  const JSON_HEADERS = { "Content-Type": "application/json", Accept: "application/json" };
  const imageUrls = {};
  let generation = 0; // answers of an older submission are dropped

  function parsePoint(text) {
    const t = text.trim();
    if (t.startsWith("{")) return JSON.parse(t);
    const values = {};
    for (const part of t.split(/[,;]\s*(?![^\[]*\])/)) {
      if (!part.trim()) continue;
      const m = part.match(/^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+?)\s*$/);
      if (!m) throw new Error(`cannot read "${part.trim()}": write name = number`);
      const value = JSON.parse(m[2]);
      values[m[1]] = value;
    }
    return values;
  }

  function showError(id, text) {
    const el = $(id);
    el.textContent = text || "";
    el.hidden = !text;
  }

  async function problemText(response) {
    try {
      const p = await response.json();
      const where = [p.node && `node ${p.node}`, p.field && `field ${p.field}`]
        .filter(Boolean).join(", ");
      return `${p.detail || p.title || response.statusText}${where ? ` (${where})` : ""}`;
    } catch (e) {
      return `${response.status} ${response.statusText}`;
    }
  }

  async function post(path, body, accept) {
    const headers = { ...JSON_HEADERS };
    if (accept) headers.Accept = accept;
    const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
    if (!response.ok) throw new Error(await problemText(response));
    return response;
  }

  function fmt(v) {
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(8).replace(/\.?0+$/, "");
    if (Array.isArray(v)) return `[${v.map(fmt).join(", ")}]`;
    return v === null ? "null" : String(v);
  }

  function fillTable(table, head, rows) {
    table.replaceChildren();
    if (!rows.length) return;
    const tr = table.insertRow();
    for (const h of head) { const th = document.createElement("th"); th.textContent = h; tr.appendChild(th); }
    for (const row of rows) {
      const r = table.insertRow();
      row.forEach((cell, i) => {
        const c = i === 0 ? document.createElement("th") : document.createElement("td");
        c.textContent = cell;
        r.appendChild(c);
      });
    }
  }

  const tex = (name) => (name.length > 1 ? `\\mathrm{${name.replace(/_/g, "\\_")}}` : name);

  function typeset(items) {
    const box = $("symbolic");
    box.replaceChildren();
    for (const [lhs, latex] of items) {
      const div = document.createElement("div");
      div.className = "math";
      window.katex.render(`${lhs} = ${latex}`, div, { throwOnError: false, displayMode: true });
      box.appendChild(div);
    }
  }

  async function computeNumbers(expression, values, gen) {
    const answer = await (await post("v1/hessian", { expression, values })).json();
    if (gen !== generation) return;
    const [target] = Object.keys(answer.outputs);
    $("value").textContent = `f = ${fmt(answer.outputs[target])}`;
    const names = Object.keys(answer.gradients || {});
    fillTable($("gradient"), ["source", "∂f/∂source"], names.map((n) => [n, fmt(answer.gradients[n])]));
    const m = answer.matrix || [];
    fillTable($("hessian"), ["Hessian", ...names], names.map((n, i) => [n, ...(m[i] || []).map(fmt)]));
    const c = answer.check || {};
    const verdict = $("check");
    verdict.replaceChildren();
    const strong = document.createElement("span");
    strong.className = `verdict-${c.status}`;
    strong.textContent = `${c.status} (${c.method})`;
    verdict.append(strong, document.createTextNode(c.detail ? `: ${c.detail}` : ""));
    if (!HAS_SYMBOLIC) {
      const latex = (c.latex && c.latex.gradients) || {};
      if (!Object.keys(latex).length) throw new Error("the check gave no LaTeX: " + (c.detail || ""));
      typeset(Object.keys(latex).map((n) => [`\\frac{\\partial f}{\\partial ${tex(n)}}`, latex[n]]));
    }
  }

  async function computeSymbolic(expression, values, gen) {
    const sources = Object.keys(values).sort();
    const answer = await (await post("v1/symbolic", { expression, sources, order: 1 })).json();
    if (gen !== generation) return;
    const latex = answer.latex || {};
    const first = (latex.derivatives || [])[0];
    const each = typeof first === "string" ? [first] : first || [];
    const items = [["f", latex.function]];
    sources.forEach((n, i) => items.push([`\\frac{\\partial f}{\\partial ${tex(n)}}`, each[i]]));
    typeset(items.filter(([, l]) => typeof l === "string"));
  }

  async function picture(path, body, imgId, gen) {
    const response = await post(path, body, "image/svg+xml");
    const blob = await response.blob();
    if (gen !== generation) return;
    const img = $(imgId);
    if (imageUrls[imgId]) URL.revokeObjectURL(imageUrls[imgId]);
    imageUrls[imgId] = URL.createObjectURL(blob);
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error("the picture could not be shown"));
      img.src = imageUrls[imgId];
      img.hidden = false;
    });
  }

  function fillVariables(values) {
    const select = $("variable");
    const keep = select.value || new URLSearchParams(location.search).get("var");
    select.replaceChildren();
    for (const name of Object.keys(values)) {
      const o = document.createElement("option");
      o.textContent = name;
      select.appendChild(o);
    }
    if (keep && Object.prototype.hasOwnProperty.call(values, keep)) select.value = keep;
  }

  function state() {
    return new URLSearchParams({
      f: $("expression").value, at: $("point").value, var: $("variable").value,
      from: $("from").value, to: $("to").value, order: $("order").value,
    });
  }

  function restore() {
    const q = new URLSearchParams(location.search);
    const fields = { f: "expression", at: "point", from: "from", to: "to", order: "order" };
    for (const [key, id] of Object.entries(fields)) if (q.has(key)) $(id).value = q.get(key);
  }

  async function run(section, errorId, work) {
    showError(errorId, "");
    try {
      await work();
    } catch (e) {
      showError(errorId, e.message);
      if (section) $(section).hidden = true;
    }
  }

  async function submit(event) {
    if (event) event.preventDefault();
    const gen = ++generation;
    const expression = $("expression").value;
    let values;
    try {
      values = parsePoint($("point").value);
    } catch (e) {
      showError("compute-error", `the point: ${e.message}`);
      return;
    }
    fillVariables(values);
    const variable = $("variable").value;
    const others = { ...values };
    delete others[variable];
    const query = state();
    history.replaceState(null, "", `${location.pathname}?${query}`);
    $("permalink").href = `${location.pathname}?${query}`;
    $("status").textContent = "computing…";
    const plotBody = {
      expression, variable, values: others, order: Number($("order").value),
      range: [Number($("from").value), Number($("to").value)],
    };
    const jobs = [
      run(null, "compute-error", () => computeNumbers(expression, values, gen)),
      run("plot", "plot-error", () => picture("v1/plot", plotBody, "plot", gen)),
      run("tape", "draw-error", () => picture("v1/draw", { expression, values, check: "none" }, "tape", gen)),
    ];
    if (HAS_SYMBOLIC) jobs.push(run(null, "symbolic-error", () => computeSymbolic(expression, values, gen)));
    await Promise.all(jobs);
    if (gen === generation) {
      $("status").textContent = "done";
      document.body.dataset.ready = String(gen);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    restore();
    $("form").addEventListener("submit", submit);
    submit();
  });
})();
