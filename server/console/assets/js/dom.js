// Small DOM helpers. Data always goes into the page as text (textContent, attributes), never
// as HTML, and no style attribute is written (the Content-Security-Policy forbids inline
// styles; element.style from JS is allowed).

const BOOLEAN_PROPERTIES = new Set(["disabled", "checked", "selected", "required", "hidden", "multiple", "readOnly"]);

/**
 * Creates an element. attrs: class, id, text (textContent), value (the property), boolean
 * properties (disabled, checked, required, hidden...), on: {event: fn}, any other attribute
 * (href, type, name, placeholder, for, title, data-*, aria-*...). null, undefined and false
 * attributes are left out. children: Node, string, number, null or (nested) arrays of them.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "on") {
      for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    } else if (key === "text") {
      el.textContent = String(value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "value") {
      el.value = value;
    } else if (BOOLEAN_PROPERTIES.has(key)) {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.append(child);
    else el.append(String(child));
  }
}

/** Removes every child of el; answers el. */
export function clear(el) {
  el.replaceChildren();
  return el;
}

function cellContent(td, value) {
  if (value instanceof Node) td.replaceChildren(value);
  else td.replaceChildren(value === null || value === undefined ? "–" : String(value));
}

function buildRow(columns, row, { rowKey, rowAttrs }) {
  const tr = h("tr", rowAttrs ? rowAttrs(row) : {});
  if (rowKey) tr.dataset.key = rowKey(row);
  for (const column of columns) {
    const td = h("td", { class: column.class, "data-label": column.title, "data-testid": column.testid ? column.testid(row) : null });
    cellContent(td, column.cell(row));
    tr.append(td);
  }
  return tr;
}

function headRow(columns) {
  return h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.class, text: c.title }))));
}

/**
 * A <table>: columns [{title, cell: row => Node|string, class?, testid?: row => string}],
 * one <tr> per row (rowKey(row) -> data-key, rowAttrs(row) -> extra attributes such as
 * data-testid), or one "empty" row when there are none.
 */
export function table(columns, rows, { empty = "nothing yet", rowKey, rowAttrs } = {}) {
  const body = h("tbody");
  const fragment = document.createDocumentFragment();
  for (const row of rows) fragment.append(buildRow(columns, row, { rowKey, rowAttrs }));
  if (!rows.length) fragment.append(h("tr", { class: "empty" }, h("td", { colspan: columns.length, text: empty })));
  body.append(fragment);
  return h("table", {}, headRow(columns), body);
}

/**
 * A table updated in place: update(rows) keeps the <tr> of each key (rowKey is required),
 * rewrites only the cells whose content changed, adds and removes rows, and keeps the order
 * of rows. A cell whose markup did not change keeps its old node, event listeners included:
 * a listener in a cell should look its row up by key when it runs, not capture the row.
 * Answers {el (the <table>), update}.
 */
export function liveTable(columns, { empty = "nothing yet", rowKey, rowAttrs } = {}) {
  const body = h("tbody");
  const el = h("table", {}, headRow(columns), body);
  const rowsByKey = new Map();
  const emptyRow = h("tr", { class: "empty" }, h("td", { colspan: columns.length, text: empty }));
  body.append(emptyRow);
  function update(rows) {
    if (rows.length && emptyRow.parentNode) emptyRow.remove();
    if (!rowsByKey.size) {
      // The first fill: every row into one fragment, one insertion.
      const fragment = document.createDocumentFragment();
      for (const row of rows) {
        const tr = buildRow(columns, row, { rowKey, rowAttrs });
        rowsByKey.set(String(rowKey(row)), tr);
        fragment.append(tr);
      }
      body.append(fragment);
    } else {
      const seen = new Set();
      let cursor = body.firstChild;
      for (const row of rows) {
        const key = String(rowKey(row));
        seen.add(key);
        let tr = rowsByKey.get(key);
        if (!tr) {
          tr = buildRow(columns, row, { rowKey, rowAttrs });
          rowsByKey.set(key, tr);
        } else {
          if (rowAttrs) for (const [name, value] of Object.entries(rowAttrs(row))) setAttr(tr, name, value);
          columns.forEach((column, i) => updateCell(tr.children[i], column.cell(row)));
        }
        // A row already in its place stays put; a new or moved one goes before the cursor.
        if (tr === cursor) cursor = cursor.nextSibling;
        else body.insertBefore(tr, cursor);
      }
      for (const [key, tr] of rowsByKey) {
        if (!seen.has(key)) {
          tr.remove();
          rowsByKey.delete(key);
        }
      }
    }
    if (!rows.length && !emptyRow.parentNode) body.append(emptyRow);
  }
  return { el, update };
}

