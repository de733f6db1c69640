// A group's page (/ui/groups/<group>): its state, coordinator and members, and per partition
// the committed offset, log end, lag and owner, read once a second from GET /v1/groups/<g>.
// Below, the offset reset of kraft-consumer-groups (group_reset.js plans it; a dry run shows
// current -> new before "execute" commits exactly what was shown) and the group's deletion.

import { get, send } from "../api.js";
import { confirmDialog, errorBox, fmtNumber, h, link, liveTable, table } from "../dom.js";
import { every } from "../live.js";
import { InputError, SCENARIOS, parseDatetimeMs, parseDurationMs, parsePartitions, parseWhole, partitionsToReset, planReset } from "./group_reset.js";

const ALL_TOPICS = ""; // the scope select's value for --all-topics

// A controller that also aborts when the page's signal does (leaving the page stops a dry run).
function childController(parent) {
  const controller = new AbortController();
  if (parent.aborted) controller.abort();
  else parent.addEventListener("abort", () => controller.abort(), { once: true });
  return controller;
}

function messagesPath(topic, partition, group) {
  return `/ui/topics/${encodeURIComponent(topic)}/messages?partition=${partition}&group=${encodeURIComponent(group)}`;
}

// "news: 0, 1, 2; audit: 0" from [{topic, partition}].
function assignmentText(assignment) {
  if (!Array.isArray(assignment) || !assignment.length) return "–";
  const byTopic = new Map();
  for (const a of assignment) {
    if (!byTopic.has(a.topic)) byTopic.set(a.topic, []);
    byTopic.get(a.topic).push(a.partition);
  }
  return [...byTopic].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([topic, parts]) => `${topic}: ${parts.sort((x, y) => x - y).join(", ")}`).join("; ");
}

function figure(label, testid) {
  const value = h("span", { class: "value", "data-testid": testid, text: "–" });
  return { el: h("li", {}, h("span", { class: "label", text: label }), value), value };
}

/** Renders the page into root and keeps it live until ctx.signal aborts. */
export async function render(root, ctx) {
  const group = ctx.params[0];
  const groupPath = `/v1/groups/${encodeURIComponent(group)}`;
  ctx.setTitle(`Group ${group}`);

  const status = h("div", { class: "page-status" });
  const figures = {
    state: figure("state", "group-state"),
    coordinator: figure("coordinator", "group-coordinator"),
    members: figure("members", "group-members"),
    lag: figure("lag", "group-lag"),
    epoch: figure("group epoch", "group-epoch"),
    assignor: figure("assignor", "group-assignor"),
  };
  const members = liveTable(
    [
      { title: "Member", class: "mono", cell: (m) => m.member_id },
      { title: "Client", cell: (m) => m.client_id || "–" },
      { title: "Host", cell: (m) => m.client_host || "–" },
      { title: "Epoch", class: "num", cell: (m) => fmtNumber(m.member_epoch) },
      { title: "Assignment", cell: (m) => assignmentText(m.assignment) },
    ],
    { empty: "no members: the group is not consuming now", rowKey: (m) => m.member_id, rowAttrs: (m) => ({ id: `member-row-${m.member_id}` }) },
  );
  const offsets = liveTable(
    [
      { title: "Topic", cell: (o) => link(`/ui/topics/${encodeURIComponent(o.topic)}`, o.topic) },
      { title: "Partition", class: "num", cell: (o) => String(o.partition) },
      { title: "Committed", class: "num", cell: (o) => fmtNumber(o.offset), testid: (o) => `committed-${o.topic}-${o.partition}` },
      { title: "Log end", class: "num", cell: (o) => fmtNumber(o.log_end_offset), testid: (o) => `log-end-${o.topic}-${o.partition}` },
      { title: "Lag", class: "num", cell: (o) => fmtNumber(o.lag), testid: (o) => `lag-${o.topic}-${o.partition}` },
      { title: "Member", class: "mono", cell: (o) => o.member_id || "–" },
      { title: "", cell: (o) => link(messagesPath(o.topic, o.partition, group), "messages from here") },
    ],
    {
      empty: "no committed offsets and no assigned partitions",
      rowKey: (o) => `${o.topic}\u0000${o.partition}`,
      rowAttrs: (o) => ({ id: `offset-row-${o.topic}-${o.partition}` }),
    },
  );

  let latest = null; // the last description read: the reset form's current offsets
  const reset = resetSection(group, groupPath, () => latest, ctx);
  const deletion = deleteSection(group, groupPath, ctx);

  root.replaceChildren(
    h("h1", {}, "Group ", h("span", { class: "mono", text: group })),
    status,
    h("ul", { class: "figures" }, Object.values(figures).map((f) => f.el)),
    h("h2", { text: "Offsets and lag" }),
    offsets.el,
    h("h2", { text: "Members" }),
    members.el,
    reset.el,
    deletion,
  );

  every(1000, async () => {
    try {
      const desc = await get(groupPath, { signal: ctx.signal });
      latest = desc;
      const rows = (desc.offsets || []).slice().sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
      offsets.update(rows);
      members.update(desc.members || []);
      const lags = rows.map((o) => o.lag);
      const known = lags.filter((l) => l !== null && l !== undefined);
      figures.state.value.textContent = desc.state;
      figures.coordinator.value.textContent = desc.coordinator_id === null || desc.coordinator_id === undefined ? "–" : `node ${desc.coordinator_id}`;
      figures.members.value.textContent = fmtNumber((desc.members || []).length);
      figures.lag.value.textContent = known.length ? fmtNumber(known.reduce((a, b) => a + b, 0)) : "–";
      figures.epoch.value.textContent = fmtNumber(desc.group_epoch);
      figures.assignor.value.textContent = desc.assignor || "–";
      reset.refresh(desc);
      status.replaceChildren();
      root.dataset.loaded = "true";
    } catch (err) {
      if (ctx.signal.aborted) return;
      status.replaceChildren(errorBox(err));
      root.dataset.loaded = "true"; // loaded, with the server's answer shown
    }
  }, ctx.signal);
}

