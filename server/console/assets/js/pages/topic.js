// Topic page (/ui/topics/<t>): each partition's leader, leader epoch, replicas, ISR, log
// start, high watermark and every replica's log end, from GET /v1/topics/<t>/replicas once a
// second (rows updated in place, so a 1,000-partition topic stays cheap); the configs with
// defaults marked; and the topic's actions (add partitions, alter configs, delete).

import { get, send } from "../api.js";
import { h, liveTable, errorBox, fmtNumber, fmtBytes, link, confirmDialog } from "../dom.js";
import { every } from "../live.js";
import { keyValueLines, numberOrRaw, seg } from "../forms.js";

function brokers(list) {
  return (list || []).join(", ");
}

// Each replica's log end (and size), marked when out of the ISR or unreachable.
function replicaStates(p) {
  const states = p.replica_states || [];
  if (!states.length) return "–";
  return h("span", { class: "replicas" }, states.map((r) => {
    const cls = r.error ? "tag bad" : r.in_isr ? "tag ok" : "tag warn";
    const title = r.error ? r.error : `size ${fmtBytes(r.size)}, high watermark ${fmtNumber(r.high_watermark)}`;
    return h("span", { class: cls, title, "data-testid": `log-end-${p.partition}-${r.broker}`, text: `${r.broker}: ${fmtNumber(r.log_end_offset)}` });
  }));
}

function actionsPanel(topic, ctx, afterChange) {
  const count = h("input", { id: "add-partitions-count", name: "count", inputmode: "numeric", size: 6, required: true });
  const addResult = h("div");
  const addForm = h("form", {
    id: "add-partitions-form",
    class: "inline",
    on: {
      submit: async (event) => {
        event.preventDefault();
        addResult.replaceChildren();
        try {
          const answer = await send("POST", `/v1/topics/${seg(topic)}/partitions`, { count: numberOrRaw(count.value) ?? "" });
          addResult.replaceChildren(h("div", { class: "success", text: `${topic} now has ${answer.partition_count} partitions.` }));
          addForm.reset();
        } catch (err) {
          addResult.replaceChildren(errorBox(err));
        }
      },
    },
  }, h("label", {}, "new partition count", count), h("button", { type: "submit", text: "Add partitions" }));

  const set = h("textarea", { id: "alter-configs-set", name: "set", rows: 2, placeholder: "retention.ms=86400000" });
  const remove = h("input", { id: "alter-configs-remove", name: "remove", placeholder: "retention.ms", autocomplete: "off" });
  const alterResult = h("div");
  const alterForm = h("form", {
    id: "alter-configs-form",
    class: "inline",
    on: {
      submit: async (event) => {
        event.preventDefault();
        alterResult.replaceChildren();
        let configs;
        try {
          configs = Object.fromEntries(keyValueLines(set.value, "set line"));
          for (const name of remove.value.split(/[\s,]+/).filter(Boolean)) configs[name] = null;
          if (!Object.keys(configs).length) throw Object.assign(new Error("nothing to change: give key=value lines to set or names to remove"), { code: "FORM_INPUT" });
        } catch (err) {
          alterResult.replaceChildren(errorBox(err));
          return;
        }
        try {
          const answer = await send("PUT", `/v1/topics/${seg(topic)}/configs`, { configs });
          const overrides = Object.entries(answer.configs || {}).map(([k, v]) => `${k}=${v}`).join(", ");
          alterResult.replaceChildren(h("div", { class: "success", text: `Saved. Overrides now: ${overrides || "none"}.` }));
          alterForm.reset();
          afterChange();
        } catch (err) {
          alterResult.replaceChildren(errorBox(err));
        }
      },
    },
  },
    h("label", { class: "grow" }, "set (key=value lines)", set),
    h("label", {}, "remove (names)", remove),
    h("button", { type: "submit", text: "Alter configs" }));

  const deleteResult = h("div");
  const deleteButton = h("button", {
    type: "button",
    id: "delete-topic",
    class: "danger",
    text: "Delete topic",
    on: {
      click: async () => {
        if (!(await confirmDialog(`Delete topic ${topic} and all its records? This cannot be undone.`))) return;
        try {
          await send("DELETE", `/v1/topics/${seg(topic)}`);
          ctx.navigate("/ui/topics");
        } catch (err) {
          deleteResult.replaceChildren(errorBox(err));
        }
      },
    },
  });
  return h("div", { class: "panel" },
    h("h2", { text: "Actions" }), addForm, addResult, alterForm, alterResult, deleteButton, deleteResult);
}

