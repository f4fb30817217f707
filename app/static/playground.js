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
      const detail = p.detail || p.title || response.statusText;
      // "y has no value: add y to values" names its node and field already
      const words = detail.split(/[^A-Za-z0-9_.]+/);
      const where = [p.node && !words.includes(p.node) && `node ${p.node}`,
        p.field && !words.includes(p.field) && `field ${p.field}`].filter(Boolean).join(", ");
      return `${detail}${where ? ` (${where})` : ""}`;
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

  function shapeOf(v) {
    const shape = [];
    for (let a = v; Array.isArray(a); a = a[0]) shape.push(a.length);
    return shape;
  }

  // One label per entry of a source, in the flattened order of the Hessian's matrix:
  // x for a number, x[0], x[1], ... (x[0,1] for a matrix's entry) for an array.
  function entryLabels(name, value) {
    const shape = shapeOf(value);
    if (!shape.length) return [name];
    const size = shape.reduce((a, b) => a * b, 1);
    const labels = [];
    for (let flat = 0; flat < size; flat++) {
      const idx = [];
      let rest = flat;
      for (let k = shape.length - 1; k >= 0; k--) { idx.unshift(rest % shape[k]); rest = Math.floor(rest / shape[k]); }
      labels.push(`${name}[${idx.join(",")}]`);
    }
    return labels;
  }

  async function computeNumbers(expression, values, gen) {
    const answer = await (await post("v1/hessian", { expression, values })).json();
    if (gen !== generation) return;
    const [target] = Object.keys(answer.outputs);
    $("value").textContent = `f = ${fmt(answer.outputs[target])}`;
    const names = Object.keys(answer.gradients || {});
    fillTable($("gradient"), ["source", "∂f/∂source"], names.map((n) => [n, fmt(answer.gradients[n])]));
    const m = answer.matrix || [];
    const labels = names.flatMap((n) => entryLabels(n, answer.gradients[n]));
    fillTable($("hessian"), ["Hessian", ...labels], labels.map((l, i) => [l, ...(m[i] || []).map(fmt)]));
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

  // An entry's symbol as the service names it (x_0 for x[0]) typeset as x_{0}.
  function texEntry(symbol, values) {
    const m = symbol.match(/^(.+?)((?:_\d+)+)$/);
    if (m && shapeOf(values[m[1]]).length) return `${tex(m[1])}_{${m[2].slice(1).replace(/_/g, ",")}}`;
    return tex(symbol);
  }

  async function computeSymbolic(expression, values, gen) {
    const sources = Object.keys(values).sort();
    // the values give the shapes: sum(x^2) at x = [1, 2, 3] is x_0^2 + x_1^2 + x_2^2
    const answer = await (await post("v1/symbolic", { expression, sources, values, order: 1 })).json();
    if (gen !== generation) return;
    const latex = answer.latex || {};
    const first = (latex.derivatives || [])[0];
    const each = typeof first === "string" ? [first] : first || [];
    const items = [["f", latex.function]];
    (answer.sources || sources).forEach((n, i) =>
      items.push([`\\frac{\\partial f}{\\partial ${texEntry(n, values)}}`, each[i]]));
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
      return true;
    } catch (e) {
      showError(errorId, e.message);
      if (section) $(section).hidden = true;
      return false;
    }
  }

  // A new computation starts from empty panels: nothing of an older answer stays on screen.
  function clearPanels() {
    for (const id of ["value", "symbolic", "check", "gradient", "hessian", "variables-hint"]) $(id).replaceChildren();
    for (const id of ["compute-error", "symbolic-error", "plot-error", "draw-error"]) showError(id, "");
    for (const id of ["plot", "tape"]) { $(id).hidden = true; $(id).removeAttribute("src"); }
  }

  // The expression's own variables, so that a name of the point it does not use is left
  // out (with a hint) instead of failing the request. /v1/symbolic answers them as its
  // sources; without SymPy every name of the point is sent.
  async function variablesOf(expression, values) {
    if (!HAS_SYMBOLIC) return Object.keys(values);
    try {
      const answer = await (await post("v1/symbolic", { expression, order: 1, simplify: false })).json();
      return answer.sources || Object.keys(values);
    } catch (e) {
      return Object.keys(values); // the requests below show what is wrong
    }
  }

  async function submit(event) {
    if (event) event.preventDefault();
    const gen = ++generation;
    const expression = $("expression").value;
    clearPanels();
    $("status").textContent = "computing…";
    let point;
    try {
      point = parsePoint($("point").value);
    } catch (e) {
      showError("compute-error", `the point: ${e.message}`);
      finish(gen, false);
      return;
    }
    const used = await variablesOf(expression, point);
    if (gen !== generation) return;
    const values = {};
    for (const name of Object.keys(point)) if (used.includes(name)) values[name] = point[name];
    const unused = Object.keys(point).filter((n) => !used.includes(n));
    if (unused.length) $("variables-hint").textContent = `not in f, so left out: ${unused.join(", ")}`;
    fillVariables(values);
    const variable = $("variable").value;
    const others = { ...values };
    delete others[variable];
    const query = state();
    history.replaceState(null, "", `${location.pathname}?${query}`);
    $("permalink").href = `${location.pathname}?${query}`;
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
    const ok = await Promise.all(jobs);
    finish(gen, ok.every(Boolean));
  }

  function finish(gen, ok) {
    if (gen !== generation) return;
    $("status").textContent = ok ? "done" : "failed: see the message below";
    document.body.dataset.ready = String(gen);
  }

  document.addEventListener("DOMContentLoaded", () => {
    restore();
    $("form").addEventListener("submit", submit);
    submit();
  });
})();
