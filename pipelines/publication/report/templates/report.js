/* The report's client: unpacks plotly.js and the publication's data, then draws every view for the chosen
   month, segment and customer. Figures are the published marts' (money in whole cents); the page only adds up
   published rows (a segment's totals, a customer's trailing 12 months) and averages driver volumes, where it
   says so. */
"use strict";

const METRICS = {
  customer_profit_t12m: ["Customer profit (12 months)", "money"],
  pct_unprofitable_customers: ["Unprofitable customers", "rate"],
  unprofitable_revenue_share: ["Revenue from unprofitable customers", "rate"],
  retention_rate: ["Retention rate", "rate"],
  new_customers: ["New customers", "count"],
  nps: ["NPS", "score"],
  satisfaction_index: ["Satisfaction index", "score"],
  mean_profit_clv: ["Mean profit CLV", "money"],
};
// Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
const QUADRANTS = {
  passive: ["Passive", "#009E73"],
  carriage_trade: ["Carriage trade", "#0072B2"],
  bargain_basement: ["Bargain basement", "#E69F00"],
  aggressive: ["Aggressive", "#D55E00"],
};
const IPA = {
  concentrate_here: ["Concentrate here", "#D55E00"],
  keep_up_the_good_work: ["Keep up the good work", "#009E73"],
  low_priority: ["Low priority", "#7f7f7f"],
  possible_overkill: ["Possible overkill", "#0072B2"],
};
const STATUS_COLOURS = { green: "#1b7f3b", amber: "#c77700", red: "#c0281c" };
// Why a scorecard row is not scored (customer_scorecard.status_reason): its badge and its explanation.
const NOT_SCORED = {
  partial_window: ["partial", (r) => `partial window: ${r.window} months of history, not all of the metric's window`],
  clv_not_fitted: ["not fitted", () => "the month's CLV models were not fitted"],
  clv_missing: ["no CLV", () => "no CLV was published for the month"],
  no_value: ["no value", () => "nothing to measure in the month"],
  no_target: ["no target", () => "no target for the segment"],
};
const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
  "#7f7f7f", "#8c564b"];
const BLUE = "#0072B2", ORANGE = "#D55E00", GREY = "#9aa3b2";
const MINUS = "\u2212";
const ACRONYMS = new Set(["ceo", "cfo", "coo", "cto", "cmo", "vp", "nps", "clv", "abc"]);
const SIDE_LEGEND = { orientation: "v", x: 1.02, xanchor: "left", y: 1, yanchor: "top", font: { size: 11 } };
// No control that talks to a server: no "Share chart"/"Edit in Chart Studio" (they post the chart's data,
// customer names and profits, to Plotly's cloud), no link to it. The offline controls (zoom, pan, PNG) stay.
const CONFIG = {
  displaylogo: false, responsive: true, showSendToCloud: false, showEditInChartStudio: false, showLink: false,
  plotlyServerURL: "", modeBarButtonsToRemove: ["sendDataToCloud", "editInChartStudio"],
};
const LAYOUT = {
  font: { family: "system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif", size: 12, color: "#1d2330" },
  margin: { l: 70, r: 20, t: 70, b: 46 },
  hovermode: "closest",
  paper_bgcolor: "#fff",
  plot_bgcolor: "#fff",
  legend: { orientation: "h", x: 0, xanchor: "left", y: 1.02, yanchor: "bottom" },
  hoverlabel: { align: "left" },
};

// --- formatting ------------------------------------------------------------------------------------------

function signed(text, value, plus) {
  if (value < 0) return MINUS + text;
  return plus && value > 0 ? "+" + text : text;
}
// The publication's currency (publication_info.currency, an ISO 4217 code) and the sign written before an
// amount: the currency's narrow symbol when it has one ("\u20ac", "$", "\u00a3"), else its code ("CHF 1,234").
let CURRENCY = null, CURRENCY_SIGN = "";
function currencySign(code) {
  if (!code) return "";
  try {
    const part = new Intl.NumberFormat("en-US", { style: "currency", currency: code, currencyDisplay: "narrowSymbol" })
      .formatToParts(0).find((p) => p.type === "currency");
    return part && part.value !== code ? part.value : `${code}\u00a0`;
  } catch (error) {
    return `${code}\u00a0`; // not a code the browser knows: written as it is
  }
}
function amount(value, plus) { // money in currency units, with the currency
  if (value === null || value === undefined || Number.isNaN(value)) return "\u2013";
  const abs = Math.abs(value);
  const digits = abs >= 10 || abs === 0 ? 0 : 2;
  return signed(CURRENCY_SIGN + abs.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }),
    value, plus);
}
function inCurrency(text) { return CURRENCY ? `${text} (${CURRENCY})` : text; } // an axis or a column of money
function money(cents, plus) { return cents === null || cents === undefined ? "\u2013" : amount(cents / 100, plus); }
function pct(fraction, digits = 1) {
  if (fraction === null || fraction === undefined) return "\u2013";
  return signed(Math.abs(fraction * 100).toFixed(digits) + "\u00a0%", fraction, false);
}
function num(value, digits) {
  if (value === null || value === undefined) return "\u2013";
  const d = digits !== undefined ? digits : (Number.isInteger(value) ? 0 : 1);
  return signed(Math.abs(value).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }),
    value, false);
}
function metricValue(metric, value, variance) {
  const kind = (METRICS[metric] || [metric, "score"])[1];
  if (value === null || value === undefined) return "\u2013";
  if (kind === "rate") {
    return variance ? signed(Math.abs(value * 100).toFixed(1) + "\u00a0pts", value, true) : pct(value);
  }
  if (kind === "money") return amount(value, variance);
  if (kind === "count") return signed(num(Math.abs(value), 0), value, variance);
  return signed(num(Math.abs(value), 1), value, variance);
}
function words(name) {
  if (name === null || name === undefined) return "\u2013";
  const text = String(name).replace(/_/g, " ").split(" ")
    .map((w) => (ACRONYMS.has(w) ? w.toUpperCase() : w)).join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
// Labels of codes: the publication's label dimensions when it has them (D.labels), else the code in words.
function labelOf(kind, code, fallback) {
  if (code === null || code === undefined || code === "") return "\u2013";
  const labels = (D && D.labels && D.labels[kind]) || {};
  return labels[code] || (fallback ? fallback(code) : words(code));
}
const segmentLabel = (code) => labelOf("segment", code);
const regionLabel = (code) => labelOf("region", code, String);
const quadrantLabel = (code) => labelOf("matrix_quadrant", code, (q) => (QUADRANTS[q] || [words(q)])[0]);
const ipaLabel = (code) => labelOf("ipa_quadrant", code, (q) => (IPA[q] || [words(q)])[0]);
const activityLabel = (code) => labelOf("activity", code);
const centreLabel = (code) => labelOf("cost_center", code, String);
const driverLabel = (code) => labelOf("driver", code);
const metricName = (code) => labelOf("metric", code, (m) => (METRICS[m] || [words(m)])[0]);
const ownerLabel = (code) => labelOf("owner", code);
function metricUnit(metric) { // customer_scorecard.unit, "currency" as the publication's currency code
  const unit = (D.units || {})[metric] || (METRICS[metric] || [metric, ""])[1];
  return (unit === "currency" || unit === "money") && CURRENCY ? CURRENCY : unit;
}
function monthName(key) { // "2025-09" -> "Sep 2025", whatever the browser's locale
  const [y, m] = key.split("-").map(Number);
  return `${MONTHS[m - 1]} ${y}`;
}
function esc(text) {
  return String(text).replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[ch]));
}

// --- the data ----------------------------------------------------------------------------------------------

async function unpack(id) {
  const base64 = document.getElementById(id).textContent.trim();
  const bytes = Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Response(stream).text();
}

let D; // the publication's data
const S = { m: 0, segment: "all", region: "all", c: null, scenario: null, a: 0, b: 0 }; // what the reader chose
const IX = {}; // indexes built once

function decode(table, column, i) {
  const code = table[column][i];
  return code === null ? null : D.codes[column][code];
}

function buildIndexes() {
  const nc = D.customers.id.length;
  const key = (m, c) => m * nc + c;
  for (const name of ["profit", "clv", "sat", "whale", "flips"]) {
    const table = D[name];
    const byKey = new Map();
    const byMonth = D.months.map(() => []);
    if (table) {
      table.m.forEach((m, i) => { byKey.set(key(m, table.c[i]), i); byMonth[m].push(i); });
    }
    IX[name] = { byKey, byMonth, get: (m, c) => byKey.get(key(m, c)) };
  }
  const cts = new Map();
  if (D.cts) {
    D.cts.m.forEach((m, i) => {
      const k = key(m, D.cts.c[i]);
      if (!cts.has(k)) cts.set(k, []);
      cts.get(k).push(i);
    });
  }
  IX.cts = (m, c) => cts.get(key(m, c)) || [];
  const levers = new Map();
  if (D.levers) {
    D.levers.m.forEach((m, i) => {
      const k = key(m, D.levers.c[i]);
      if (!levers.has(k)) levers.set(k, []);
      levers.get(k).push(i);
    });
  }
  IX.levers = (m, c) => levers.get(key(m, c)) || [];
  IX.activity = {};
  (D.activities || []).forEach((r) => { IX.activity[r.activity] = r; });
  IX.search = D.customers.id.map((id, c) => ({ c, id: id.toLowerCase(), name: (D.customers.name[c] || "").toLowerCase() }));
}

function customerLabel(c) {
  const name = D.customers.name[c];
  return name ? `${name} (${D.customers.id[c]})` : D.customers.id[c];
}
// Whether customer c is in the chosen segment and region (segment: the month's, when a mart publishes it).
function inScope(c, segment) {
  return (S.segment === "all" || (segment === undefined ? D.customers.segment[c] : segment) === S.segment)
    && (S.region === "all" || D.customers.region[c] === S.region);
}
function scoped() { return S.segment !== "all" || S.region !== "all"; }
function segmentText() {
  const parts = [S.segment === "all" ? "all customers" : segmentLabel(S.segment)];
  if (S.region !== "all") parts.push(`region ${regionLabel(S.region)}`);
  return parts.join(", ");
}
function scopeContext() { return [S.segment, ...(S.region === "all" ? [] : [S.region])]; }

// --- drawing helpers -------------------------------------------------------------------------------------

