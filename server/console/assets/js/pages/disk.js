// The disk view (/ui/disk?broker=B&topic=T&partition=P&file=NAME): the files of one replica
// on one node (its partition directory in kraft-combined-logs, and the log directory's own
// files), and a file's contents as kraft-dump-log prints them. Everything chosen lives in the
// query string, so a bookmark reopens the same file with the same options.
//
// Not live: each choice reads once (GET /v1/cluster, /v1/brokers/<b>/log-dirs,
// .../partitions/<t>/<p>/files, .../files/<name>); "reload" reads again.

import { get, getText } from "../api.js";
import { errorBox, fmtBytes, h, link, table } from "../dom.js";

const MAX_BYTES_CHOICES = [
  [65536, "64 KiB"],
  [1048576, "1 MiB"],
  [8388608, "8 MiB"],
  [67108864, "64 MiB"],
];
const MAX_BYTES_DEFAULT = 1048576; // the endpoint's default

const KIND_LABELS = {
  segment: "log segment",
  offset_index: "offset index",
  time_index: "time index",
  leader_epoch_checkpoint: "leader epoch checkpoint",
  partition_metadata: "partition metadata",
  meta_properties: "meta.properties",
};

/** Renders the page into root: the choices, the file table and the chosen file's text. */
export async function render(root, ctx) {
  const q = ctx.query;
  const broker = q.get("broker");
  const topic = q.get("topic");
  const partition = q.get("partition");
  const file = q.get("file");
  const printData = q.get("print_data") === "true";
  const maxBytes = Number(q.get("max_bytes")) || MAX_BYTES_DEFAULT;
  ctx.setTitle(file ? `Disk: ${file}` : "Disk");

  // The page's own URL with some parameters changed (null removes one).
  function pathWith(changes) {
    const next = new URLSearchParams(q);
    for (const [name, value] of Object.entries(changes)) {
      if (value === null || value === undefined || value === "") next.delete(name);
      else next.set(name, String(value));
    }
    const text = next.toString();
    return text ? `/ui/disk?${text}` : "/ui/disk";
  }

  const status = h("div", { class: "page-status" });
  const brokerSelect = h("select", { id: "disk-broker", name: "broker" }, h("option", { value: "", text: "choose a node" }));
  const topicSelect = h("select", { id: "disk-topic", name: "topic", disabled: true }, h("option", { value: "", text: "choose a topic" }));
  const partitionSelect = h("select", { id: "disk-partition", name: "partition", disabled: true }, h("option", { value: "", text: "choose a partition" }));
  brokerSelect.addEventListener("change", () => ctx.navigate(pathWith({ broker: brokerSelect.value, topic: null, partition: null, file: null })));
  topicSelect.addEventListener("change", () => ctx.navigate(pathWith({ topic: topicSelect.value, partition: null, file: null })));
  partitionSelect.addEventListener("change", () => ctx.navigate(pathWith({ partition: partitionSelect.value, file: null })));

  const filesArea = h("div", { id: "disk-files" });
  const fileArea = h("div", { id: "disk-file" });
  root.replaceChildren(
    h("h1", { text: "Disk" }),
    h("p", { class: "muted", text: "A replica's files in the node's log directory, and each file as kraft-dump-log prints it." }),
    h("form", { class: "inline", id: "disk-choice", on: { submit: (e) => e.preventDefault() } },
      h("label", { for: "disk-broker" }, "Node", brokerSelect),
      h("label", { for: "disk-topic" }, "Topic", topicSelect),
      h("label", { for: "disk-partition" }, "Partition", partitionSelect)),
    status,
    filesArea,
    fileArea,
  );

  const signal = ctx.signal;
  try {
    const cluster = await get("/v1/cluster", { signal });
    const brokers = (cluster.brokers || []).slice().sort((a, b) => a.id - b.id);
    brokerSelect.append(...brokers.map((b) => h("option", {
      value: String(b.id), text: `node ${b.id} (${b.url})${b.fenced ? " · fenced" : ""}`,
    })));
    if (broker !== null) {
      if (!brokers.some((b) => String(b.id) === broker)) brokerSelect.append(h("option", { value: broker, text: `node ${broker}` }));
      brokerSelect.value = broker;
    }
    if (broker === null) {
      root.dataset.loaded = "true";
      return;
    }

    // The replicas in this node's log directories: only those can be chosen.
    const dirs = await get(`/v1/brokers/${encodeURIComponent(broker)}/log-dirs`, { signal });
    const replicas = (dirs.log_dirs || []).flatMap((d) => d.partitions || []);
    const topics = [...new Set(replicas.map((r) => r.topic))].sort();
    if (topic !== null && !topics.includes(topic)) topics.unshift(topic);
    topicSelect.append(...topics.map((t) => h("option", { value: t, text: t })));
    topicSelect.disabled = false;
    if (topic !== null) topicSelect.value = topic;
    if (!replicas.length) status.append(h("p", { class: "notice", text: `Node ${broker} holds no replica.` }));
    if (topic === null) {
      root.dataset.loaded = "true";
      return;
    }
    const parts = replicas.filter((r) => r.topic === topic).map((r) => r.partition).sort((a, b) => a - b);
    if (partition !== null && !parts.includes(Number(partition))) parts.unshift(partition);
    partitionSelect.append(...parts.map((p) => h("option", { value: String(p), text: String(p) })));
    partitionSelect.disabled = false;
    if (partition !== null) partitionSelect.value = String(partition);
    if (partition === null) {
      root.dataset.loaded = "true";
      return;
    }

    const base = `/v1/brokers/${encodeURIComponent(broker)}/partitions/${encodeURIComponent(topic)}/${encodeURIComponent(partition)}/files`;
    const listing = await get(base, { signal });
    filesArea.replaceChildren(...filesTables(listing, pathWith, file));
    root.dataset.loaded = "true";
    if (file !== null) await showFile(fileArea, base, file, { printData, maxBytes, pathWith, ctx });
  } catch (err) {
    if (signal.aborted) return;
    status.append(errorBox(err));
    root.dataset.loaded = "true";
  }
}

