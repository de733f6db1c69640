// Topics (/ui/topics): every topic with its partitions, replication factor, under-replicated
// and offline counts, records, size on disk and the groups reading it with their lag, from
// GET /v1/topics?detail=true once a second; and the form that creates a topic.

import { get, send } from "../api.js";
import { h, liveTable, errorBox, fmtBytes, fmtNumber, link } from "../dom.js";
import { every } from "../live.js";
import { keyValueLines, numberOrRaw, seg } from "../forms.js";

function groupsCell(topic) {
  const groups = topic.groups || [];
  if (!groups.length) return h("span", { class: "muted", text: "–" });
  return h("span", { class: "groups" }, groups.map((g, i) => [
    i ? ", " : null,
    link(`/ui/groups/${seg(g.group)}`, g.group),
    h("span", { class: "muted", text: ` (lag ${fmtNumber(g.lag)})` }),
  ]));
}

function countCell(n) {
  if (n === null || n === undefined) return "–";
  return n > 0 ? h("span", { class: "tag bad", text: fmtNumber(n) }) : "0";
}

function createForm() {
  const name = h("input", { id: "create-topic-name", name: "name", required: true, placeholder: "weather", autocomplete: "off" });
  const partitions = h("input", { id: "create-topic-partitions", name: "partitions", placeholder: "default", inputmode: "numeric", size: 8 });
  const rf = h("input", { id: "create-topic-rf", name: "replication_factor", placeholder: "default", inputmode: "numeric", size: 8 });
  const configs = h("textarea", { id: "create-topic-configs", name: "configs", placeholder: "retention.ms=86400000", rows: 2 });
  const result = h("div", { class: "form-result" });
  const button = h("button", { type: "submit", class: "primary", text: "Create topic" });
  const form = h("form", {
    id: "create-topic-form",
    class: "inline",
    on: {
      submit: async (event) => {
        event.preventDefault();
        result.replaceChildren();
        let body;
        try {
          body = { name: name.value };
          const p = numberOrRaw(partitions.value);
          const r = numberOrRaw(rf.value);
          if (p !== undefined) body.partitions = p;
          if (r !== undefined) body.replication_factor = r;
          const pairs = keyValueLines(configs.value, "configs line");
          if (pairs.length) body.configs = Object.fromEntries(pairs);
        } catch (err) {
          result.replaceChildren(errorBox(err));
          return;
        }
        button.disabled = true;
        try {
          const created = await send("POST", "/v1/topics", body);
          result.replaceChildren(h("div", { class: "success", "data-testid": "create-topic-result" },
            "Created ", link(`/ui/topics/${seg(created.name)}`, created.name),
            ` with ${created.partition_count} partitions, replication factor ${created.replication_factor}.`));
          form.reset();
        } catch (err) {
          result.replaceChildren(errorBox(err));
        } finally {
          button.disabled = false;
        }
      },
    },
  },
    h("label", {}, "name", name),
    h("label", {}, "partitions", partitions),
    h("label", {}, "replication factor", rf),
    h("label", { class: "grow" }, "configs (key=value lines)", configs),
    button,
  );
  return h("div", { class: "panel" }, h("h2", { text: "Create a topic" }), form, result);
}

export async function render(root, ctx) {
  ctx.setTitle("Topics");
  const status = h("div");
  const topics = liveTable([
    { title: "topic", cell: (t) => link(`/ui/topics/${seg(t.name)}`, t.name) },
    { title: "partitions", cell: (t) => fmtNumber(t.partition_count), class: "num" },
    { title: "RF", cell: (t) => fmtNumber(t.replication_factor), class: "num" },
    { title: "under-replicated", cell: (t) => countCell(t.under_replicated), class: "num", testid: (t) => `under-replicated-${t.name}` },
    { title: "offline", cell: (t) => countCell(t.offline), class: "num" },
    { title: "records", cell: (t) => fmtNumber(t.records), class: "num", testid: (t) => `records-${t.name}` },
    { title: "size", cell: (t) => fmtBytes(t.size_bytes), class: "num" },
    { title: "groups (lag)", cell: groupsCell },
  ], { empty: "no topic yet", rowKey: (t) => t.name, rowAttrs: (t) => ({ "data-testid": `topic-row-${t.name}` }) });

  root.append(h("h1", { text: "Topics" }), status, topics.el, createForm());

  await every(1000, async () => {
    try {
      const answer = await get("/v1/topics?detail=true", { signal: ctx.signal });
      status.replaceChildren();
      topics.update(answer.topics || []);
      root.dataset.loaded = "true";
    } catch (err) {
      if (!ctx.signal.aborted) status.replaceChildren(errorBox(err));
    }
  }, ctx.signal);
}