function draw(id, traces, layout) {
  const el = document.getElementById(id);
  Plotly.react(el, traces, Object.assign({}, LAYOUT, layout), CONFIG);
  if (!el.dataset.clicks) { // a click on a customer's mark opens that customer
    el.dataset.clicks = "1";
    el.on("plotly_click", (event) => {
      const point = event.points && event.points[0];
      if (point && typeof point.customdata === "number") openCustomer(point.customdata, true);
    });
  }
}
function title(text, size = 14) { // at the top left, above the legend
  return { text, x: 0, xref: "container", xanchor: "left", y: 1, yref: "container", yanchor: "top", pad: { t: 8, l: 4 },
    font: { size } };
}
function monthAxis(extra) { // months as categories, labels readable however many there are
  return Object.assign({ type: "category", tickangle: -45, automargin: true, nticks: 13 }, extra || {});
}
function logRange(traces) { // the 1st to 99th percentile of the x values, on a log axis; zoom out for the rest
  const xs = traces.flatMap((t) => t.x).filter((v) => v > 0).sort((a, b) => a - b);
  if (xs.length < 2) return undefined;
  const at = (q) => xs[Math.min(xs.length - 1, Math.floor(q * (xs.length - 1)))];
  return [Math.log10(at(0.01)) - 0.15, Math.log10(at(0.99)) + 0.15];
}
function monthMarker() {
  return [{ type: "line", xref: "x", yref: "paper", x0: D.months[S.m], x1: D.months[S.m], y0: 0, y1: 1,
    line: { color: "#8a93a3", dash: "dot", width: 1 } }];
}
// --- tables: one component for every table of the page -----------------------------------------------------
// table(id, spec) draws the records spec.rows into <table id>: a header that sorts on a click (numbers as numbers,
// blanks last), a text filter, pages of PAGE_SIZE rows with page controls, and a CSV button that exports every
// row the filter keeps (not only the page shown), sorted as shown, numbers unformatted. A column is
// { label, type, value(r), html(r), csv(r), export, field }: type "money" (value in cents, exported in currency
// units with two decimals), "num", "pct" (a fraction, exported as it is) or "text"; html draws the cell (a
// default per type); a column with html: null is exported only, one with export: false is shown only.
// spec.attrs(r) gives the row's attributes; spec.click opens the customer of a row's data-customer.
const PAGE_SIZE = 25;
const TABLE_STATE = {}; // per table: the sort, the filter and the page the reader chose
function centsText(cents) { // whole cents as an exact decimal: 123456 -> "1234.56"
  if (cents === null || cents === undefined) return "";
  const abs = Math.abs(cents);
  return (cents < 0 ? "-" : "") + Math.floor(abs / 100) + "." + String(abs % 100).padStart(2, "0");
}
function plain(html) { // the text of a cell's HTML
  return String(html).replace(/<[^>]*>/g, " ").replace(/&nbsp;|\u00a0/g, " ").replace(/&amp;/g, "&")
    .replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&#39;/g, "'")
    .replace(/\s+/g, " ").trim();
}
const CELL = {
  money: (v) => money(v), num: (v) => num(v), pct: (v) => pct(v),
  text: (v) => (v === null || v === undefined ? "\u2013" : esc(v)),
};
function columnHtml(column, r) {
  if (column.html) return column.html(r);
  return CELL[column.type || "text"](column.value(r));
}
function csvValue(column, r) {
  const v = column.csv ? column.csv(r) : column.value(r);
  if (v === null || v === undefined) return "";
  if ((column.type === "money") && !column.csv) return centsText(v);
  if (typeof v === "string") return spreadsheetSafe(v);
  return typeof v === "boolean" ? String(v) : v;
}
// A text a spreadsheet would run as a formula (=, +, -, @, a tab or a carriage return first: a customer named
// "=HYPERLINK(...)") is exported with a leading apostrophe, which spreadsheets show as text; a number stays one.
function spreadsheetSafe(text) {
  return /^[=+\-@\t\r]/.test(text) && !/^[-+]?\d+(\.\d+)?$/.test(text) ? "'" + text : text;
}
function compareValues(a, b) { // numbers as numbers, text as text, blanks last whatever the direction
  const blankA = a === null || a === undefined || a === "", blankB = b === null || b === undefined || b === "";
  if (blankA || blankB) return blankA === blankB ? 0 : (blankA ? 1 : -1);
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), "en", { numeric: true });
}
function csvText(columns, rows) {
  const quote = (v) => {
    const text = String(v);
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  const header = (col) => col.csvLabel || (col.type === "money" || col.currency ? inCurrency(plain(col.label)) : plain(col.label));
  const lines = [columns.map((col) => quote(header(col))).join(",")];
  rows.forEach((r) => lines.push(columns.map((col) => quote(csvValue(col, r))).join(",")));
  return lines.join("\r\n") + "\r\n";
}
function download(name, text) { // a file made in the page: nothing leaves it
  const url = URL.createObjectURL(new Blob(["\ufeff" + text], { type: "text/csv;charset=utf-8" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
function tableTools(id, el) { // the filter, the count and the CSV button above the table, the pages below it
  const tools = document.createElement("div");
  tools.className = "table-tools";
  tools.dataset.for = id;
  tools.innerHTML = `<input type="search" class="table-filter" placeholder="Filter rows" aria-label="Filter the table">`
    + '<span class="table-count" role="status"></span><button type="button" class="table-csv">Export CSV</button>';
  const wrap = document.createElement("div"); // a wide table scrolls inside the page, not the page
  wrap.className = "table-wrap";
  el.before(wrap);
  wrap.appendChild(el);
  wrap.before(tools);
  const pager = document.createElement("div");
  pager.className = "pager";
  pager.dataset.for = id;
  pager.innerHTML = '<button type="button" data-page="first" aria-label="First page">&laquo;</button>'
    + '<button type="button" data-page="prev" aria-label="Previous page">&lsaquo;</button>'
    + '<span class="page-of"></span>'
    + '<button type="button" data-page="next" aria-label="Next page">&rsaquo;</button>'
    + '<button type="button" data-page="last" aria-label="Last page">&raquo;</button>';
  wrap.after(pager);
  return { tools, pager };
}
function table(id, spec) {
  const el = document.getElementById(id);
  const state = TABLE_STATE[id] || (TABLE_STATE[id] = { sort: null, desc: false, filter: "", page: 0, el });
  state.spec = spec;
  if (!state.tools) {
    Object.assign(state, tableTools(id, el));
    const filter = state.tools.querySelector(".table-filter");
    filter.addEventListener("input", () => { state.filter = filter.value; state.page = 0; drawTable(id); });
    state.tools.querySelector(".table-csv").addEventListener("click", () => exportTable(id));
    state.pager.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-page]");
      if (!button) return;
      const last = Math.max(0, Math.ceil(state.shown.length / PAGE_SIZE) - 1);
      state.page = { first: 0, prev: state.page - 1, next: state.page + 1, last }[button.dataset.page];
      drawTable(id);
    });
    el.querySelector("thead").addEventListener("click", (event) => {
      const th = event.target.closest("th[data-column]");
      if (!th) return;
      const k = Number(th.dataset.column);
      if (state.sort === k) state.desc = !state.desc;
      else { state.sort = k; state.desc = false; }
      state.page = 0;
      drawTable(id);
    });
    el.querySelector("tbody").addEventListener("click", (event) => {
      const tr = event.target.closest("tr[data-customer]");
      if (tr && state.spec.click) openCustomer(Number(tr.dataset.customer), true);
    });
    if (spec.click) el.classList.add("clickable");
    if (spec.sort) {
      state.sort = spec.columns.findIndex((col) => col.key === spec.sort[0]);
      state.desc = spec.sort[1];
    }
  }
  const shownColumns = spec.columns.filter((col) => col.html !== null);
  el.querySelector("thead").innerHTML = "<tr>" + shownColumns.map((col) => {
    const k = spec.columns.indexOf(col);
    const sorted = state.sort === k ? (state.desc ? "descending" : "ascending") : "none";
    return `<th data-column="${k}" class="sortable${col.type && col.type !== "text" ? " num" : ""}" aria-sort="${sorted}" `
      + `title="Sort by this column">${col.label}<span class="sort-mark">${sorted === "none" ? "" : (state.desc ? "\u25bc" : "\u25b2")}</span></th>`;
  }).join("") + "</tr>";
  // a row's cells are drawn when its page is shown; the text the filter searches (what is shown and what is
  // exported) is made the first time the reader filters
  state.rows = spec.rows.map((r, order) => ({ r, order }));
  drawTable(id);
}
function rowCells(spec, row) {
  if (!row.cells) row.cells = spec.columns.filter((col) => col.html !== null).map((col) => columnHtml(col, row.r));
  return row.cells;
}
function rowText(spec, row) {
  if (row.text === undefined) {
    row.text = (rowCells(spec, row).map(plain).join(" ") + " "
      + spec.columns.map((col) => csvValue(col, row.r)).join(" ")).toLowerCase();
  }
  return row.text;
}
function filteredRows(state) {
  const terms = state.filter.trim().toLowerCase().split(/\s+/).filter(Boolean);
  const kept = terms.length ? state.rows.filter((row) => terms.every((t) => rowText(state.spec, row).includes(t)))
    : state.rows.slice();
  if (state.sort !== null) {
    const col = state.spec.columns[state.sort];
    const sign = state.desc ? -1 : 1;
    kept.sort((a, b) => {
      const va = col.value(a.r), vb = col.value(b.r);
      const blank = (v) => v === null || v === undefined || v === "";
      if (blank(va) || blank(vb)) return compareValues(va, vb) || a.order - b.order; // blanks last both ways
      return sign * compareValues(va, vb) || a.order - b.order;
    });
  }
  return kept;
}
function drawTable(id) {
  const state = TABLE_STATE[id];
  const { spec, el } = state;
  state.shown = filteredRows(state);
  const pages = Math.max(1, Math.ceil(state.shown.length / PAGE_SIZE));
  state.page = Math.min(Math.max(0, state.page), pages - 1);
  const slice = state.shown.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE);
  const columns = spec.columns.filter((col) => col.html !== null);
  const body = el.querySelector("tbody");
  body.innerHTML = slice.length ? slice.map((row) => `<tr${spec.attrs ? " " + spec.attrs(row.r) : ""}>`
    + rowCells(spec, row).map((html, k) => `<td${columns[k].type && columns[k].type !== "text" ? ' class="num"' : ""}`
      + `${columns[k].field ? ` data-field="${columns[k].field}"` : ""}>${html}</td>`).join("") + "</tr>").join("")
    : `<tr><td colspan="${columns.length}" class="note">${state.rows.length ? "No row matches the filter." : "None."}</td></tr>`;
  const from = state.shown.length ? state.page * PAGE_SIZE + 1 : 0;
  const count = state.tools.querySelector(".table-count");
  count.textContent = `${num(from)}\u2013${num(state.page * PAGE_SIZE + slice.length)} of ${num(state.shown.length)} rows`
    + (state.shown.length < state.rows.length ? ` (filtered from ${num(state.rows.length)})` : "");
  state.pager.hidden = pages < 2;
  state.pager.querySelector(".page-of").textContent = `page ${state.page + 1} of ${pages}`;
  el.dataset.rows = String(state.shown.length);
  el.dataset.page = String(state.page);
}
function exportTable(id) {
  const state = TABLE_STATE[id];
  const columns = state.spec.columns.filter((col) => col.export !== false);
  const name = [state.spec.name || id.replace(/-table$/, ""), ...(state.spec.fileContext || [])].join("_");
  download(`${name.replace(/[^A-Za-z0-9_.-]+/g, "-")}.csv`, csvText(columns, state.shown.map((row) => row.r)));
}
function customerCell(c) {
  const name = D.customers.name[c];
  return name ? `${esc(name)}<span class="id">${esc(D.customers.id[c])}</span>` : esc(D.customers.id[c]);
}

function customerColumns(cOf, narrow) { // who a row's customer is: shown as name and id, exported as two columns;
  // a narrow table (half the page wide) exports the region without showing it
  return [
    { label: "Customer", value: (r) => D.customers.name[cOf(r)] || D.customers.id[cOf(r)], html: (r) => customerCell(cOf(r)) },
    { label: "Customer id", value: (r) => D.customers.id[cOf(r)], html: null },
    { label: "Segment", value: (r) => segmentLabel(D.customers.segment[cOf(r)]) },
    { label: "Region", value: (r) => regionLabel(D.customers.region[cOf(r)]), ...(narrow ? { html: null } : {}) },
  ];
}

// --- views -------------------------------------------------------------------------------------------------

function notScored(r) { // [badge text, explanation] of a row that is not scored
  const [badge, why] = NOT_SCORED[r.reason] || [words(r.reason), () => words(r.reason)];
  return [badge, why(r)];
}
function statusBadge(r) {
  if (r.status !== "not_scored") return `<span class="badge ${esc(r.status)}">${words(r.status)}</span>`;
  const [badge, why] = notScored(r);
  const kind = r.reason === "no_target" ? "grey" : "unscored";
  return `<span class="badge ${kind}" title="Not scored: ${esc(why)}">${esc(badge)}</span>`;
}

function renderScorecard() {
  const order = Object.keys(METRICS);
  const rows = (D.scorecard || []).filter((r) => r.m === S.m && r.segment === S.segment)
    .sort((a, b) => order.indexOf(a.metric) - order.indexOf(b.metric));
  const arrow = (r) => ({ up: "\u2191 up", down: "\u2193 down", flat: "\u2192 flat" }[r.trend] || "\u2013");
  const metricLabel = (r) => metricName(r.metric);
  table("scorecard-table", {
    name: "scorecard", fileContext: [D.months[S.m], S.segment], rows,
    attrs: (r) => `data-metric="${esc(r.metric)}" data-actual="${r.actual === null ? "" : r.actual}" `
      + `data-status="${esc(r.status)}"${r.status !== "not_scored" ? "" : ' class="unscored"'}`,
    columns: [
      { label: "Metric", value: metricLabel },
      { label: "Metric code", value: (r) => r.metric, html: null },
      { label: "Unit", value: (r) => metricUnit(r.metric), html: null },
      { label: "Actual", type: "num", field: "actual", value: (r) => r.actual, html: (r) => metricValue(r.metric, r.actual) },
      { label: "Target", type: "num", value: (r) => r.target, html: (r) => metricValue(r.metric, r.target) },
      { label: "Variance", type: "num", value: (r) => r.variance, html: (r) => metricValue(r.metric, r.variance, true) },
      { label: "Status", field: "status", value: (r) => (r.status === "not_scored" ? notScored(r)[0] : r.status), html: statusBadge },
      { label: "Trend", value: (r) => r.trend, html: arrow },
      { label: "Owner", value: (r) => ownerLabel(r.owner) },
    ],
  });
  table("attainment-table", {
    name: "incentive_attainment", fileContext: [D.months[S.m]], rows: (D.attainment || []).filter((r) => r.m === S.m),
    columns: [
      { label: "Owner", value: (r) => ownerLabel(r.owner) },
      { label: "Weight on target", type: "num", value: (r) => r.attained, html: (r) => num(r.attained, 2) },
      { label: "Weight owned", type: "num", value: (r) => r.total, html: (r) => num(r.total, 2) },
      { label: "Attainment", type: "pct", value: (r) => r.attainment },
      { label: "Weight not scored", type: "num", value: (r) => r.not_scored, html: (r) => num(r.not_scored, 2) },
    ],
  });
}

function renderTrends() {
  const recon = D.recon || [];
  const x = recon.map((r) => D.months[r.m]);
  const line = (field, name, colour, dash) => ({
    type: "scatter", mode: "lines+markers", name, x, y: recon.map((r) => r[field] / 100),
    line: { color: colour, dash: dash || "solid" },
    hovertemplate: `${name}, %{x}: %{text}<extra></extra>`, text: recon.map((r) => money(r[field])),
  });
  draw("chart-company-profit", [
    line("op", "Operating profit", "#1d2330"),
    line("abc", "ABC customer profit", BLUE),
    line("trad", "Traditional customer profit", ORANGE, "dash"),
    { type: "bar", name: "Unused capacity", x, y: recon.map((r) => r.unused / 100), marker: { color: "#c9d3e0" },
      hovertemplate: "Unused capacity, %{x}: %{text}<extra></extra>", text: recon.map((r) => money(r.unused)),
      textposition: "none" },
  ], { title: title("Company profit by month (company-wide)", 14), shapes: monthMarker(),
    yaxis: { title: { text: inCurrency("Amount") }, zeroline: true }, xaxis: monthAxis() });

  const holder = document.getElementById("metric-trends");
  const metrics = Object.keys(METRICS).filter((metric) => (D.scorecard || []).some((r) => r.metric === metric));
  if (holder.dataset.metrics !== metrics.join(",")) {
    holder.innerHTML = metrics.map((metric) => `<div class="chart small" id="chart-trend-${metric}"></div>`).join("");
    holder.dataset.metrics = metrics.join(",");
  }
  for (const metric of metrics) {
    const rows = D.scorecard.filter((r) => r.metric === metric && r.segment === S.segment);
    const [label, kind] = [metricName(metric), METRICS[metric][1]];
    const scale = kind === "rate" ? 100 : 1;
    const xs = rows.map((r) => D.months[r.m]);
    const hover = rows.map((r) => `${label}, ${D.months[r.m]}<br>actual ${metricValue(metric, r.actual)}`
      + `<br>target ${metricValue(metric, r.target)}<br>`
      + (r.status === "not_scored" ? `not scored: ${esc(notScored(r)[1])}` : `status ${r.status}`));
    draw(`chart-trend-${metric}`, [
      { type: "scatter", mode: "lines+markers", name: "Actual", x: xs,
        y: rows.map((r) => (r.actual === null ? null : r.actual * scale)),
        line: { color: "#1d2330", width: 1.5 },
        // a figure not scored is grey, hollow when it is partial or unfitted (no target: filled)
        marker: { size: 7, color: rows.map((r) => STATUS_COLOURS[r.status] || GREY),
          symbol: rows.map((r) => (r.status === "not_scored" && r.reason !== "no_target" ? "circle-open" : "circle")) },
        text: hover, hovertemplate: "%{text}<extra></extra>" },
      { type: "scatter", mode: "lines", name: "Target", x: xs,
        y: rows.map((r) => (r.target === null ? null : r.target * scale)),
        line: { color: "#8a93a3", dash: "dash", width: 1 }, text: hover, hovertemplate: "%{text}<extra></extra>" },
    ], { title: title(label, 13), showlegend: false, shapes: monthMarker(),
      margin: { l: 56, r: 10, t: 34, b: 30 }, xaxis: monthAxis({ tickfont: { size: 10 }, nticks: 5, tickangle: 0 }),
      yaxis: { ticksuffix: kind === "rate" ? " %" : "" } });
  }
}

function whaleSpan(m) { // the whale curve's window as of month m: "12 months", or what history holds of it
  const held = D.meta.whale_window_months[m]; // months of history in the 12-month window
  return held !== undefined && held < 12 ? [`${held} months (partial window)`, held] : ["12 months", null];
}

function renderWhale() {
  const [span, held] = whaleSpan(S.m);
  const partial = held !== null;
  const rows = IX.whale.byMonth[S.m].slice().sort((a, b) => D.whale.rank[a] - D.whale.rank[b]);
  const total = D.meta.whale_customers[S.m] || rows.length;
  const text = rows.map((i) => {
    const c = D.whale.c[i];
    return `<b>${esc(customerLabel(c))}</b><br>${segmentLabel(D.customers.segment[c])}<br>rank ${num(D.whale.rank[i])} of ${num(total)}`
      + `<br>ABC profit, ${span}: ${money(D.whale.p12[i])}<br>cumulative profit ${num(D.whale.cpp[i], 1)} % of the total`;
  });
  const traces = [{
    type: "scatter", mode: "lines+markers", name: "All customers", x: rows.map((i) => D.whale.ccp[i]),
    y: rows.map((i) => D.whale.cpp[i]), customdata: rows.map((i) => D.whale.c[i]), text,
    hovertemplate: "%{text}<extra></extra>", line: { color: scoped() ? GREY : BLUE, width: 2 },
    marker: { size: 4, color: scoped() ? GREY : BLUE },
  }];
  if (scoped()) {
    const mine = rows.map((i, k) => k).filter((k) => inScope(D.whale.c[rows[k]]));
    traces.push({ type: "scatter", mode: "markers", name: segmentText(), x: mine.map((k) => traces[0].x[k]),
      y: mine.map((k) => traces[0].y[k]), customdata: mine.map((k) => traces[0].customdata[k]),
      text: mine.map((k) => text[k]), hovertemplate: "%{text}<extra></extra>", marker: { size: 6, color: ORANGE } });
  }
  // the published curve's peak (data.py: over all its customers, by exact cumulative profit), as published to
  // one decimal; never a point of the held customers found by rounded percentages
  const peak = (D.meta.whale_peak || {})[S.m];
  const annotations = rows.length && peak ? [{ x: peak.ccp, y: peak.cpp, showarrow: true, arrowhead: 0, ax: 40, ay: -24,
    text: `peak ${num(peak.cpp, 1)} % of the total at ${num(peak.ccp, 1)} % of customers (rank ${num(peak.rank)})` }] : [];
  draw("chart-whale", traces, {
    title: title(`Whale curve: ${span} to ${monthName(D.months[S.m])}`, 14),
    xaxis: { title: { text: "Customers, most profitable first (cumulative %)" }, range: [0, 100], ticksuffix: " %" },
    yaxis: { title: { text: "Cumulative ABC profit (% of total)" }, ticksuffix: " %" },
    shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 100, y1: 100, line: { color: "#8a93a3", dash: "dash", width: 1 } }],
    annotations,
  });
  const shown = rows.length < total ? ` The report holds ${num(rows.length)} of the ${num(total)} ranked customers; the line joins their published points.` : "";
  document.getElementById("whale-note").textContent = `Customers ranked by ABC profit over the ${span} to ${monthName(D.months[S.m])}`
    + (scoped() ? `; ${segmentText()} marked.` : ".") + shown
    + (partial ? ` The 12-month window reaches before the start of history: it holds ${held} months.` : "");
  document.getElementById("worst-title").textContent = `Least profitable customers, ${partial ? span : "last 12 months"}`;

  const worst = rows.filter((i) => inScope(D.whale.c[i]));
  table("worst-table", {
    name: "customer_profit_12_months", fileContext: [D.months[S.m], ...scopeContext()], rows: worst, click: true,
    sort: ["p12", false], // least profitable first until the reader sorts otherwise
    attrs: (i) => `data-customer="${D.whale.c[i]}" data-id="${esc(D.customers.id[D.whale.c[i]])}"`,
    columns: [
      ...customerColumns((i) => D.whale.c[i], true),
      { label: `ABC profit, ${partial ? span : "12 months"}`, key: "p12", type: "money", value: (i) => D.whale.p12[i] },
      { label: "Whale-curve rank", type: "num", value: (i) => D.whale.rank[i] },
    ],
  });
}

