// The live page: polls /live/data and draws it. Every value from the stream is set with
// textContent, never parsed as HTML: event fields can carry markup (a form field, a page title).
"use strict";

const FEED_ROWS = 50;
const POLL_MS = 2000;
let seq = 0;

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function fmt(value, digits) {
  return typeof value === "number" ? value.toFixed(digits) : "-";
}

function pct(value) {
  return typeof value === "number" ? (value * 100).toFixed(1) + "%" : "-";
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) tr.appendChild(cell);
  return tr;
}

function addFeed(items) {
  const body = document.getElementById("feed");
  for (const h of items) {
    const tr = row([
      el("td", (h.qualified_at || "").replace("T", " ").slice(0, 19)),
      el("td", h.kind === "buying_group" ? "buying group" : "MQL", "kind-" + h.kind),
      el("td", h.who),
      el("td", h.account || (h.kind === "buying_group" ? h.who : "-")),
      el("td", fmt(h.fit, 0), "num"),
      el("td", fmt(h.engagement, 1), "num"),
      el("td", h.detail),
      el("td", h.model_version),
    ]);
    tr.className = "new";
    tr.dataset.handoffId = h.handoff_id;
    body.insertBefore(tr, body.firstChild);
  }
  while (body.children.length > FEED_ROWS) body.removeChild(body.lastChild);
  document.getElementById("feed-empty").hidden = body.children.length > 0;
}

function bars(id, labels, counts, over) {
  const box = document.getElementById(id);
  const axis = document.getElementById(id + "-axis");
  box.replaceChildren();
  axis.replaceChildren();
  const top = Math.max(1, ...counts);
  counts.forEach((count, i) => {
    const col = el("div", null, "col" + (over && over(i) ? " over" : ""));
    col.style.height = (100 * count / top) + "%";
    col.title = labels[i] + ": " + count;
    col.appendChild(el("span", count || ""));
    box.appendChild(col);
    axis.appendChild(el("div", labels[i]));
  });
}

function distribution(id, hist) {
  if (!hist) return;
  const labels = hist.counts.map((_, i) => String(i * hist.width));
  const barBin = Math.floor(hist.bar / hist.width);
  bars(id, labels, hist.counts, (i) => i >= barBin);
  const share = hist.total ? (100 * hist.at_or_above_bar / hist.total).toFixed(1) : "0.0";
  document.getElementById(id + "-note").textContent =
    hist.total + " contacts sampled; bar " + hist.bar + " (green bins from the bar's bin up); " +
    hist.at_or_above_bar + " (" + share + "%) at or above it";
}

function draw(data) {
  document.getElementById("model").textContent = data.model_version;
  document.getElementById("scored-at").textContent = (data.scores && data.scores.scored_at) || "-";
  document.getElementById("updated").textContent = new Date().toLocaleTimeString();
  document.getElementById("error").textContent = data.feed_error || "";
  addFeed(data.feed);
  seq = data.seq;
  bars("per-day", data.mqls_per_day.map((d) => d[0].slice(5)), data.mqls_per_day.map((d) => d[1]));
  const conversion = document.getElementById("conversion");
  conversion.replaceChildren();
  for (const [version, c] of Object.entries(data.conversion)) {
    conversion.appendChild(row([
      el("td", version), el("td", c.mqls, "num"), el("td", c.answered, "num"),
      el("td", pct(c.mql_to_sql), "num"), el("td", pct(c.mql_to_won), "num"),
      el("td", pct(c.sla_breach_rate), "num"), el("td", c.verdict),
    ]));
  }
  distribution("engagement", data.scores.engagement);
  distribution("fit", data.scores.fit);
  const groups = document.getElementById("groups");
  groups.replaceChildren();
  for (const g of data.groups_missing_roles) {
    groups.appendChild(row([
      el("td", g.domain), el("td", (g.qualified_at || "").slice(0, 10)), el("td", g.reason),
      el("td", g.engaged_contacts, "num"), el("td", g.roles_covered.join(", ") || "-"),
      el("td", g.roles_missing.join(", "), "roles"),
    ]));
  }
  document.body.dataset.seq = String(seq);
}

async function poll() {
  try {
    const response = await fetch("/live/data?after=" + seq, { credentials: "same-origin" });
    if (!response.ok) throw new Error("the server answered " + response.status);
    draw(await response.json());
  } catch (err) {
    document.getElementById("error").textContent = "cannot refresh: " + err.message;
  }
  setTimeout(poll, POLL_MS);
}

poll();
