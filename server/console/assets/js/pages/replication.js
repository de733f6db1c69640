// The replication view (/ui/replication?topic=T): per partition a bar per replica (its log end
// against the partition's largest, the high watermark as a marker line, ISR members and the
// leader marked, an unreachable replica shown down), and a timeline of the metadata log's
// events (leader elections, ISR changes, fences, quorum leaders), newest first.
//
// One request a second at most for the whole page: the live loop alternates between
// GET /v1/topics/<t>/replicas and GET /v1/cluster/events?after=<cursor> (without a topic, only
// the events). Rows and bars are updated in place, so a user watching a node die and come
// back sees the bars move rather than the page flicker.

import { get } from "../api.js";
import { errorBox, fmtBytes, fmtNumber, fmtTime, h } from "../dom.js";
import { every } from "../live.js";

const EVENTS_FIRST = 200; // events shown when the page opens
const EVENTS_LIMIT = 1000; // the endpoint's largest page
const EVENTS_KEPT = 500; // timeline rows kept on screen

const EVENT_LABELS = {
  quorum_leader: "quorum leader",
  broker_registered: "broker registered",
  broker_fenced: "broker fenced",
  broker_unfenced: "broker unfenced",
  broker_unregistered: "broker unregistered",
  topic_created: "topic created",
  topic_deleted: "topic deleted",
  partitions_added: "partitions added",
  leader_change: "leader change",
  isr_shrink: "ISR shrink",
  isr_expand: "ISR expand",
  replicas_change: "replicas change",
};

function isNumber(v) {
  return typeof v === "number" && Number.isFinite(v);
}

