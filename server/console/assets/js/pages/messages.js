// Messages (/ui/topics/<t>/messages): browse a topic's records from a position in the query
// string (partition, offset = number|earliest|latest, timestamp = ms, group = a group's
// committed offsets), 100 records per shown partition merged by timestamp; a text filter over
// what is shown; older/newer paging; a live tail (one follow=true stream per shown
// partition); and a form that produces a record.
//
// Values the server validates (an offset, a partition) go to it as typed: its 400 is the
// message the user sees.

import { get, send, stream } from "../api.js";
import { h, errorBox, fmtTime, link, prettyValue } from "../dom.js";
import { keyValueLines, seg } from "../forms.js";

const PAGE_RECORDS = 100;
// Chrome opens at most 6 connections per node (HTTP/1.1) and a follow stream holds one for
// as long as it is open: more streams than this would starve the page's own requests.
const LIVE_STREAMS_MAX = 4;
// Partitions whose starting offsets or records are asked for at once.
const PARALLEL_MAX = 6;
const RETRY_MS = 1000;

async function inBatches(items, fn) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  }
  await Promise.all(Array.from({ length: Math.min(PARALLEL_MAX, items.length) }, worker));
  return results;
}

// The position the query string asks for, and which of its parts is used.
function positionOf(query) {
  if (query.has("group")) return { kind: "group", group: query.get("group") };
  if (query.has("timestamp")) return { kind: "timestamp", timestamp: query.get("timestamp") };
  if (query.has("offset")) return { kind: "offset", offset: query.get("offset") };
  return { kind: "offset", offset: "earliest" };
}

function toMs(datetimeLocal) {
  const ms = new Date(datetimeLocal).getTime();
  return Number.isNaN(ms) ? "" : String(ms);
}

function toDatetimeLocal(ms) {
  const d = new Date(Number(ms));
  if (!/^-?\d+$/.test(String(ms)) || Number.isNaN(d.getTime())) return "";
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function headerText(headers) {
  return (headers || []).map(([name, value]) => `${name}: ${value === null ? "null" : typeof value === "string" ? value : JSON.stringify(value)}`).join("\n");
}

function searchable(record) {
  const part = (v) => (v === null || v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v));
  return [part(record.key), part(record.key_b64), part(record.value), part(record.value_b64), headerText(record.headers)].join("\n").toLowerCase();
}

function keyCell(record) {
  if ("key_b64" in record) return prettyValue(record.key_b64, { b64: true });
  if (record.key === null || record.key === undefined) return h("span", { class: "muted", text: "null" });
  return typeof record.key === "string" ? h("span", { class: "mono", text: record.key }) : prettyValue(record.key);
}

function valueCell(record) {
  if ("value_b64" in record) return prettyValue(record.value_b64, { b64: true });
  return prettyValue(record.value);
}

function seekForm(ctx, topic, partitionCount, position, chosenPartition) {
  const partition = h("select", { id: "seek-partition", name: "partition" },
    h("option", { value: "", text: "all partitions" }),
    Array.from({ length: partitionCount }, (_, p) => h("option", { value: String(p), text: `partition ${p}` })));
  if (chosenPartition !== null && /^\d+$/.test(chosenPartition) && Number(chosenPartition) < partitionCount) partition.value = chosenPartition;
  const from = h("select", { id: "seek-from", name: "from" },
    ["earliest", "latest", "offset", "timestamp", "group"].map((v) => h("option", { value: v, text: v })));
  const offset = h("input", { id: "seek-offset", name: "offset", placeholder: "offset", size: 10, autocomplete: "off" });
  const timestamp = h("input", { id: "seek-timestamp", name: "timestamp", type: "datetime-local", step: "1" });
  const group = h("input", { id: "seek-group", name: "group", placeholder: "group id", autocomplete: "off" });
  if (position.kind === "group") {
    from.value = "group";
    group.value = position.group;
  } else if (position.kind === "timestamp") {
    from.value = "timestamp";
    timestamp.value = toDatetimeLocal(position.timestamp);
  } else if (position.offset === "earliest" || position.offset === "latest") {
    from.value = position.offset;
  } else {
    from.value = "offset";
    offset.value = position.offset;
  }
  const form = h("form", {
    id: "seek-form",
    class: "inline",
    on: {
      submit: (event) => {
        event.preventDefault();
        const query = new URLSearchParams();
        if (partition.value !== "") query.set("partition", partition.value);
        if (from.value === "offset") query.set("offset", offset.value);
        else if (from.value === "timestamp") query.set("timestamp", toMs(timestamp.value));
        else if (from.value === "group") query.set("group", group.value);
        else query.set("offset", from.value);
        ctx.navigate(`/ui/topics/${seg(topic)}/messages?${query}`);
      },
    },
  },
    h("label", {}, "partition", partition),
    h("label", {}, "from", from),
    h("label", {}, "offset", offset),
    h("label", {}, "time", timestamp),
    h("label", {}, "group", group),
    h("button", { type: "submit", class: "primary", text: "Show" }));
  // Typing into a field picks its kind of position.
  offset.addEventListener("input", () => { from.value = "offset"; });
  timestamp.addEventListener("input", () => { from.value = "timestamp"; });
  group.addEventListener("input", () => { from.value = "group"; });
  return form;
}