function renderMatrix() {
  const P = D.profit;
  const rows = IX.profit.byMonth[S.m].filter((i) => inScope(P.c[i], decode(P, "sg", i)));
  const traces = [];
  const summary = [];
  let outside = 0;
  for (const [quadrant, [, colour]] of Object.entries(QUADRANTS)) {
    const label = quadrantLabel(quadrant);
    const mine = rows.filter((i) => decode(P, "quad", i) === quadrant);
    const drawn = mine.filter((i) => P.cpr[i] > 0 && P.npr[i] !== null);
    outside += mine.length - drawn.length;
    summary.push([label, mine.length, mine.reduce((s, i) => s + P.net[i], 0), mine.reduce((s, i) => s + P.abc[i], 0), quadrant]);
    traces.push({
      type: "scatter", mode: "markers", name: label, x: drawn.map((i) => P.cpr[i]), y: drawn.map((i) => P.npr[i]),
      customdata: drawn.map((i) => P.c[i]), marker: { color: colour, size: 7, opacity: 0.7 },
      text: drawn.map((i) => `<b>${esc(customerLabel(P.c[i]))}</b><br>${label}, ${segmentLabel(decode(P, "sg", i))}`
        + `<br>net revenue ${money(P.net[i])}<br>cost to serve ${money(P.cts[i])} (${pct(P.cpr[i])} of revenue)`
        + `<br>price realisation ${pct(P.npr[i])}<br>ABC profit ${money(P.abc[i])}`),
      hovertemplate: "%{text}<extra></extra>",
    });
  }
  draw("chart-matrix", traces, {
    title: title(`Profitability matrix, ${monthName(D.months[S.m])}, ${segmentText()}`, 14),
    xaxis: { title: { text: "Cost to serve per unit of net revenue (log scale)" }, type: "log", tickformat: "~%", range: logRange(traces) },
    yaxis: { title: { text: "Net price realisation (net / list)" }, tickformat: ".0%" }, height: 480,
  });
  const unclassified = rows.filter((i) => decode(P, "quad", i) === "unclassified").length;
  document.getElementById("matrix-note").textContent = `${num(rows.length)} customers in the month`
    + (unclassified ? `; ${num(unclassified)} without revenue are unclassified and not drawn` : "")
    + (outside ? `; ${num(outside)} with no cost to serve are not drawn on the log scale` : "")
    + ". The cost axis spans the 1st to 99th percentile: double-click the chart to see every customer.";
  table("quadrant-table", {
    name: "matrix_quadrants", fileContext: [D.months[S.m], ...scopeContext()], rows: summary,
    attrs: (r) => `data-quadrant="${esc(r[4])}"`,
    columns: [
      { label: "Quadrant", value: (r) => r[0] },
      { label: "Customers", type: "num", value: (r) => r[1] },
      { label: "Net revenue", type: "money", value: (r) => r[2] },
      { label: "ABC profit", type: "money", value: (r) => r[3] },
    ],
  });

  const flips = IX.flips.byMonth[S.m];
  const direction = (i) => decode(D.flips, "dir", i);
  const losses = flips.filter((i) => direction(i) === "hidden_loss")
    .map((i) => IX.profit.get(S.m, D.flips.c[i])).filter((i) => i !== undefined && inScope(P.c[i], decode(P, "sg", i)));
  const gains = flips.filter((i) => direction(i) === "hidden_profit")
    .map((i) => IX.profit.get(S.m, D.flips.c[i])).filter((i) => i !== undefined && inScope(P.c[i], decode(P, "sg", i)));
  document.getElementById("flips-note").textContent = `${num(losses.length)} customers look profitable under `
    + `traditional costing but lose money once their cost to serve is traced (hidden losses); ${num(gains.length)} `
    + "the other way round (costing_comparison.flip_direction). The largest by net revenue:";
  losses.sort((a, b) => P.net[b] - P.net[a]);
  table("flips-table", {
    name: "hidden_losses", fileContext: [D.months[S.m], ...scopeContext()], rows: losses, click: true,
    attrs: (i) => `data-customer="${P.c[i]}" data-id="${esc(D.customers.id[P.c[i]])}"`,
    columns: [
      ...customerColumns((i) => P.c[i], true),
      { label: "Net revenue", type: "money", value: (i) => P.net[i] },
      { label: "Traditional profit", type: "money", value: (i) => P.tp[i] },
      { label: "ABC profit", type: "money", value: (i) => P.abc[i] },
    ],
  });
}