function setFlag(el, name, on) {
  const text = on ? "true" : "false";
  if (el.getAttribute(name) !== text) el.setAttribute(name, text);
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** Renders the page into root and keeps it live until ctx.signal aborts. */
export async function render(root, ctx) {
  const topic = ctx.query.get("topic") || null;
  ctx.setTitle(topic ? `Replication of ${topic}` : "Replication");

  const select = h("select", { id: "replication-topic", name: "topic" },
    h("option", { value: "", text: "choose a topic" }));
  select.addEventListener("change", () => {
    ctx.navigate(select.value ? `/ui/replication?topic=${encodeURIComponent(select.value)}` : "/ui/replication");
  });
  const topicOnly = h("input", { type: "checkbox", id: "timeline-topic-only", checked: topic !== null, disabled: topic === null });
  const barsStatus = h("div", { id: "replicas-status" });
  const updated = h("p", { class: "muted", id: "replicas-updated" });
  const rowsBody = h("tbody");
  const barsTable = h("table", { id: "replicas", class: "replicas" },
    h("thead", {}, h("tr", {},
      ["Partition", "Leader", "Epoch", "ISR", "High watermark", "Replicas: log end against the largest, | = high watermark"]
        .map((title) => h("th", { text: title })))),
    rowsBody);
  const timelineStatus = h("div", { id: "timeline-status" });
  const timeline = h("ol", { id: "timeline", class: "timeline" });

  root.replaceChildren(
    h("h1", { text: "Replication" }),
    h("div", { class: "toolbar" },
      h("label", { for: "replication-topic" }, "Topic ", select),
      h("label", { for: "timeline-topic-only" }, topicOnly, " timeline: only this topic's events and the cluster's")),
    ...(topic ? [barsStatus, updated, h("div", { class: "replicas-wrap" }, barsTable), legend()] : [barsStatus, h("p", { class: "muted", text: "Choose a topic to watch its replicas; the timeline below shows the whole cluster." })]),
    h("h2", { text: "Timeline" }),
    timelineStatus,
    timeline,
  );

  // The topic list for the selector: once, not live.
  get("/v1/topics", { signal: ctx.signal }).then((answer) => {
    const names = (answer.topics || []).map((t) => t.name);
    if (topic && !names.includes(topic)) names.unshift(topic);
    select.append(...names.map((name) => h("option", { value: name, text: name })));
    select.value = topic || "";
  }).catch((err) => {
    if (!ctx.signal.aborted) barsStatus.append(errorBox(err));
  });

  // -- the bars ----------------------------------------------------------------------------------

  const rows = new Map(); // partition -> {tr, cells, replicasKey, bars: Map broker -> parts}

  function replicaBar(p, broker) {
    const fill = h("div", { class: "fill" });
    const hw = h("div", { class: "hw-marker", title: "high watermark" });
    const track = h("div", { class: "track" }, fill, hw);
    const label = h("span", { class: "replica-label" });
    const figures = h("span", { class: "replica-figures" });
    const bar = h("div", { class: "bar", id: `bar-${p}-${broker}`, "data-broker": String(broker) }, label, track, figures);
    return { bar, fill, hw, label, figures };
  }

  function newRow(p) {
    const cells = {
      partition: h("td", { class: "num", text: String(p) }),
      leader: h("td", { class: "num", "data-testid": `leader-${p}` }),
      epoch: h("td", { class: "num", "data-testid": `epoch-${p}` }),
      isr: h("td", { "data-testid": `isr-${p}` }),
      hw: h("td", { class: "num", "data-testid": `hw-${p}` }),
      bars: h("td", { class: "bars" }),
    };
    const tr = h("tr", { id: `partition-row-${p}` }, Object.values(cells));
    return { tr, cells, replicasKey: null, bars: new Map() };
  }

  function drawPartition(row, part) {
    const p = part.partition;
    setText(row.cells.leader, part.leader === null || part.leader === undefined ? "none" : String(part.leader));
    row.tr.classList.toggle("bad", part.leader === null || part.leader === undefined);
    setText(row.cells.epoch, fmtNumber(part.leader_epoch));
    setText(row.cells.isr, (part.isr || []).join(", "));
    row.tr.classList.toggle("shrunk", (part.isr || []).length < (part.replicas || []).length);
    setText(row.cells.hw, fmtNumber(part.high_watermark));

    const states = part.replica_states || [];
    const key = states.map((s) => s.broker).join(",");
    if (row.replicasKey !== key) {
      // A reassignment (or the first read): the replica set changed, build its bars anew.
      row.bars = new Map(states.map((s) => [s.broker, replicaBar(p, s.broker)]));
      row.cells.bars.replaceChildren(...[...row.bars.values()].map((b) => b.bar));
      row.replicasKey = key;
    }
    // Lengths run from the log start to the largest log end (or the high watermark) of the
    // partition: what matters is how far each replica is from the others.
    const start = isNumber(part.log_start_offset) ? part.log_start_offset : 0;
    const ends = states.map((s) => s.log_end_offset).filter(isNumber);
    if (isNumber(part.high_watermark)) ends.push(part.high_watermark);
    const top = ends.length ? Math.max(...ends) : start;
    const span = top - start;
    // Every replica at the log start (an empty log): nothing to draw.
    const share = (offset) => (span > 0 ? Math.min(100, Math.max(0, ((offset - start) / span) * 100)) : 0);
    for (const s of states) {
      const b = row.bars.get(s.broker);
      const leader = s.broker === part.leader;
      const down = Boolean(s.error) || !isNumber(s.log_end_offset);
      setFlag(b.bar, "data-leader", leader);
      setFlag(b.bar, "data-in-isr", Boolean(s.in_isr));
      setFlag(b.bar, "data-down", down);
      setFlag(b.bar, "data-offline", s.offline === true);
      const leo = isNumber(s.log_end_offset) ? String(s.log_end_offset) : "";
      if (b.bar.getAttribute("data-leo") !== leo) b.bar.setAttribute("data-leo", leo);
      setText(b.label, `broker ${s.broker}${leader ? " · leader" : ""}${s.in_isr ? " · ISR" : ""}`);
      b.bar.title = s.error ? `broker ${s.broker}: ${s.error}` : `broker ${s.broker}`;
      if (down) {
        b.fill.style.width = "0%";
        b.hw.hidden = true;
        setText(b.figures, s.error ? `down: ${s.error}` : "down");
      } else {
        // CSSOM, not a style attribute: the Content-Security-Policy allows this one.
        b.fill.style.width = `${share(s.log_end_offset).toFixed(2)}%`;
        const hwShown = isNumber(part.high_watermark);
        b.hw.hidden = !hwShown;
        if (hwShown) b.hw.style.left = `${share(part.high_watermark).toFixed(2)}%`;
        const lag = isNumber(part.high_watermark) ? part.high_watermark - s.log_end_offset : null;
        setText(b.figures, `log end ${fmtNumber(s.log_end_offset)}${lag !== null && lag > 0 ? ` (${fmtNumber(lag)} below HW)` : ""} · ${fmtBytes(s.size)}${s.offline ? " · OFFLINE" : ""}`);
      }
    }
  }

  function drawReplicas(answer) {
    const parts = (answer.partitions || []).slice().sort((a, b) => a.partition - b.partition);
    const seen = new Set();
    let previous = null;
    for (const part of parts) {
      seen.add(part.partition);
      let row = rows.get(part.partition);
      if (!row) {
        row = newRow(part.partition);
        rows.set(part.partition, row);
      }
      drawPartition(row, part);
      const expected = previous ? previous.nextSibling : rowsBody.firstChild;
      if (row.tr !== expected) rowsBody.insertBefore(row.tr, expected);
      previous = row.tr;
    }
    for (const [p, row] of rows) {
      if (!seen.has(p)) {
        row.tr.remove();
        rows.delete(p);
      }
    }
    const down = parts.reduce((n, part) => n + (part.replica_states || []).filter((s) => s.error).length, 0);
    const shrunk = parts.filter((part) => (part.isr || []).length < (part.replicas || []).length).length;
    setText(updated, `${parts.length} partition${parts.length === 1 ? "" : "s"}, ${shrunk} with a shrunk ISR, ${down} replica${down === 1 ? "" : "s"} unreachable · updated ${fmtTime(Date.now())}`);
  }

  // -- the timeline ------------------------------------------------------------------------------

  let cursor = null; // the last metadata index read; null before the first read

  function shown(li) {
    return !(topicOnly.checked && li.dataset.topic !== undefined && li.dataset.topic !== topic);
  }

  function eventRow(ev) {
    const li = h("li", {
      class: "event",
      "data-type": ev.type,
      "data-index": String(ev.index),
      "data-topic": ev.topic === undefined ? null : ev.topic,
      "data-partition": ev.partition === undefined ? null : String(ev.partition),
    },
    h("time", { class: "event-time", text: fmtTime(ev.time_ms) }),
    h("span", { class: `tag event-type type-${ev.type}`, text: EVENT_LABELS[ev.type] || ev.type }),
    h("span", { class: "event-text", text: ev.text }),
    h("span", { class: "event-index muted", text: `#${ev.index}` }));
    li.hidden = !shown(li);
    return li;
  }

  function drawEvents(answer) {
    const events = answer.events || [];
    // Oldest first in the answer, newest first on screen.
    const fragment = document.createDocumentFragment();
    for (let i = events.length - 1; i >= 0; i -= 1) fragment.append(eventRow(events[i]));
    timeline.prepend(fragment);
    while (timeline.childElementCount > EVENTS_KEPT) timeline.lastElementChild.remove();
    if (!timeline.childElementCount) {
      timelineStatus.replaceChildren(h("p", { class: "muted", id: "timeline-empty", text: "No events yet." }));
    } else {
      timelineStatus.replaceChildren();
    }
  }

  topicOnly.addEventListener("change", () => {
    for (const li of timeline.children) li.hidden = !shown(li);
  });

  async function readEvents() {
    const query = cursor === null ? `limit=${EVENTS_FIRST}` : `after=${cursor}&limit=${EVENTS_LIMIT}`;
    const limit = cursor === null ? EVENTS_FIRST : EVENTS_LIMIT;
    try {
      const answer = await get(`/v1/cluster/events?${query}`, { signal: ctx.signal });
      drawEvents(answer);
      const events = answer.events || [];
      // A full page may have more behind it: continue after its last event, not at the end.
      if (events.length >= limit) cursor = events[events.length - 1].index;
      else if (isNumber(answer.applied_index)) cursor = Math.max(cursor ?? 0, answer.applied_index);
      else if (events.length) cursor = events[events.length - 1].index;
      if (!topic) root.dataset.loaded = "true";
    } catch (err) {
      if (!ctx.signal.aborted) timelineStatus.replaceChildren(errorBox(err));
    }
  }

  async function readReplicas() {
    try {
      const answer = await get(`/v1/topics/${encodeURIComponent(topic)}/replicas`, { signal: ctx.signal });
      drawReplicas(answer);
      barsStatus.replaceChildren();
      barsTable.classList.remove("stale");
      root.dataset.loaded = "true";
    } catch (err) {
      if (ctx.signal.aborted) return;
      barsTable.classList.add("stale");
      barsStatus.replaceChildren(errorBox(err));
    }
  }

  let turn = 0;
  every(1000, async () => {
    turn += 1;
    if (topic && turn % 2 === 1) await readReplicas();
    else await readEvents();
  }, ctx.signal);
}

function legend() {
  return h("p", { class: "legend muted" },
    h("span", { class: "swatch leader" }), " leader ",
    h("span", { class: "swatch isr" }), " in the ISR ",
    h("span", { class: "swatch out" }), " out of the ISR ",
    h("span", { class: "swatch down" }), " down ",
    h("span", { class: "swatch hw" }), " high watermark");
}