// -- reset offsets -------------------------------------------------------------------------------

function resetSection(group, groupPath, latest, ctx) {
  const scope = h("select", { id: "reset-scope", name: "scope" }, h("option", { value: ALL_TOPICS, text: "all topics of the group" }));
  const partitions = h("input", { id: "reset-partitions", name: "partitions", placeholder: "all, or e.g. 0,2", disabled: true });
  const scenario = h("select", { id: "reset-scenario", name: "scenario" },
    SCENARIOS.map((s) => h("option", { value: s.name, text: s.label })));
  const value = h("input", { id: "reset-value", name: "value", disabled: true });
  const perPartition = h("div", { id: "reset-offsets", class: "reset-offsets" });
  const formStatus = h("div", { id: "reset-status" });
  const preview = h("div", { id: "reset-preview" });
  const dryRun = h("button", { type: "submit", id: "reset-dry-run", class: "primary", text: "Dry run" });
  const execute = h("button", { type: "button", id: "reset-execute", class: "danger", text: "Execute", hidden: true });

  let plan = null; // the rows the dry run showed: what "execute" commits
  let scopePartitions = null; // [{topic, partition}] for the to-offset inputs, or null
  let running = null; // AbortController of a dry run or an execute in flight

  function committed() {
    const desc = latest();
    return desc ? (desc.offsets || []).filter((o) => o.offset !== null && o.offset !== undefined) : [];
  }

  function currentOf(topic, partition) {
    const found = committed().find((o) => o.topic === topic && o.partition === partition);
    return found ? found.offset : null;
  }

  // Anything the user changes makes the shown plan stale: it may no longer be executed.
  function invalidate() {
    plan = null;
    execute.hidden = true;
    preview.replaceChildren();
  }

  function chosenScope() {
    return { topic: scope.value === ALL_TOPICS ? null : scope.value, partitions: scope.value === ALL_TOPICS ? null : parsePartitions(partitions.value) };
  }

  // to-offset: one input per partition of the scope, filled with the current committed offset
  // (the value field above fills them all, as Kafka's --to-offset N does).
  let filling = 0; // the latest fill: an older one that answers late is dropped
  async function fillOffsetInputs() {
    const mine = ++filling;
    perPartition.replaceChildren();
    scopePartitions = null;
    if (scenario.value !== "to-offset") return;
    try {
      const tps = await partitionsToReset(chosenScope(), committed(), ctx.signal);
      if (mine !== filling) return;
      scopePartitions = tps;
      perPartition.replaceChildren(table(
        [
          { title: "Topic", cell: (tp) => tp.topic },
          { title: "Partition", class: "num", cell: (tp) => String(tp.partition) },
          { title: "Committed", class: "num", cell: (tp) => fmtNumber(currentOf(tp.topic, tp.partition)) },
          {
            title: "New offset",
            cell: (tp) => {
              const current = currentOf(tp.topic, tp.partition);
              return h("input", {
                class: "reset-offset-input", id: `reset-offset-${tp.topic}-${tp.partition}`, name: `offset-${tp.topic}-${tp.partition}`,
                "data-topic": tp.topic, "data-partition": String(tp.partition), inputmode: "numeric",
                value: current === null ? "" : String(current),
              });
            },
          },
        ],
        tps,
        { empty: "no partitions in this scope" },
      ));
    } catch (err) {
      if (!ctx.signal.aborted && mine === filling) perPartition.replaceChildren(errorBox(err));
    }
  }

  function scenarioChanged() {
    const chosen = SCENARIOS.find((s) => s.name === scenario.value);
    value.disabled = chosen.value === null;
    value.placeholder = chosen.value || "";
    if (chosen.value === null) value.value = "";
    invalidate();
    fillOffsetInputs();
  }

  function scopeChanged() {
    partitions.disabled = scope.value === ALL_TOPICS;
    if (partitions.disabled) partitions.value = "";
    invalidate();
    fillOffsetInputs();
  }

  // What the value field means for the chosen scenario (InputError when it cannot be used).
  function parsedValue() {
    const name = scenario.value;
    const text = value.value;
    if (name === "shift-by") return parseWhole(text, "Shift by");
    if (name === "to-datetime") return parseDatetimeMs(text);
    if (name === "by-duration") return parseDurationMs(text);
    if (name === "to-offset") {
      const inputs = new Map();
      for (const input of perPartition.querySelectorAll("input.reset-offset-input")) {
        inputs.set(`${input.dataset.topic}\u0000${input.dataset.partition}`, input);
      }
      return (tp) => {
        const input = inputs.get(`${tp.topic}\u0000${tp.partition}`);
        return parseWhole(input ? input.value : value.value, `New offset of ${tp.topic}-${tp.partition}`);
      };
    }
    return null;
  }

  async function doDryRun(event) {
    event.preventDefault();
    if (running) running.abort();
    running = childController(ctx.signal);
    const signal = running.signal;
    invalidate();
    formStatus.replaceChildren(h("p", { class: "muted", text: "Planning…" }));
    try {
      if (scenario.value === "to-offset" && !scopePartitions) await fillOffsetInputs();
      const parsed = parsedValue();
      const tps = await partitionsToReset(chosenScope(), committed(), signal);
      if (!tps.length) throw new InputError("Nothing to reset: the group has no committed offsets in this scope");
      const result = await planReset(scenario.value, parsed, tps, committed(), signal);
      plan = result.rows;
      const desc = latest();
      const active = desc && !["Empty", "Dead"].includes(desc.state);
      preview.replaceChildren(h("div", {},
        h("h3", { text: "Dry run: the new offsets" }),
        result.warnings.map((w) => h("p", { class: "warn reset-warning", text: `WARN ${w}` })),
        active ? h("p", { class: "notice", text: `Assignments can only be reset if the group '${group}' is inactive, but the current state is ${desc.state}.` }) : null,
        table(
          [
            { title: "Topic", cell: (r) => r.topic },
            { title: "Partition", class: "num", cell: (r) => String(r.partition) },
            { title: "Current", class: "num", cell: (r) => fmtNumber(r.current), testid: (r) => `reset-current-${r.topic}-${r.partition}` },
            { title: "New", class: "num", cell: (r) => fmtNumber(r.offset), testid: (r) => `reset-new-${r.topic}-${r.partition}` },
          ],
          plan,
          { rowAttrs: (r) => ({ id: `reset-row-${r.topic}-${r.partition}` }) },
        )));
      execute.hidden = false;
      formStatus.replaceChildren();
    } catch (err) {
      if (signal.aborted) return;
      formStatus.replaceChildren(errorBox(err));
    }
  }

  async function doExecute() {
    if (!plan) return;
    const rows = plan;
    if (running) running.abort();
    running = childController(ctx.signal);
    const signal = running.signal;
    execute.disabled = true;
    try {
      await send("POST", `${groupPath}/offsets`, { offsets: rows.map((r) => ({ topic: r.topic, partition: r.partition, offset: r.offset })) }, { signal });
      invalidate();
      formStatus.replaceChildren(h("div", { class: "success", id: "reset-done", text: `Committed the new offsets of ${rows.length} partition${rows.length === 1 ? "" : "s"}.` }));
    } catch (err) {
      if (signal.aborted) return;
      formStatus.replaceChildren(errorBox(err));
    } finally {
      execute.disabled = false;
    }
  }

  scope.addEventListener("change", scopeChanged);
  scenario.addEventListener("change", scenarioChanged);
  partitions.addEventListener("change", () => { invalidate(); fillOffsetInputs(); });
  value.addEventListener("input", () => {
    invalidate();
    // --to-offset N: the one value fills every partition's field.
    if (scenario.value === "to-offset") {
      for (const input of perPartition.querySelectorAll("input.reset-offset-input")) input.value = value.value;
    }
  });
  perPartition.addEventListener("input", invalidate);
  execute.addEventListener("click", doExecute);

  const form = h("form", { id: "reset-form", class: "inline", on: { submit: doDryRun } },
    h("label", { for: "reset-scope" }, "Topics", scope),
    h("label", { for: "reset-partitions" }, "Partitions", partitions),
    h("label", { for: "reset-scenario" }, "Reset", scenario),
    h("label", { for: "reset-value" }, "Value", value),
    dryRun,
  );
  const el = h("section", { class: "panel reset" },
    h("h2", { text: "Reset offsets" }),
    h("p", { class: "muted", text: "As kraft-consumer-groups --reset-offsets: the dry run shows the new offsets, execute commits them. The group must have no members." }),
    form,
    perPartition,
    formStatus,
    preview,
    h("div", { class: "actions" }, execute),
  );

  // Each live read may bring topics the scope select does not offer yet.
  function refresh(desc) {
    const topics = new Set((desc.offsets || []).map((o) => o.topic));
    for (const m of desc.members || []) for (const t of m.subscribed_topics || []) topics.add(t);
    const offered = new Set([...scope.options].map((o) => o.value));
    for (const t of [...topics].sort()) {
      if (!offered.has(t)) scope.append(h("option", { value: t, text: `topic ${t}` }));
    }
  }

  return { el, refresh };
}

// -- delete --------------------------------------------------------------------------------------

function deleteSection(group, groupPath, ctx) {
  const status = h("div", { id: "delete-status" });
  const button = h("button", {
    type: "button", id: "delete-group", class: "danger", text: "Delete group",
    on: {
      click: async () => {
        const sure = await confirmDialog(`Delete the group '${group}' and its committed offsets? Only a group without members can be deleted.`);
        if (!sure) return;
        try {
          await send("DELETE", groupPath, null, { signal: ctx.signal });
          ctx.navigate("/ui/groups");
        } catch (err) {
          if (!ctx.signal.aborted) status.replaceChildren(errorBox(err));
        }
      },
    },
  });
  return h("section", { class: "panel delete" },
    h("h2", { text: "Delete" }),
    h("p", { class: "muted", text: "Deletes the group and its committed offsets (kraft-consumer-groups --delete)." }),
    status,
    h("div", { class: "actions" }, button));
}