export async function render(root, ctx) {
  const topic = ctx.params[0];
  ctx.setTitle(topic);
  const status = h("div");
  const summary = h("p", { class: "muted" });
  const partitions = liveTable([
    { title: "partition", cell: (p) => String(p.partition), class: "num" },
    { title: "leader", cell: (p) => (p.leader === null ? h("span", { class: "tag bad", text: "none" }) : String(p.leader)), class: "num", testid: (p) => `leader-${p.partition}` },
    { title: "epoch", cell: (p) => fmtNumber(p.leader_epoch), class: "num" },
    { title: "replicas", cell: (p) => brokers(p.replicas) },
    { title: "ISR", cell: (p) => brokers(p.isr), testid: (p) => `isr-${p.partition}` },
    { title: "log start", cell: (p) => fmtNumber(p.log_start_offset), class: "num" },
    { title: "high watermark", cell: (p) => fmtNumber(p.high_watermark), class: "num", testid: (p) => `hw-${p.partition}` },
    { title: "log end per replica", cell: replicaStates },
    { title: "", cell: (p) => h("span", { class: "links" },
      link(`/ui/topics/${seg(topic)}/messages?partition=${p.partition}&offset=earliest`, "messages"), " ",
      p.leader === null ? null : link(`/ui/disk?broker=${p.leader}&topic=${seg(topic)}&partition=${p.partition}`, "disk")) },
  ], {
    empty: "no partition",
    rowKey: (p) => p.partition,
    rowAttrs: (p) => ({ "data-testid": `partition-row-${p.partition}`, class: p.leader === null || (p.isr || []).length < (p.replicas || []).length ? "bad" : null }),
  });

  const configsSlot = h("div");
  async function loadConfigs() {
    try {
      const answer = await get(`/v1/topics/${seg(topic)}/configs/entries`, { signal: ctx.signal });
      const rows = [...(answer.configs || [])].sort((a, b) => a.name.localeCompare(b.name));
      const t = liveTable([
        { title: "config", cell: (c) => c.name, class: "mono" },
        { title: "value", cell: (c) => (c.sensitive ? "(sensitive)" : c.value ?? "–"), class: "mono" },
        { title: "source", cell: (c) => (c.source === "DYNAMIC_TOPIC_CONFIG" ? h("span", { class: "tag ok", text: "set on the topic" }) : h("span", { class: "tag", text: c.source === "DEFAULT_CONFIG" ? "default" : "broker default" })) },
      ], { rowKey: (c) => c.name, rowAttrs: (c) => ({ "data-testid": `config-row-${c.name}`, "data-source": c.source }) });
      t.update(rows);
      configsSlot.replaceChildren(t.el);
    } catch (err) {
      if (!ctx.signal.aborted) configsSlot.replaceChildren(errorBox(err));
    }
  }

  const enc = seg(topic);
  root.append(
    h("h1", {}, "Topic ", h("span", { class: "mono", text: topic })),
    h("p", { class: "toolbar" },
      link(`/ui/topics/${enc}/messages`, "Messages"),
      link(`/ui/replication?topic=${enc}`, "Replication"),
      link(`/ui/disk?topic=${enc}`, "Disk"),
      link("/ui/topics", "All topics")),
    status,
    summary,
    h("h2", { text: "Partitions" }),
    partitions.el,
  );
  const rest = [h("h2", { text: "Configs" }), configsSlot, actionsPanel(topic, ctx, loadConfigs)];
  let restShown = false;

  // The topic's own loop stops on a 404 (it does not exist, or was deleted): asking again
  // every second would only repeat the same answer.
  const loop = new AbortController();
  ctx.signal.addEventListener("abort", () => loop.abort(), { once: true });
  await every(1000, async () => {
    try {
      const answer = await get(`/v1/topics/${enc}/replicas`, { signal: ctx.signal });
      status.replaceChildren();
      const list = answer.partitions || [];
      const under = list.filter((p) => (p.isr || []).length < (p.replicas || []).length).length;
      const offline = list.filter((p) => p.leader === null).length;
      summary.textContent = `${list.length} partitions, topic id ${answer.topic_id ?? "–"}, ${under} under-replicated, ${offline} offline`;
      partitions.update(list);
      if (!restShown) {
        restShown = true;
        root.append(...rest);
        loadConfigs();
      }
      root.dataset.loaded = "true";
    } catch (err) {
      if (ctx.signal.aborted) return;
      status.replaceChildren(errorBox(err));
      root.dataset.loaded = "true";
      if (err.status === 404) loop.abort();
    }
  }, loop.signal);
}
