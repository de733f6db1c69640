// Overview (/ui/): the cluster at a glance, from GET /v1/cluster/overview once a second
// (one request for every figure of the page).

import { get } from "../api.js";
import { h, liveTable, errorBox, fmtNumber, fmtTime, link } from "../dom.js";
import { every } from "../live.js";

function figure(label, testid) {
  const value = h("span", { class: "value", "data-testid": testid, text: "–" });
  return { el: h("li", {}, h("span", { class: "label", text: label }), value), value };
}

function setText(el, text) {
  const value = text === null || text === undefined ? "–" : String(text);
  if (el.textContent !== value) el.textContent = value;
}

function countClass(el, n) {
  el.classList.toggle("bad", typeof n === "number" && n > 0);
}

export async function render(root, ctx) {
  ctx.setTitle("Overview");
  const figures = {
    cluster: figure("cluster id", "cluster-id"),
    controller: figure("controller", "controller-id"),
    topics: figure("topics", "count-topics"),
    partitions: figure("partitions", "count-partitions"),
    underReplicated: figure("under-replicated", "count-under-replicated"),
    underMinIsr: figure("under min ISR", "count-under-min-isr"),
    offline: figure("offline", "count-offline"),
  };
  const status = h("div");
  const brokers = liveTable([
    { title: "broker", cell: (b) => String(b.id), class: "num" },
    { title: "url", cell: (b) => b.url },
    { title: "state", cell: (b) => h("span", { class: b.alive ? "tag ok" : "tag bad", text: b.alive ? "alive" : "fenced" }) },
    { title: "replicas", cell: (b) => fmtNumber(b.replicas), class: "num" },
    { title: "leaders", cell: (b) => fmtNumber(b.leaders), class: "num" },
    { title: "", cell: (b) => (b.alive ? link(`/ui/disk?broker=${b.id}`, "disk") : "") },
  ], {
    empty: "no broker registered",
    rowKey: (b) => b.id,
    rowAttrs: (b) => ({ "data-testid": `broker-row-${b.id}`, "data-alive": String(Boolean(b.alive)) }),
  });
  const quorumLeader = h("span", { "data-testid": "quorum-leader", text: "–" });
  const quorumTerm = h("span", { "data-testid": "quorum-term", text: "–" });
  const quorumCommit = h("span", { "data-testid": "quorum-commit-index", text: "–" });
  const quorumSource = h("span", { class: "muted" });
  const voters = liveTable([
    { title: "voter", cell: (v) => String(v.id), class: "num" },
    { title: "status", cell: (v) => v.status },
    { title: "connected", cell: (v) => (v.connected === null || v.connected === undefined ? "–" : v.connected ? "yes" : "no") },
    { title: "log end", cell: (v) => fmtNumber(v.log_end_offset), class: "num", testid: (v) => `voter-log-end-${v.id}` },
    { title: "lag", cell: (v) => fmtNumber(v.lag), class: "num", testid: (v) => `voter-lag-${v.id}` },
    { title: "last fetch", cell: (v) => fmtTime(v.last_fetch_ms) },
    { title: "last caught up", cell: (v) => fmtTime(v.last_caught_up_ms) },
  ], { empty: "no voter known", rowKey: (v) => v.id, rowAttrs: (v) => ({ "data-testid": `voter-row-${v.id}` }) });

  root.append(
    h("h1", { text: "Cluster" }),
    status,
    h("ul", { class: "figures" }, Object.values(figures).map((f) => f.el)),
    h("h2", { text: "Brokers" }),
    brokers.el,
    h("h2", { text: "Metadata quorum" }),
    h("p", {}, "leader ", quorumLeader, ", term ", quorumTerm, ", commit index ", quorumCommit, " ", quorumSource),
    voters.el,
  );

  await every(1000, async () => {
    let view;
    try {
      view = await get("/v1/cluster/overview", { signal: ctx.signal });
    } catch (err) {
      if (ctx.signal.aborted) return;
      status.replaceChildren(errorBox(err));
      return;
    }
    status.replaceChildren();
    setText(figures.cluster.value, view.cluster_id);
    setText(figures.controller.value, view.controller_id);
    setText(figures.topics.value, fmtNumber(view.topics));
    const parts = view.partitions || {};
    setText(figures.partitions.value, fmtNumber(parts.total));
    setText(figures.underReplicated.value, fmtNumber(parts.under_replicated));
    setText(figures.underMinIsr.value, fmtNumber(parts.under_min_isr));
    setText(figures.offline.value, fmtNumber(parts.offline));
    countClass(figures.underReplicated.value, parts.under_replicated);
    countClass(figures.underMinIsr.value, parts.under_min_isr);
    countClass(figures.offline.value, parts.offline);
    brokers.update(view.brokers || []);
    const quorum = view.quorum || {};
    setText(quorumLeader, quorum.leader_id);
    setText(quorumTerm, quorum.term);
    setText(quorumCommit, quorum.commit_index);
    // When the controller could not be asked the view is this node's own: say why.
    const source = quorum.source_node !== undefined ? `(as node ${quorum.source_node} sees it)` : "";
    setText(quorumSource, quorum.source_error ? `${source}: the controller could not be asked: ${quorum.source_error}` : source);
    voters.update(quorum.voters || []);
    root.dataset.loaded = "true";
  }, ctx.signal);
}