// Every customer of the month in the chosen segment and region: the list to export whole.
function renderCustomerList() {
  const P = D.profit;
  const rows = IX.profit.byMonth[S.m].filter((i) => inScope(P.c[i], decode(P, "sg", i)));
  const p12 = (i) => { const w = IX.whale.get(S.m, P.c[i]); return w === undefined ? null : D.whale.p12[w]; };
  const clv = (i) => { const k = IX.clv.get(S.m, P.c[i]); return k === undefined || !clvFitted(S.m) ? null : D.clv.clvp[k]; };
  document.getElementById("customer-table-note").textContent = `${num(rows.length)} customers with revenue or cost `
    + `in ${monthName(D.months[S.m])} (${segmentText()}), as published in customer_profitability; the CSV holds every `
    + "row the filter keeps, not only the page shown.";
  table("customer-table", {
    name: "customers", fileContext: [D.months[S.m], ...scopeContext()], rows, click: true, sort: ["abc", true],
    attrs: (i) => `data-customer="${P.c[i]}" data-id="${esc(D.customers.id[P.c[i]])}"`,
    columns: [
      { label: "Customer", value: (i) => D.customers.name[P.c[i]] || D.customers.id[P.c[i]], html: (i) => customerCell(P.c[i]) },
      { label: "Customer id", value: (i) => D.customers.id[P.c[i]], html: null },
      { label: "Segment", value: (i) => segmentLabel(decode(P, "sg", i)) },
      { label: "Region", value: (i) => regionLabel(D.customers.region[P.c[i]]) },
      { label: "Net revenue", type: "money", value: (i) => P.net[i] },
      { label: "Gross margin", type: "money", value: (i) => P.gm[i] },
      { label: "Cost to serve", type: "money", value: (i) => P.cts[i] },
      { label: "ABC profit", key: "abc", type: "money", value: (i) => P.abc[i] },
      { label: "Traditional profit", type: "money", value: (i) => P.tp[i] },
      { label: "ABC profit, 12 months", type: "money", value: p12 },
      { label: "Profit decile", type: "num", value: (i) => P.decile[i] },
      { label: "Matrix quadrant", value: (i) => quadrantLabel(decode(P, "quad", i)) },
      { label: "Profit CLV", type: "money", value: clv },
    ],
  });
}

// Two months side by side: the company's reconciliation and the segment's scorecard in months A and B.
const COMPANY_FIGURES = [["op", "Operating profit"], ["gm", "Gross margin"], ["ledger", "Ledger cost"],
  ["abc", "ABC customer profit"], ["unused", "Unused capacity"], ["sust", "Business-sustaining cost"],
  ["trad", "Traditional customer profit"]];
function renderCompare() {
  const recon = (m) => (D.recon || []).find((r) => r.m === m) || {};
  const card = (m) => new Map((D.scorecard || []).filter((r) => r.m === m && r.segment === S.segment).map((r) => [r.metric, r]));
  const [ra, rb, ca, cb] = [recon(S.a), recon(S.b), card(S.a), card(S.b)];
  const known = (v) => v !== null && v !== undefined;
  const rows = COMPANY_FIGURES.map(([field, label]) => ({ key: field, label, unit: CURRENCY || "money", money: true,
    a: known(ra[field]) ? ra[field] : null, b: known(rb[field]) ? rb[field] : null }));
  const metrics = Object.keys(METRICS).filter((metric) => ca.has(metric) || cb.has(metric));
  metrics.forEach((metric) => rows.push({ key: metric, label: `${metricName(metric)} (${S.segment === "all" ? "all customers" : segmentLabel(S.segment)})`,
    unit: metricUnit(metric), metric, a: ca.has(metric) ? ca.get(metric).actual : null, b: cb.has(metric) ? cb.get(metric).actual : null }));
  const change = (r) => (known(r.a) && known(r.b) ? r.b - r.a : null);
  const show = (r, v, plus) => (r.money ? money(v, plus) : metricValue(r.metric, v, plus));
  const exported = (r, v) => (known(v) && r.money ? centsText(v) : v);
  const [a, b] = [D.months[S.a], D.months[S.b]];
  table("compare-table", {
    name: "two_months", fileContext: [a, b, S.segment], rows,
    attrs: (r) => `data-measure="${esc(r.key)}" data-a="${known(r.a) ? r.a : ""}" data-b="${known(r.b) ? r.b : ""}"`,
    columns: [
      { label: "Figure", value: (r) => r.label },
      { label: "Unit", value: (r) => r.unit, html: null },
      { label: `A: ${monthName(a)}`, type: "num", value: (r) => r.a, html: (r) => show(r, r.a), csv: (r) => exported(r, r.a) },
      { label: `B: ${monthName(b)}`, type: "num", value: (r) => r.b, html: (r) => show(r, r.b), csv: (r) => exported(r, r.b) },
      { label: "Change, B \u2212 A", type: "num", value: change, html: (r) => show(r, change(r), true),
        csv: (r) => exported(r, change(r)) },
      { label: "Change %", type: "pct", // of an amount or a count; a rate's change is in points
        value: (r) => (known(change(r)) && r.a && (r.money || ["money", "count"].includes(METRICS[r.metric][1])) ? change(r) / Math.abs(r.a) : null) },
    ],
  });
}