function fileColumns(pathWith, chosen) {
  return [
    {
      title: "File",
      class: "mono",
      cell: (f) => {
        const a = link(pathWith({ file: f.name }), f.name);
        if (f.name === chosen) a.setAttribute("aria-current", "true");
        return a;
      },
    },
    { title: "Kind", cell: (f) => KIND_LABELS[f.kind] || f.kind.replaceAll("_", " ") },
    { title: "Size", class: "num", cell: (f) => h("span", { title: `${f.size} bytes`, text: fmtBytes(f.size) }), testid: (f) => `file-size-${f.name}` },
  ];
}

function filesTables(listing, pathWith, chosen) {
  const rowAttrs = (f) => ({ id: `file-row-${f.name}`, class: f.name === chosen ? "chosen" : null });
  return [
    h("h2", {}, "Partition directory ", h("code", { text: listing.directory })),
    h("p", { class: "muted" }, `node ${listing.broker_id}, log directory `, h("code", { text: listing.log_dir })),
    table(fileColumns(pathWith, chosen), listing.files || [], { empty: "no files", rowAttrs }),
    h("h3", {}, "The log directory's own files"),
    table(fileColumns(pathWith, chosen), listing.log_dir_files || [], { empty: "no files", rowAttrs }),
  ];
}

async function showFile(area, base, file, { printData, maxBytes, pathWith, ctx }) {
  const payloads = h("input", { type: "checkbox", id: "file-print-data", checked: printData });
  payloads.addEventListener("change", () => ctx.navigate(pathWith({ print_data: payloads.checked ? "true" : null })));
  const sizes = MAX_BYTES_CHOICES.slice();
  if (!sizes.some(([n]) => n === maxBytes)) sizes.push([maxBytes, `${maxBytes} bytes`]);
  const limit = h("select", { id: "file-max-bytes", name: "max_bytes" },
    sizes.map(([n, text]) => h("option", { value: String(n), text })));
  limit.value = String(maxBytes);
  limit.addEventListener("change", () => ctx.navigate(pathWith({ max_bytes: Number(limit.value) === MAX_BYTES_DEFAULT ? null : limit.value })));
  const reload = h("button", { type: "button", id: "file-reload", text: "Reload", on: { click: () => ctx.navigate(pathWith({}), { replace: true }) } });
  const text = h("pre", { id: "file-text", class: "file-text" });
  const fileStatus = h("div", { id: "file-status" });
  area.replaceChildren(
    h("h2", {}, "File ", h("code", { text: file })),
    h("div", { class: "toolbar" },
      h("label", { for: "file-print-data" }, payloads, " show payloads (--print-data-log)"),
      h("label", { for: "file-max-bytes" }, "read at most ", limit, " of a segment (--max-bytes)"),
      reload),
    fileStatus,
    text,
  );
  const params = new URLSearchParams();
  if (printData) params.set("print_data", "true");
  if (maxBytes !== MAX_BYTES_DEFAULT) params.set("max_bytes", String(maxBytes));
  const query = params.toString();
  try {
    text.textContent = await getText(`${base}/${encodeURIComponent(file)}${query ? `?${query}` : ""}`, { signal: ctx.signal });
    text.dataset.loaded = "true";
  } catch (err) {
    if (ctx.signal.aborted) return;
    text.remove();
    fileStatus.replaceChildren(errorBox(err));
  }
}