function produceForm(topic, partitionCount) {
  const key = h("input", { id: "produce-key", name: "key", placeholder: "no key", autocomplete: "off" });
  const value = h("textarea", { id: "produce-value", name: "value", rows: 3, placeholder: '{"temp_c": 21} or any text' });
  const headers = h("textarea", { id: "produce-headers", name: "headers", rows: 2, placeholder: "source=station-7" });
  const partition = h("select", { id: "produce-partition", name: "partition" },
    h("option", { value: "", text: "any (by key)" }),
    Array.from({ length: partitionCount }, (_, p) => h("option", { value: String(p), text: String(p) })));
  const result = h("div");
  const button = h("button", { type: "submit", class: "primary", text: "Produce" });
  const form = h("form", {
    id: "produce-form",
    class: "inline",
    on: {
      submit: async (event) => {
        event.preventDefault();
        result.replaceChildren();
        const record = { value: value.value };
        if (key.value !== "") record.key = key.value;
        if (partition.value !== "") record.partition = Number(partition.value);
        try {
          const pairs = keyValueLines(headers.value, "headers line");
          if (pairs.length) record.headers = pairs;
        } catch (err) {
          result.replaceChildren(errorBox(err));
          return;
        }
        button.disabled = true;
        try {
          const answer = await send("POST", `/v1/topics/${seg(topic)}/records`, { records: [record] });
          const stored = (answer.offsets || [])[0];
          result.replaceChildren(h("div", { class: "success", "data-testid": "produce-result" },
            stored ? `Stored in partition ${stored.partition} at offset ${stored.offset}.` : "Sent."));
        } catch (err) {
          result.replaceChildren(errorBox(err));
        } finally {
          button.disabled = false;
        }
      },
    },
  },
    h("label", {}, "key", key),
    h("label", { class: "grow" }, "value", value),
    h("label", { class: "grow" }, "headers (name=value lines)", headers),
    h("label", {}, "partition", partition),
    button);
  return h("div", { class: "panel" }, h("h2", { text: "Produce a record" }), form, result);
}