function renderDrivers() {
  const rows = (D.drivers || []).filter((r) => r.m === S.m);
  const weights = rows.map((r) => r.weight);
  const middle = (Math.min(...weights) + Math.max(...weights)) / 2;
  const byQuadrant = {};
  rows.forEach((r) => { (byQuadrant[r.quadrant] = byQuadrant[r.quadrant] || []).push(r); });
  draw("chart-drivers", Object.entries(byQuadrant).map(([quadrant, list]) => ({
    type: "scatter", mode: "markers+text", name: ipaLabel(quadrant),
    x: list.map((r) => r.weight * 100), y: list.map((r) => r.mean), text: list.map((r) => r.label || words(r.question)),
    textposition: list.map((r) => (r.weight > middle ? "middle left" : "middle right")), marker: { size: 12, color: (IPA[quadrant] || ["", GREY])[1] },
    customdata: null,
    hovertext: list.map((r) => `<b>${esc(r.label || r.question)}</b><br>importance ${pct(r.weight)}<br>mean score ${num(r.mean, 2)}`
      + `<br>${esc(ipaLabel(quadrant))}<br>${num(r.responses)} responses, R\u00b2 ${num(r.r2, 2)}`),
    hovertemplate: "%{hovertext}<extra></extra>",
  })), {
    title: title(`Importance and performance, ${rows.length && rows[0].window < 12 ? `${rows[0].window} months (partial window)` : "12 months"} `
      + `to ${monthName(D.months[S.m])} (all customers)`, 14),
    xaxis: { title: { text: "Importance (share of explained satisfaction)" }, ticksuffix: " %" },
    yaxis: { title: { text: "Mean score" } },
  });
}

function clvFitted(m) { return D.meta.clv_fitted[m] !== false; }

function renderClv() {
  const C = D.clv;
  const fitted = clvFitted(S.m);
  const rows = C && fitted ? IX.clv.byMonth[S.m].filter((i) => inScope(C.c[i])) : [];
  const lead = document.getElementById("clv-lead");
  if (!fitted) {
    lead.textContent = `The CLV models were not fitted as of ${monthName(D.months[S.m])} (the month's purchase `
      + "summary does not identify them): no lifetime value, P(alive) or defection flag for this month.";
  } else if (!rows.length) {
    lead.textContent = `No customer is scored as of ${monthName(D.months[S.m])} (too little history to fit the models).`;
  } else {
    const total = rows.reduce((s, i) => s + C.clvp[i], 0);
    const losing = rows.filter((i) => C.clvp[i] < 0).length;
    lead.textContent = `${num(rows.length)} customers (${segmentText()}) scored as of ${monthName(D.months[S.m])}: `
      + `expected profit over the horizon totals ${money(total)}; ${num(losing)} are expected to lose money.`;
  }
  // the bulk of the customers (1st to 99th percentile); the tails are counted in the outermost bars
  const values = rows.map((i) => C.clvp[i] / 100).sort((a, b) => a - b);
  const at = (q) => values[Math.min(values.length - 1, Math.floor(q * (values.length - 1)))];
  const [low, high] = values.length ? [at(0.01), at(0.99)] : [0, 0];
  const below = values.filter((v) => v < low).length, above = values.filter((v) => v > high).length;
  if (below || above) {
    lead.textContent += ` Counted in the outermost bars: ${num(below)} customers below ${amount(low)} and `
      + `${num(above)} above ${amount(high)}.`;
  }
  draw("chart-clv", [{
    type: "histogram", x: values.map((v) => Math.min(Math.max(v, low), high)), nbinsx: 40,
    marker: { color: BLUE, line: { color: "#fff", width: 0.5 } },
    hovertemplate: "profit CLV %{x}: %{y} customers<extra></extra>", name: "Customers",
  }], {
    title: title(`Distribution of profit CLV, ${monthName(D.months[S.m])}, ${segmentText()}`, 14),
    xaxis: { title: { text: inCurrency("Expected profit over the CLV horizon") } }, yaxis: { title: { text: "Customers" } }, bargap: 0.02,
  });
  const pastProfit = (i) => { const w = IX.whale.get(S.m, C.c[i]); return w === undefined ? null : D.whale.p12[w]; };
  const risk = rows.filter((i) => C.risk[i]).sort((a, b) => pastProfit(b) - pastProfit(a));
  table("risk-table", {
    name: "customers_at_risk", fileContext: [D.months[S.m], ...scopeContext()], rows: risk, click: true,
    attrs: (i) => `data-customer="${C.c[i]}" data-id="${esc(D.customers.id[C.c[i]])}"`,
    columns: [
      ...customerColumns((i) => C.c[i]),
      { label: "Profit, 12 months", type: "money", value: pastProfit },
      { label: "Profit CLV", type: "money", value: (i) => C.clvp[i] },
      { label: "Revenue CLV", type: "money", value: (i) => C.clvr[i], html: null },
      { label: "P(alive)", type: "pct", value: (i) => C.alive[i] },
    ],
  });
}

function renderCosts() {
  const A = D.activities || [];
  const names = [...new Set(A.map((r) => r.activity))];
  const series = (rows, key, field, scale) => {
    const groups = {};
    rows.forEach((r) => { (groups[r[key]] = groups[r[key]] || []).push(r); });
    return Object.entries(groups).map(([name, list], k) => ({ name, list, colour: PALETTE[k % PALETTE.length],
      x: list.map((r) => D.months[r.m]), y: list.map((r) => (r[field] === null ? null : r[field] / scale)) }));
  };
  draw("chart-activity-costs", series(A, "activity", "cost", 100).map((s) => ({
    type: "bar", name: activityLabel(s.name), x: s.x, y: s.y, marker: { color: s.colour },
    text: s.list.map((r) => `<b>${esc(activityLabel(r.activity))}</b>, ${D.months[r.m]}<br>cost ${money(r.cost)}<br>${esc(centreLabel(r.centre))}`),
    hovertemplate: "%{text}<extra></extra>", textposition: "none",
  })), { title: title("Activity costs by month", 14), barmode: "stack", shapes: monthMarker(),
    xaxis: monthAxis(), yaxis: { title: { text: inCurrency("Cost") } }, legend: SIDE_LEGEND, height: 420 });
  draw("chart-activity-rates", series(A, "activity", "rate", 1).map((s) => ({
    type: "scatter", mode: "lines+markers", name: activityLabel(s.name), x: s.x, y: s.y, line: { color: s.colour },
    text: s.list.map((r) => `<b>${esc(activityLabel(r.activity))}</b>, ${D.months[r.m]}<br>rate ${amount(r.rate)} per ${esc(driverLabel(r.driver))}`
      + `<br>volume ${num(r.volume)}`),
    hovertemplate: "%{text}<extra></extra>",
  })), { title: title("Activity rates (cost per driver unit, log scale)", 14), shapes: monthMarker(),
    xaxis: monthAxis(), yaxis: { type: "log", dtick: "D2", tickformat: "~g" }, legend: SIDE_LEGEND, height: 420 });

  const K = (D.capacity || []);
  const timed = K.filter((r) => r.util !== null);
  const utilisation = series(timed, "centre", "util", 0.01).map((s) => ({
    type: "scatter", mode: "lines+markers", name: centreLabel(s.name), x: s.x, y: s.y, line: { color: s.colour },
    text: s.list.map((r) => `<b>${esc(centreLabel(r.centre))}</b>, ${D.months[r.m]}<br>utilisation ${pct(r.util)}`
      + `<br>${num(r.used, 0)} of ${num(r.capacity)} minutes${r.over ? "<br><b>over capacity</b>" : ""}`),
    hovertemplate: "%{text}<extra></extra>",
  }));
  const over = timed.filter((r) => r.over);
  utilisation.push({ type: "scatter", mode: "markers", name: "Over capacity", x: over.map((r) => D.months[r.m]),
    y: over.map((r) => r.util * 100), marker: { symbol: "x", size: 12, color: "#c0281c" },
    text: over.map((r) => `<b>${esc(centreLabel(r.centre))}</b> over capacity in ${D.months[r.m]}: ${pct(r.util)}`),
    hovertemplate: "%{text}<extra></extra>" });
  draw("chart-utilisation", utilisation, { title: title("Cost-centre utilisation (time-driven centres)", 14),
    shapes: monthMarker().concat([{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 100, y1: 100, line: { color: "#c0281c", dash: "dash", width: 1 } }]),
    xaxis: monthAxis(), yaxis: { ticksuffix: " %" }, legend: SIDE_LEGEND, height: 420 });
  draw("chart-unused", series(K.filter((r) => !r.sustaining), "centre", "unused", 100).map((s) => ({
    type: "bar", name: centreLabel(s.name), x: s.x, y: s.y, marker: { color: s.colour },
    text: s.list.map((r) => `<b>${esc(centreLabel(r.centre))}</b>, ${D.months[r.m]}<br>unused capacity ${money(r.unused)}`
      + `<br>of ledger cost ${money(r.ledger)}${r.over ? "<br><b>over capacity</b>" : ""}`),
    hovertemplate: "%{text}<extra></extra>", textposition: "none",
  })), { title: title("Unused capacity cost by centre (negative: over capacity)", 14),
    barmode: "relative", shapes: monthMarker(), xaxis: monthAxis(), legend: SIDE_LEGEND, height: 420 });

  table("activity-table", {
    name: "activity_costs", fileContext: [D.months[S.m]], sort: ["cost", true],
    rows: A.filter((r) => r.m === S.m), attrs: (r) => `data-activity="${esc(r.activity)}"`,
    columns: [
      { label: "Activity", value: (r) => activityLabel(r.activity) },
      { label: "Activity code", value: (r) => r.activity, html: null },
      { label: "Cost centre", value: (r) => centreLabel(r.centre) },
      { label: "Driver", value: (r) => driverLabel(r.driver) },
      { label: "Volume", type: "num", value: (r) => r.volume },
      { label: "Rate per unit", type: "num", currency: true, value: (r) => r.rate, html: (r) => amount(r.rate) },
      { label: "Activity cost", key: "cost", type: "money", value: (r) => r.cost },
    ],
  });
  table("capacity-table", {
    name: "cost_centres", fileContext: [D.months[S.m]], rows: K.filter((r) => r.m === S.m),
    attrs: (r) => `data-centre="${esc(r.centre)}"`,
    columns: [
      { label: "Cost centre", value: (r) => centreLabel(r.centre) },
      { label: "Cost centre code", value: (r) => r.centre, html: null },
      { label: "Ledger cost", type: "money", value: (r) => r.ledger },
      { label: "Assigned", type: "money", value: (r) => r.assigned },
      { label: "Unused capacity", type: "money", value: (r) => r.unused },
      { label: "Sustaining", type: "money", value: (r) => r.sust },
      { label: "Utilisation", type: "pct", value: (r) => r.util,
        html: (r) => (r.util === null ? (r.sustaining ? "sustaining" : "\u2013") : pct(r.util)) },
      { label: "Over capacity", value: (r) => (r.over ? "over capacity" : ""),
        csv: (r) => r.over, html: (r) => (r.over ? '<span class="flag">over capacity</span>' : "") },
    ],
  });
  table("recon-table", {
    name: "company_reconciliation", rows: D.recon || [],
    attrs: (r) => `data-month="${D.months[r.m]}"${r.m === S.m ? ' class="current"' : ""}`,
    columns: [
      { label: "Month", value: (r) => D.months[r.m] },
      ...[["gm", "Gross margin"], ["ledger", "Ledger cost"], ["op", "Operating profit"], ["abc", "ABC customer profit"],
        ["unused", "Unused capacity"], ["sust", "Sustaining"], ["trad", "Traditional customer profit"]]
        .map(([field, label]) => ({ label, type: "money", value: (r) => r[field] })),
      { label: "Identities", value: (r) => identitiesHeld(r).filter(Boolean).length, html: identities,
        csv: (r) => r.balanced && identitiesHeld(r).every(Boolean) },
    ],
  });
}