function setAttr(el, name, value) {
  if (value === null || value === undefined || value === false) el.removeAttribute(name);
  else if (el.getAttribute(name) !== String(value)) el.setAttribute(name, String(value));
}

function updateCell(td, value) {
  if (value instanceof Node) {
    // Compare the markup: only a changed cell is replaced (keeps the DOM and selections calm).
    const next = value.outerHTML !== undefined ? value.outerHTML : value.textContent;
    if (td.innerHTML !== next) td.replaceChildren(value);
  } else {
    const text = value === null || value === undefined ? "–" : String(value);
    if (td.childNodes.length !== 1 || td.firstChild.nodeType !== Node.TEXT_NODE || td.textContent !== text) {
      td.replaceChildren(text);
    }
  }
}

/** <div class="error"> with the error's code and the server's message. */
export function errorBox(err) {
  const code = err && err.code ? err.code : err && err.name ? err.name : "ERROR";
  const message = err && err.message ? err.message : String(err);
  return h("div", { class: "error", role: "alert" }, h("strong", { class: "code", text: code }), " ", h("span", { class: "message", text: message }));
}

const DASH = "–";

/** Bytes as "1.2 MiB"; null -> "–". */
export function fmtBytes(n) {
  if (n === null || n === undefined) return DASH;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(n);
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

/** A number with thousands separators; null -> "–". */
export function fmtNumber(n) {
  if (n === null || n === undefined) return DASH;
  return Number(n).toLocaleString("en-US");
}

function pad(n, width = 2) {
  return String(n).padStart(width, "0");
}

/** ms since the Unix epoch as local "YYYY-MM-DD HH:MM:SS.mmm"; null -> "–". */
export function fmtTime(ms) {
  if (ms === null || ms === undefined) return DASH;
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return String(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** An <a href=path> that the router opens in the page (pushState), without a reload. */
export function link(path, text) {
  return h("a", { href: path, text });
}

/** An in-page confirmation (no window.confirm): resolves true for OK, false for Cancel/Escape. */
export function confirmDialog(text) {
  return new Promise((resolve) => {
    let overlay = null;
    const finish = (answer) => {
      overlay.remove();
      document.removeEventListener("keydown", onKey);
      resolve(answer);
    };
    const onKey = (event) => {
      if (event.key === "Escape") finish(false);
    };
    const ok = h("button", { type: "button", id: "confirm-ok", class: "danger", text: "OK", on: { click: () => finish(true) } });
    const cancel = h("button", { type: "button", id: "confirm-cancel", text: "Cancel", on: { click: () => finish(false) } });
    overlay = h("div", { class: "overlay", id: "confirm-dialog", role: "dialog", "aria-modal": "true" },
      h("div", { class: "dialog" }, h("p", { class: "confirm-text", text }), h("div", { class: "actions" }, cancel, ok)));
    document.body.append(overlay);
    document.addEventListener("keydown", onKey);
    cancel.focus();
  });
}

/**
 * A value for reading: a JSON value pretty-printed in a <pre>, a string as it is, null as a
 * marked "null" (a tombstone), bytes ({b64: true}) as base64 marked "binary (base64)".
 */
export function prettyValue(v, { b64 = false } = {}) {
  if (b64) {
    return h("div", { class: "value binary" }, h("span", { class: "tag", text: "binary (base64)" }), h("pre", { text: v }));
  }
  if (v === null || v === undefined) return h("span", { class: "value null muted", text: "null" });
  if (typeof v === "string") return h("pre", { class: "value text", text: v });
  return h("pre", { class: "value json", text: JSON.stringify(v, null, 2) });
}