export async function render(root, ctx) {
  const topic = ctx.params[0];
  const enc = seg(topic);
  ctx.setTitle(`${topic} messages`);
  root.append(
    h("h1", {}, "Messages of ", link(`/ui/topics/${enc}`, topic)),
  );
  const status = h("div");
  root.append(status);

  let description;
  try {
    description = await get(`/v1/topics/${enc}`, { signal: ctx.signal });
  } catch (err) {
    if (ctx.signal.aborted) return;
    status.replaceChildren(errorBox(err));
    root.dataset.loaded = "true";
    return;
  }
  const partitionCount = description.partition_count;
  const position = positionOf(ctx.query);
  const chosen = ctx.query.get("partition");
  // The partition is passed on as typed: a bad one gets the server's answer for its records.
  const shown = chosen !== null ? [chosen] : Array.from({ length: partitionCount }, (_, p) => String(p));

  const notes = h("div");
  const filter = h("input", { id: "message-filter", type: "search", placeholder: "filter shown records", autocomplete: "off" });
  const liveToggle = h("input", { id: "live-tail", type: "checkbox" });
  const liveState = h("span", { class: "muted", "data-testid": "live-state" });
  const older = h("button", { type: "button", id: "page-older", text: "◀ older" });
  const newer = h("button", { type: "button", id: "page-newer", text: "newer ▶" });
  const count = h("span", { class: "muted", "data-testid": "message-count" });
  const body = h("tbody");
  const emptyRow = h("tr", { class: "empty" }, h("td", { colspan: 6, text: "no records here" }));
  const tableEl = h("table", { class: "messages" },
    h("thead", {}, h("tr", {}, ["partition", "offset", "time", "key", "value", "headers"].map((t) => h("th", { text: t })))),
    body);

  root.append(
    seekForm(ctx, topic, partitionCount, position, chosen),
    h("div", { class: "toolbar" }, filter, older, newer, h("label", {}, liveToggle, " live tail"), liveState, count),
    notes,
    tableEl,
    produceForm(topic, partitionCount),
  );

  // State of each shown partition: where the page starts and where it ends.
  const state = new Map(shown.map((p) => [p, { first: null, next: null, hw: null, start: null, error: null }]));
  const rows = new Map(); // "p-offset" -> {tr, text}
  let filterText = "";

  function applyFilter(entry) {
    entry.tr.hidden = filterText !== "" && !entry.text.includes(filterText);
  }

  function updateCount() {
    const visible = [...rows.values()].filter((r) => !r.tr.hidden).length;
    count.textContent = `${visible} of ${rows.size} records shown`;
    if (rows.size && emptyRow.parentNode) emptyRow.remove();
    if (!rows.size && !emptyRow.parentNode) body.append(emptyRow);
  }

  function rowOf(record) {
    const tr = h("tr", { "data-testid": `message-row-${record.partition}-${record.offset}` },
      h("td", { class: "num", text: String(record.partition) }),
      h("td", { class: "num", text: String(record.offset) }),
      h("td", { class: "nowrap", text: fmtTime(record.timestamp) }),
      h("td", {}, keyCell(record)),
      h("td", { class: "value-cell" }, valueCell(record)),
      h("td", {}, record.headers && record.headers.length ? h("pre", { class: "headers", text: headerText(record.headers) }) : ""));
    return tr;
  }

  // Shows records (sorted by timestamp, then partition and offset); append: after what is shown.
  function show(records, { append = false } = {}) {
    if (!append) {
      rows.clear();
      body.replaceChildren();
    }
    const sorted = [...records].sort((a, b) => a.timestamp - b.timestamp || Number(a.partition) - Number(b.partition) || a.offset - b.offset);
    const fragment = document.createDocumentFragment();
    for (const record of sorted) {
      const key = `${record.partition}-${record.offset}`;
      if (rows.has(key)) continue;
      const entry = { tr: rowOf(record), text: searchable(record) };
      rows.set(key, entry);
      applyFilter(entry);
      fragment.append(entry.tr);
    }
    body.append(fragment);
    updateCount();
  }

  filter.addEventListener("input", () => {
    filterText = filter.value.trim().toLowerCase();
    for (const entry of rows.values()) applyFilter(entry);
    updateCount();
  });

  // Where each partition starts, from the position: a number or earliest/latest as given, a
  // timestamp's first offset, or the group's committed offset (earliest without one).
  async function startOffsets() {
    const messages = [];
    if (position.kind === "offset") {
      for (const p of shown) state.get(p).start = position.offset;
      return messages;
    }
    if (position.kind === "group") {
      const answer = await get(`/v1/groups/${seg(position.group)}/offsets?topic=${enc}`, { signal: ctx.signal });
      const committed = new Map((answer.offsets || []).filter((o) => o.topic === topic).map((o) => [String(o.partition), o.offset]));
      const without = [];
      for (const p of shown) {
        const offset = committed.get(p);
        if (offset === undefined || offset === null) without.push(p);
        state.get(p).start = offset === undefined || offset === null ? "earliest" : String(offset);
      }
      messages.push(`From the committed offsets of group ${position.group}.`);
      if (without.length) messages.push(`Partition${without.length > 1 ? "s" : ""} ${without.join(", ")} ha${without.length > 1 ? "ve" : "s"} no committed offset of group ${position.group}: shown from the earliest.`);
      return messages;
    }
    const answers = await inBatches(shown, (p) =>
      get(`/v1/topics/${enc}/partitions/${encodeURIComponent(p)}/offsets?timestamp=${encodeURIComponent(position.timestamp)}`, { signal: ctx.signal }));
    const none = [];
    shown.forEach((p, i) => {
      const offset = answers[i].offset;
      if (offset === null || offset === undefined) none.push(p);
      state.get(p).start = offset === null || offset === undefined ? "latest" : String(offset);
    });
    messages.push(`From ${fmtTime(Number(position.timestamp))}.`);
    if (none.length) messages.push(`Partition${none.length > 1 ? "s" : ""} ${none.join(", ")}: no record at or after that time.`);
    return messages;
  }

  async function fetchPartition(p, offset, maxRecords = PAGE_RECORDS) {
    return get(`/v1/topics/${enc}/partitions/${encodeURIComponent(p)}/records?offset=${encodeURIComponent(offset)}&format=json&max_records=${maxRecords}`, { signal: ctx.signal });
  }

  // Fetches every shown partition from `from(p)` (an offset, or null to skip it) and shows the
  // records; errors of a partition show next to the others' records.
  async function load(from, { append = false } = {}) {
    const parts = shown.filter((p) => from(p) !== null);
    const answers = await inBatches(parts, async (p) => {
      try {
        return { p, answer: await fetchPartition(p, from(p).offset, from(p).max ?? PAGE_RECORDS) };
      } catch (err) {
        if (ctx.signal.aborted) throw err;
        return { p, err };
      }
    });
    const records = [];
    const errors = [];
    for (const { p, answer, err } of answers) {
      const s = state.get(p);
      if (err) {
        s.error = err;
        errors.push(err);
        continue;
      }
      s.error = null;
      const list = answer.records || [];
      if (!append || s.first === null) s.first = list.length ? list[0].offset : answer.next_offset;
      else if (list.length) s.first = Math.min(s.first, list[0].offset);
      s.next = append && s.next !== null ? Math.max(s.next, answer.next_offset) : answer.next_offset;
      s.hw = answer.high_watermark;
      s.logStart = answer.log_start_offset;
      records.push(...list);
    }
    show(records, { append });
    status.replaceChildren(...errors.map(errorBox));
  }

  // Newer: each partition from where it ended. Older: the PAGE_RECORDS before where it began.
  newer.addEventListener("click", async () => {
    if (shown.length === 1) {
      const s = state.get(shown[0]);
      if (s.next !== null) ctx.navigate(`/ui/topics/${enc}/messages?partition=${encodeURIComponent(shown[0])}&offset=${s.next}`);
      return;
    }
    await load((p) => (state.get(p).next === null ? null : { offset: state.get(p).next })).catch((err) => status.replaceChildren(errorBox(err)));
  });
  older.addEventListener("click", async () => {
    if (shown.length === 1) {
      const s = state.get(shown[0]);
      if (s.first !== null) ctx.navigate(`/ui/topics/${enc}/messages?partition=${encodeURIComponent(shown[0])}&offset=${Math.max(s.logStart ?? 0, s.first - PAGE_RECORDS)}`);
      return;
    }
    await load((p) => {
      const s = state.get(p);
      if (s.first === null || s.first <= (s.logStart ?? 0)) return null;
      const start = Math.max(s.logStart ?? 0, s.first - PAGE_RECORDS);
      return { offset: start, max: s.first - start };
    }).catch((err) => status.replaceChildren(errorBox(err)));
  });

  // Live tail: one stream per shown partition from its high watermark as last fetched (what
  // lies between the page's end and it is for "newer"); a stream that ends (leadership moved)
  // or fails is opened again a second later from after its last record.
  let live = null;
  async function follow(p, signal) {
    let from = state.get(p).hw ?? "latest";
    while (!signal.aborted) {
      try {
        await stream(`/v1/topics/${enc}/partitions/${encodeURIComponent(p)}/records?offset=${encodeURIComponent(from)}&format=json&follow=true`, (item) => {
          if (liveState.textContent !== "following") liveState.textContent = "following";
          if ("heartbeat" in item) return;
          show([item], { append: true });
          from = item.offset + 1;
          const s = state.get(p);
          s.next = Math.max(s.next ?? 0, from);
          s.hw = Math.max(s.hw ?? 0, from);
        }, { signal });
      } catch (err) {
        if (signal.aborted) return;
        liveState.textContent = `partition ${p}: ${err.message}; following again`;
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }
  liveToggle.addEventListener("change", () => {
    if (live) {
      live.abort();
      live = null;
    }
    if (!liveToggle.checked) {
      liveState.textContent = "";
      return;
    }
    if (shown.length > LIVE_STREAMS_MAX) {
      liveToggle.checked = false;
      liveState.textContent = `Live tail follows at most ${LIVE_STREAMS_MAX} partitions at once (the browser holds a connection per stream): choose a partition.`;
      return;
    }
    live = new AbortController();
    const signal = live.signal;
    ctx.signal.addEventListener("abort", () => live && live.abort(), { once: true });
    liveState.textContent = "following";
    for (const p of shown) follow(p, signal);
  });

  try {
    notes.replaceChildren(...(await startOffsets()).map((text) => h("p", { class: "notice", text })));
    await load((p) => ({ offset: state.get(p).start }));
  } catch (err) {
    if (ctx.signal.aborted) return;
    status.replaceChildren(errorBox(err));
  }
  updateCount();
  root.dataset.loaded = "true";
}