// --- scenarios (what if) -------------------------------------------------------------------------------------

function scenarioMonth() { // the chosen month when it is a scenario month, else the last scenario month
  const months = [...new Set(D.scenarios.summary.map((r) => r.m))].sort((a, b) => a - b);
  return months.includes(S.m) ? S.m : months[months.length - 1];
}
function renderScenarios() {
  const X = D.scenarios;
  const note = document.getElementById("scenario-note");
  if (!X || !X.list.length || !X.summary.length) {
    note.textContent = X ? "This publication has no what-if scenario: add landing/reference/scenarios.csv "
      + "(docs/DESIGN.md, Scenarios) and run again." : "This publication was made before the scenario marts.";
    scenarioTables([], []);
    return;
  }
  const name = S.scenario;
  const chosen = X.list.find((s) => s.name === name);
  const m = scenarioMonth();
  const months = [...new Set(X.summary.map((r) => r.m))].sort((a, b) => a - b);
  const row = (s, month) => X.summary.find((r) => r.s === s && r.m === month) || {};
  const total = (s, field) => X.summary.filter((r) => r.s === s).reduce((sum, r) => sum + r[field], 0);
  document.getElementById("scenario-context").textContent = monthName(D.months[m]);
  note.textContent = `${words(chosen.name)}: ${chosen.description.replace(/\.$/, "")}. Levers: ${chosen.levers}; changes apply ${monthName(chosen.first)} `
    + `to ${monthName(chosen.last)}. Scenario months in this report: ${monthName(D.months[months[0]])} to `
    + `${monthName(D.months[months[months.length - 1]])}`
    + (m === S.m ? "." : `; the chosen month is not one of them, so the view shows ${monthName(D.months[m])}.`);
  const a = row("actual", m), x = row(name, m);
  const lines = [
    ["Operating profit", "op", money], ["ABC customer profit", "abc", money], ["Unused capacity", "unused", money],
    ["Traditional customer profit", "trad", money], ["Net revenue", "net", money], ["Cost to serve", "cts", money],
    ["Unprofitable customers", "unprofitable", (v, plus) => signed(num(Math.abs(v)), v, plus)],
  ];
  // one record per measure: a, x the month's actual and scenario, ta, tx their sums over the scenario months
  const rows = lines.map(([label, field, show]) => ({ field, label, show, a: a[field], x: x[field],
    ta: total("actual", field), tx: total(name, field), cents: show === money }));
  const points = (v, plus) => (v === null || v === undefined ? "\u2013" : signed(`${num(Math.abs(v), 1)} %`, v, plus));
  rows.push({ field: "peak", label: "Whale-curve peak (% of total profit)", a: a.peak, x: x.peak, ta: null, tx: null,
    show: points, change: (v) => (v === null ? "\u2013" : `${signed(num(Math.abs(v), 1), v, true)} pts`) });
  // what a satisfaction lever is worth: values as of the month (profit CLV is a value, not a flow: no total)
  const value = (s) => (X.value || []).find((r) => r.s === s && r.m === m);
  const va = value("actual"), vx = value(name);
  if (va && vx) {
    const known = (v) => v !== null && v !== undefined;
    const decimals = (digits) => (v, plus) => (known(v) ? signed(num(Math.abs(v), digits), v, plus) : "\u2013");
    const valueRow = (field, label, show, a1, x1) => ({ field, label, show, a: a1, x: x1, ta: null, tx: null,
      cents: show === money });
    rows.push(valueRow("index", "Satisfaction index, mean of 12 months", decimals(2), va.idx_actual, vx.idx));
    rows.push(valueRow("staying", "Customers expected to stay active 12 more months", decimals(1), va.staying_actual, vx.staying));
    rows.push(valueRow("clv", "Profit CLV, as of the month", money, va.clv_actual, vx.clv_complete ? vx.clv : null));
    if (vx.moved) {
      note.textContent += ` The satisfaction lever moves ${num(vx.moved)} of ${num(vx.customers)} customers' satisfaction; `
        + (vx.fit ? `retention and profit CLV follow through the satisfaction-retention link fitted as of ${monthName(vx.fit)} `
          + "(an association in the data, not a proven cause)." : "no satisfaction-retention link is fitted, so retention and profit CLV are not computed.");
    }
  }
  scenarioTables(rows, X.movers.filter((r) => r.s === name && r.m === m), name, m);

  const curves = [["actual", "Actual", BLUE], [name, words(name), ORANGE]].map(([s, label, colour]) => {
    const curve = (X.whale[s] || {})[m] || { ccp: [], cpp: [] };
    return { type: "scatter", mode: "lines", name: label, x: curve.ccp, y: curve.cpp, line: { color: colour, width: 2 },
      hovertemplate: `${label}: %{y:.1f} % of profit at %{x:.1f} % of customers<extra></extra>` };
  });
  draw("chart-scenario-whale", curves, {
    title: title(`Whale curve both ways, 12 months to ${monthName(D.months[m])}`, 14),
    xaxis: { title: { text: "Customers, most profitable first (cumulative %)" }, range: [0, 100], ticksuffix: " %" },
    yaxis: { title: { text: "Cumulative ABC profit (% of total)" }, ticksuffix: " %" }, legend: SIDE_LEGEND,
    shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 100, y1: 100, line: { color: "#8a93a3", dash: "dash", width: 1 } }],
  });

  const capacity = (s) => X.capacity.filter((r) => r.s === s && r.m === m && r.capacity !== null);
  const centres = capacity("actual").map((r) => centreLabel(r.centre));
  const bars = [["actual", "Required, actual", BLUE], [name, `Required, ${words(name)}`, ORANGE]].map(([s, label, colour]) => {
    const list = capacity(s);
    return { type: "bar", name: label, x: list.map((r) => centreLabel(r.centre)), y: list.map((r) => r.used), marker: { color: colour },
      text: list.map((r) => `<b>${esc(centreLabel(r.centre))}</b>, ${label}<br>${num(r.used, 0)} of ${num(r.capacity)} minutes`
        + `<br>unused capacity ${money(r.unused)}${r.over ? "<br><b>over capacity</b>" : ""}`),
      hovertemplate: "%{text}<extra></extra>", textposition: "none" };
  });
  const supplied = capacity(name);
  bars.push({ type: "scatter", mode: "markers", name: "Supplied (practical capacity)", x: supplied.map((r) => centreLabel(r.centre)),
    y: supplied.map((r) => r.capacity), marker: { symbol: "line-ew-open", size: 28, color: "#333", line: { width: 2 } },
    hovertemplate: "%{x}: %{y:,} minutes supplied<extra></extra>" });
  draw("chart-scenario-capacity", bars, { title: title(`Capacity required against supplied, ${monthName(D.months[m])}`, 14),
    barmode: "group", xaxis: { categoryorder: "array", categoryarray: centres, automargin: true },
    yaxis: { title: { text: "Minutes" } },
    legend: SIDE_LEGEND });

  const series = (s, field, label, colour, dash) => {
    const list = X.summary.filter((r) => r.s === s);
    return { type: "scatter", mode: "lines+markers", name: label, x: list.map((r) => D.months[r.m]),
      y: list.map((r) => r[field] / 100), line: { color: colour, dash },
      hovertemplate: `${label}, %{x}: %{y:,.2f}<extra></extra>` };
  };
  draw("chart-scenario-profit", [
    series("actual", "op", "Operating profit, actual", BLUE, "solid"),
    series(name, "op", `Operating profit, ${words(name)}`, ORANGE, "dash"),
    series("actual", "unused", "Unused capacity, actual", GREY, "solid"),
    series(name, "unused", `Unused capacity, ${words(name)}`, "#8c564b", "dash"),
  ], { title: title("Operating profit and unused capacity by scenario month", 14), xaxis: monthAxis(),
    legend: SIDE_LEGEND, shapes: m === S.m ? monthMarker() : [] });

}

function scenarioTables(rows, movers, name, m) { // the company figures both ways, and the customers who move most
  const known = (v) => v !== null && v !== undefined;
  const diff = (p, q) => (known(p) && known(q) ? q - p : null);
  const shown = (r, v, plus) => (known(v) ? r.show(v, plus) : (r.field === "peak" || r.ta === null ? "" : "\u2013"));
  const amountColumn = (label, pick, plus) => ({ label, type: "num", value: pick,
    html: (r) => (r.change && plus ? (known(pick(r)) ? r.change(pick(r)) : "\u2013") : shown(r, pick(r), plus)),
    csv: (r) => (known(pick(r)) && r.cents ? centsText(pick(r)) : pick(r)) });
  const context = name ? [name, D.months[m]] : [];
  table("scenario-table", {
    name: "scenario", fileContext: context, rows,
    attrs: (r) => `data-measure="${r.field}" data-actual="${r.a}" data-scenario="${r.x}"`,
    columns: [
      { label: "Company", value: (r) => r.label },
      amountColumn("Actual", (r) => r.a),
      amountColumn("Scenario", (r) => r.x),
      amountColumn("Change", (r) => diff(r.a, r.x), true),
      amountColumn("Actual, scenario months", (r) => r.ta),
      amountColumn("Scenario, scenario months", (r) => r.tx),
      amountColumn("Change, scenario months", (r) => diff(r.ta, r.tx), true),
    ],
  });
  const side = (r) => ({ to_loss: "to a loss", to_profit: "out of a loss" }[r.flip] || "");
  const rank = (v) => (v === null || v === undefined ? "\u2013" : num(v));
  table("movers-table", {
    name: "scenario_movers", fileContext: context, rows: movers, click: true,
    attrs: (r) => `${known(r.c) ? `data-customer="${r.c}" ` : ""}data-id="${esc(r.id)}" data-change="${r.change}"`,
    columns: [
      { label: "Customer", value: (r) => (known(r.c) ? D.customers.name[r.c] || r.id : r.id),
        html: (r) => (known(r.c) ? customerCell(r.c) : esc(r.id)) },
      { label: "Customer id", value: (r) => r.id, html: null },
      { label: "Segment", value: (r) => segmentLabel(r.segment) },
      { label: "ABC profit, actual", type: "money", value: (r) => r.actual },
      { label: "ABC profit, scenario", type: "money", value: (r) => r.scenario },
      { label: "Change", type: "money", value: (r) => r.change, html: (r) => money(r.change, true) },
      { label: "Side", value: side, html: (r) => (side(r) ? `<span class="flag">${side(r)}</span>` : "") },
      { label: "Whale-curve rank, actual", type: "num", value: (r) => r.rank_actual, html: (r) => `${rank(r.rank_actual)} \u2192 ${rank(r.rank_scenario)}` },
      { label: "Whale-curve rank, scenario", type: "num", value: (r) => r.rank_scenario, html: null },
    ],
  });
}

function identitiesHeld(r) { return [r.gm - r.ledger === r.op, r.abc - r.unused - r.sust === r.op, r.trad === r.op]; }
function identities(r) { // the published flag, and each identity checked on the published amounts, in cents
  const held = identitiesHeld(r);
  const names = ["gross margin \u2212 ledger cost", "ABC profit \u2212 unused \u2212 sustaining", "traditional profit"];
  const detail = names.map((name, k) => `${name} ${held[k] ? "=" : "\u2260"} operating profit`).join("; ");
  const ok = r.balanced && held.every(Boolean);
  return `<span class="${ok ? "ok" : "flag"}" title="${detail}" data-identities="${held.filter(Boolean).length}">`
    + `${ok ? "\u2713" : "\u2717"} ${held.filter(Boolean).length} of 3${r.balanced ? "" : ", published as not balanced"}</span>`;
}

// --- the customer ------------------------------------------------------------------------------------------

function customerMonths(c, months) { // the customer's profitability rows and cost-to-serve rows in those months
  const P = D.profit;
  const steps = { gross: 0, disc: 0, ret: 0, net: 0, cogs: 0, gm: 0, abc: 0, toh: 0, tp: 0 };
  const activities = new Map();
  let rows = 0;
  for (const m of months) {
    const i = IX.profit.get(m, c);
    if (i === undefined) continue;
    rows += 1;
    for (const field of Object.keys(steps)) steps[field] += P[field][i];
    for (const j of IX.cts(m, c)) {
      const name = decode(D.cts, "a", j);
      activities.set(name, (activities.get(name) || 0) + D.cts.cost[j]);
    }
  }
  return { rows, steps, activities: [...activities.entries()].sort((a, b) => b[1] - a[1]) };
}

function waterfall(id, title, figures) {
  const { steps, activities } = figures;
  const labels = ["Gross revenue", "Discounts", "Returns", "Net revenue", "Cost of goods", "Gross margin",
    ...activities.map(([name]) => activityLabel(name)), "ABC profit"];
  const cents = [steps.gross, -steps.disc, -steps.ret, steps.net, -steps.cogs, steps.gm,
    ...activities.map(([, cost]) => -cost), steps.abc];
  const measure = ["absolute", "relative", "relative", "total", "relative", "total",
    ...activities.map(() => "relative"), "total"];
  const largest = Math.max(...cents.map(Math.abs));
  const hover = labels.map((label, k) => `<b>${label}</b>: ${money(cents[k])}`
    + (measure[k] === "total" ? " (published)" : ""));
  draw(id, [{
    type: "waterfall", name: "Activity-based", x: labels, y: cents.map((v) => v / 100), measure,
    text: cents.map((v, k) => (measure[k] === "total" || Math.abs(v) >= 0.04 * largest ? money(v) : "")),
    textposition: "outside", textfont: { size: 10 }, constraintext: "none",
    hovertext: hover, hovertemplate: "%{hovertext}<extra></extra>",
    increasing: { marker: { color: BLUE } }, decreasing: { marker: { color: ORANGE } }, totals: { marker: { color: "#1d2330" } },
    connector: { line: { color: "#aab1be", width: 1 } }, cliponaxis: false,
  }, {
    type: "waterfall", name: "Traditional", x: ["Gross margin ", "Traditional overhead", "Traditional profit"],
    y: [steps.gm / 100, -steps.toh / 100, steps.tp / 100], measure: ["absolute", "relative", "total"],
    xaxis: "x2", yaxis: "y", text: [money(steps.gm), money(-steps.toh), money(steps.tp)], textposition: "outside",
    textfont: { size: 10 }, constraintext: "none",
    hovertext: [`<b>Gross margin</b>: ${money(steps.gm)}`, `<b>Traditional overhead</b> (indirect cost spread by revenue): ${money(-steps.toh)}`,
      `<b>Traditional profit</b>: ${money(steps.tp)} (published)`],
    hovertemplate: "%{hovertext}<extra></extra>", increasing: { marker: { color: "#9aa3b2" } },
    decreasing: { marker: { color: "#E69F00" } }, totals: { marker: { color: "#5b6475" } }, cliponaxis: false,
  }], {
    title: { text: title, x: 0, font: { size: 14 } }, showlegend: false, height: 430, margin: { l: 70, r: 10, t: 40, b: 110 },
    xaxis: { domain: [0, 0.74], tickangle: -40, title: { text: "Activity-based costing" } },
    xaxis2: { domain: [0.8, 1], tickangle: -40, anchor: "y", title: { text: "Traditional" } },
    yaxis: { title: { text: inCurrency("Amount") }, zeroline: true },
  });
  const el = document.getElementById(id);
  el.dataset.steps = JSON.stringify(cents.filter((v, k) => measure[k] !== "total"));
  el.dataset.total = String(steps.abc);
}

function latestAtOrBefore(name, c) {
  for (let m = S.m; m >= 0; m -= 1) {
    const i = IX[name].get(m, c);
    if (i !== undefined) return [m, i];
  }
  return [null, undefined];
}

function renderCustomer() {
  const c = S.c;
  if (c === null) return;
  document.getElementById("customer-empty").hidden = true;
  const panel = document.getElementById("customer-panel");
  panel.hidden = false;
  const P = D.profit;
  const i = IX.profit.get(S.m, c);
  const month = monthName(D.months[S.m]);
  document.getElementById("customer-title").textContent = `${customerLabel(c)} \u00b7 ${segmentLabel(D.customers.segment[c])}`
    + (D.customers.region[c] ? ` \u00b7 ${regionLabel(D.customers.region[c])}` : "") + ` \u00b7 ${month}`;
  const facts = [];
  const fact = (name, value) => facts.push(`<dt>${name}</dt><dd>${value}</dd>`);
  fact("ABC profit, month", i === undefined ? "no activity" : money(P.abc[i]));
  fact("Traditional profit", i === undefined ? "\u2013" : money(P.tp[i]));
  fact("Profit decile", i === undefined ? "\u2013" : `${P.decile[i]} (1 = most profitable)`);
  fact("Matrix quadrant", i === undefined ? "\u2013" : quadrantLabel(decode(P, "quad", i)));
  const w = IX.whale.get(S.m, c);
  fact(`ABC profit, ${whaleSpan(S.m)[0]}`, w === undefined ? "\u2013" : money(D.whale.p12[w]));
  fact("Whale-curve rank", w === undefined ? "\u2013" : `${num(D.whale.rank[w])} of ${num(D.meta.whale_customers[S.m])}`);
  const [clvMonth, k] = latestAtOrBefore("clv", c);
  if (k !== undefined && !clvFitted(clvMonth)) {
    fact("CLV", `not fitted as of ${D.months[clvMonth]}`);
  } else if (k !== undefined) {
    const C = D.clv;
    fact(`Profit CLV (${D.months[clvMonth]})`, money(C.clvp[k]));
    fact("Revenue CLV", money(C.clvr[k]));
    fact("P(alive)", pct(C.alive[k]));
    fact("Defection-prone", C.risk[k] ? '<span class="flag">yes</span>' : "no");
  } else {
    fact("CLV", "not scored");
  }
  const [satMonth, s] = latestAtOrBefore("sat", c);
  if (s !== undefined) {
    fact(`Satisfaction index (${D.months[satMonth]})`, num(D.sat.index[s], 1));
    fact("NPS / CSAT", `${num(D.sat.nps[s], 0)} / ${num(D.sat.csat[s], 0)} % (${num(D.sat.resp[s])} responses)`);
  } else {
    fact("Satisfaction", "no survey response");
  }
  document.getElementById("customer-facts").innerHTML = facts.join("");

  const trailing = [];
  for (let m = Math.max(0, S.m - 11); m <= S.m; m += 1) trailing.push(m);
  const monthly = customerMonths(c, [S.m]);
  const yearly = customerMonths(c, trailing);
  waterfall("chart-waterfall-month", `Profit waterfall, ${month}`, monthly);
  waterfall("chart-waterfall-t12m", `Trailing ${trailing.length} months to ${month}`, yearly);
  const published = w === undefined ? null : D.whale.p12[w];
  document.getElementById("waterfall-note").innerHTML = "Each step is a published amount (customer_profitability, "
    + "customer_cost_to_serve); the trailing months add up the monthly rows. "
    + (monthly.rows ? "" : `<span class="flag">No revenue or cost in ${month}.</span> `)
    + (published === null ? "" : `The ${trailing.length}-month ABC profit ${money(yearly.steps.abc)} `
      + (published === yearly.steps.abc ? '<span class="ok">equals</span>' : '<span class="flag">differs from</span>')
      + ` the whale curve's published ${money(published)}.`);

  // driver volumes in the month against the average of the customer's segment in that month
  const segment = i === undefined ? D.customers.segment[c] : decode(P, "sg", i);
  const peers = IX.profit.byMonth[S.m].filter((j) => decode(P, "sg", j) === segment).map((j) => P.c[j]);
  const totals = new Map();
  peers.forEach((peer) => IX.cts(S.m, peer).forEach((j) => {
    const name = decode(D.cts, "a", j);
    totals.set(name, (totals.get(name) || 0) + D.cts.vol[j]);
  }));
  const own = new Map(IX.cts(S.m, c).map((j) => [decode(D.cts, "a", j), D.cts.vol[j]]));
  const activities = [...totals.keys()].sort();
  const label = (name) => `${activityLabel(name)} (${driverLabel((IX.activity[name] || {}).driver || "")})`;
  const average = (name) => totals.get(name) / peers.length;
  draw("chart-customer-drivers", [
    { type: "bar", orientation: "h", name: "This customer", y: activities.map(label), x: activities.map((a) => own.get(a) || 0),
      marker: { color: BLUE }, text: activities.map((a) => `<b>${esc(customerLabel(c))}</b><br>${label(a)}: ${num(own.get(a) || 0)}`),
      hovertemplate: "%{text}<extra></extra>", textposition: "none" },
    { type: "bar", orientation: "h", name: `${segmentLabel(segment)} average`, y: activities.map(label), x: activities.map(average),
      marker: { color: GREY }, text: activities.map((a) => `${segmentLabel(segment)} average (${num(peers.length)} customers)<br>${label(a)}: ${num(average(a), 1)}`),
      hovertemplate: "%{text}<extra></extra>", textposition: "none" },
  ], { title: title(`Driver volumes, ${month}, against the segment's average`, 14), barmode: "group",
    xaxis: { type: "log", title: { text: "Driver volume (log scale)" } }, yaxis: { automargin: true }, height: 430,
    margin: { l: 10, r: 10, t: 56, b: 46 } });

  renderLevers(c);

  const months = D.months.map((_, m) => m);
  const history = months.map((m) => IX.profit.get(m, c));
  draw("chart-customer-history", [
    { type: "bar", name: "ABC profit", x: D.months, y: history.map((j) => (j === undefined ? null : P.abc[j] / 100)),
      marker: { color: history.map((j) => (j !== undefined && P.abc[j] < 0 ? ORANGE : BLUE)) },
      text: history.map((j, m) => `${D.months[m]}<br>ABC profit ${j === undefined ? "\u2013" : money(P.abc[j])}`),
      hovertemplate: "%{text}<extra></extra>", textposition: "none" },
    { type: "scatter", mode: "lines+markers", name: "Traditional profit", x: D.months,
      y: history.map((j) => (j === undefined ? null : P.tp[j] / 100)), line: { color: "#5b6475", dash: "dash" },
      text: history.map((j, m) => `${D.months[m]}<br>traditional profit ${j === undefined ? "\u2013" : money(P.tp[j])}`),
      hovertemplate: "%{text}<extra></extra>" },
  ], { title: title("ABC and traditional profit by month", 14), shapes: monthMarker(),
    xaxis: monthAxis(), height: 430 });
}

// The customer's published profit levers (customer_profit_levers) of the month and its trailing 12 months,
// largest excess cost first: each activity above its segment's norm, what it costs above it, the profit at it.
const WINDOWS = [["month", "Month"], ["t12m", "Trailing 12 months"]];
function renderLevers(c) {
  const L = D.levers;
  const rows = [];
  const sections = [];
  for (const [window, label] of WINDOWS) {
    const mine = L ? IX.levers(S.m, c).filter((j) => decode(L, "w", j) === window) : [];
    mine.sort((a, b) => L.excess[b] - L.excess[a] || decode(L, "a", a).localeCompare(decode(L, "a", b)));
    const span = window === "month" ? monthName(D.months[S.m]) : `${whaleSpan(S.m)[0]} to ${monthName(D.months[S.m])}`;
    sections.push(`${label} (${span}): ${mine.length ? `${num(mine.length)} lever${mine.length > 1 ? "s" : ""}` : "none"}`);
    mine.forEach((j) => rows.push({ j, window, label }));
  }
  const activity = (r) => decode(L, "a", r.j);
  const driver = (r) => (IX.activity[activity(r)] || {}).driver || "";
  const against = (r) => (decode(L, "why", r.j) === "no_net_revenue" ? "no revenue: norm 0"
    : (L.vtn[r.j] === null ? "the segment's norm is none" : `${num(L.vtn[r.j], 1)}\u00d7 the norm`));
  table("levers-table", {
    name: "profit_levers", fileContext: [D.customers.id[c], D.months[S.m]], rows,
    attrs: (r) => `data-window="${r.window}" data-activity="${esc(activity(r))}" data-volume="${L.vol[r.j]}"`
      + ` data-norm="${L.norm[r.j]}" data-excess="${L.excess[r.j]}" data-profit-at-norm="${L.pan[r.j]}"`
      + ` data-break-even="${L.bep[r.j] === null ? "" : L.bep[r.j]}"`,
    columns: [
      { label: "Window", value: (r) => r.label },
      { label: "Activity", value: (r) => activityLabel(activity(r)) },
      { label: "Driver", value: (r) => driverLabel(driver(r)) },
      { label: "Volume", type: "num", value: (r) => L.vol[r.j], html: (r) => num(L.vol[r.j], 1) },
      { label: "Segment norm", type: "num", value: (r) => L.norm[r.j], html: (r) => num(L.norm[r.j], 1) },
      { label: "Against the norm", value: (r) => L.vtn[r.j], html: against, csv: (r) => L.vtn[r.j] },
      { label: "Excess cost", type: "money", value: (r) => L.excess[r.j] },
      { label: "Profit at the norm", type: "money", value: (r) => L.pan[r.j] },
      { label: "Break-even price change", type: "pct", value: (r) => (L.bep[r.j] === null ? null : L.bep[r.j] / 100),
        csvLabel: "Break-even price change (fraction)" },
    ],
  });
  document.getElementById("levers-note").textContent = L
    ? `${sections.join("; ")}. An activity is a lever when its cost per unit of the customer's net revenue is above `
      + "its segment's median: the norm is the volume at that median, scaled to the customer's revenue; profit at "
      + "the norm changes that activity alone. The break-even price change moves all the customer's prices (cost "
      + "to serve held) to bring its ABC profit to zero."
    : "This publication has no customer_profit_levers.";
}

function openCustomer(c, scroll) {
  S.c = c;
  document.body.dataset.customer = D.customers.id[c];
  document.getElementById("customer-search").value = customerLabel(c);
  document.getElementById("search-message").textContent = "";
  renderCustomer();
  if (scroll) document.getElementById("customer").scrollIntoView({ behavior: "auto", block: "start" });
}

function findCustomer(query) {
  const q = query.trim().toLowerCase();
  if (!q) return [];
  const bracket = q.match(/\(([^()]+)\)\s*$/);
  const id = bracket ? bracket[1] : q;
  const exact = IX.search.filter((r) => r.id === id || r.name === q);
  if (exact.length) return exact.map((r) => r.c);
  return IX.search.filter((r) => r.id.includes(q) || r.name.includes(q)).map((r) => r.c);
}

function search() {
  const query = document.getElementById("customer-search").value;
  const found = findCustomer(query);
  const message = document.getElementById("search-message");
  if (found.length === 1) openCustomer(found[0], true);
  else if (!found.length) message.textContent = `No customer in this report matches \u201c${query}\u201d.`;
  else message.textContent = `${num(found.length)} customers match; pick one from the list.`;
}

// --- the page --------------------------------------------------------------------------------------------

function render() {
  const month = monthName(D.months[S.m]);
  document.querySelectorAll("[data-context]").forEach((el) => { el.textContent = `${month}, ${segmentText()}`; });
  document.querySelectorAll("[data-context-month]").forEach((el) => { el.textContent = month; });
  document.querySelectorAll("[data-context-segment]").forEach((el) => { el.textContent = segmentText(); });
  renderScorecard();
  renderTrends();
  renderWhale();
  renderMatrix();
  renderCustomerList();
  renderCompare();
  renderDrivers();
  renderClv();
  renderCosts();
  renderScenarios();
  renderCustomer();
  document.body.dataset.month = D.months[S.m];
  document.body.dataset.segment = S.segment;
  document.body.dataset.region = S.region;
  document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
}

function setUp() {
  if (!D.months.length) {
    document.getElementById("loading").textContent = "This publication has no customer months yet: nothing to show.";
    return;
  }
  CURRENCY = D.meta.currency || null;
  CURRENCY_SIGN = currencySign(CURRENCY);
  buildIndexes();
  const monthSelect = document.getElementById("month");
  monthSelect.innerHTML = D.months.map((m, k) => `<option value="${k}">${monthName(m)}</option>`).reverse().join("");
  S.m = D.months.length - 1;
  monthSelect.value = String(S.m);
  monthSelect.addEventListener("change", () => { S.m = Number(monthSelect.value); render(); });
  const segments = [...new Set(D.customers.segment.filter((s) => s))].sort();
  const segmentSelect = document.getElementById("segment");
  segmentSelect.innerHTML = ["all", ...segments].map((s) => `<option value="${esc(s)}">${s === "all" ? "All customers" : esc(segmentLabel(s))}</option>`).join("");
  segmentSelect.addEventListener("change", () => { S.segment = segmentSelect.value; render(); });
  const regions = [...new Set(D.customers.region.filter((r) => r))].sort();
  const regionSelect = document.getElementById("region");
  regionSelect.innerHTML = ["all", ...regions].map((r) => `<option value="${esc(r)}">${r === "all" ? "All regions" : esc(regionLabel(r))}</option>`).join("");
  regionSelect.addEventListener("change", () => { S.region = regionSelect.value; render(); });
  const options = D.months.map((m, k) => `<option value="${k}">${monthName(m)}</option>`).reverse().join("");
  S.b = D.months.length - 1;
  S.a = Math.max(0, S.b - 1);
  for (const [id, key] of [["month-a", "a"], ["month-b", "b"]]) {
    const select = document.getElementById(id);
    select.innerHTML = options;
    select.value = String(S[key]);
    select.addEventListener("change", () => { S[key] = Number(select.value); renderCompare(); });
  }
  document.getElementById("customer-list").innerHTML = D.customers.id.map((_, c) => `<option value="${esc(customerLabel(c))}"></option>`).join("");
  document.getElementById("controls").addEventListener("submit", (event) => { event.preventDefault(); search(); });
  document.getElementById("customer-search").addEventListener("change", search);
  const scenarioSelect = document.getElementById("scenario");
  const scenarios = D.scenarios ? D.scenarios.list : [];
  scenarioSelect.innerHTML = scenarios.map((x) => `<option value="${esc(x.name)}">${esc(words(x.name))}</option>`).join("");
  S.scenario = scenarios.length ? scenarios[0].name : null;
  scenarioSelect.addEventListener("change", () => { S.scenario = scenarioSelect.value; renderScenarios(); });
  const meta = D.meta;
  const scope = [];
  if (meta.months_total > D.months.length) {
    scope.push(`the latest ${D.months.length} of the ${meta.months_total} published months`);
  }
  if (meta.customers_total > D.customers.id.length) {
    scope.push(`the ${num(D.customers.id.length)} customers with the largest absolute ABC profit over the `
      + `${D.months.length} months it holds, of `
      + `${num(meta.customers_total)} (customer views, lists and search hold only these; the scorecard, trends, `
      + "reconciliation and cost side are company-wide)");
  }
  if (scope.length) {
    const el = document.getElementById("scope");
    el.textContent = `This report holds ${scope.join(", and ")}. Everything else is in the publication `
      + `(${meta.database}, schema marts) for BI tools.`;
    el.hidden = false;
  }
  document.getElementById("loading").hidden = true;
  render();
}

(async function main() {
  try {
    const library = document.createElement("script");
    library.textContent = await unpack("plotly-js");
    document.head.appendChild(library);
    Plotly.setPlotConfig(CONFIG); // the default of every chart, not only of those drawn through draw()
    D = JSON.parse(await unpack("report-data"));
    setUp();
    document.body.dataset.ready = "true";
  } catch (error) {
    document.getElementById("loading").textContent = `The report could not be drawn: ${error}`;
    document.body.dataset.ready = "error";
    throw error;
  }
})();
