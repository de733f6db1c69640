// The groups list (/ui/groups): every group of the cluster with its state, members and lag,
// read once a second from GET /v1/groups (one request: the node asks the other coordinators).

import { get } from "../api.js";
import { errorBox, fmtNumber, h, link, liveTable } from "../dom.js";
import { every } from "../live.js";

/** The path of a group's page. */
export function groupPath(group) {
  return `/ui/groups/${encodeURIComponent(group)}`;
}

/** Renders the page into root and keeps it live until ctx.signal aborts. */
export async function render(root, ctx) {
  ctx.setTitle("Groups");
  const status = h("div", { class: "page-status" });
  const summary = h("p", { class: "muted", id: "groups-summary" });
  const groups = liveTable(
    [
      { title: "Group", cell: (g) => link(groupPath(g.group), g.group) },
      { title: "State", cell: (g) => h("span", { class: `state state-${String(g.state).toLowerCase()}`, text: g.state }) },
      { title: "Type", cell: (g) => g.type || "consumer" },
      { title: "Members", class: "num", cell: (g) => fmtNumber(g.members) },
      { title: "Lag", class: "num", cell: (g) => fmtNumber(g.lag), testid: (g) => `lag-${g.group}` },
      { title: "Topics", cell: (g) => topicsText(g.topics) },
    ],
    {
      empty: "no groups yet: a consumer with a group id makes one",
      rowKey: (g) => g.group,
      rowAttrs: (g) => ({ id: `group-row-${g.group}` }),
    },
  );
  root.replaceChildren(
    h("h1", { text: "Consumer groups" }),
    status,
    summary,
    groups.el,
  );

  // Not awaited: the loop runs until the user leaves the page (ctx.signal).
  every(1000, async () => {
    try {
      const answer = await get("/v1/groups", { signal: ctx.signal });
      const list = answer.groups || [];
      groups.update(list);
      summary.textContent = `${list.length} group${list.length === 1 ? "" : "s"}, updated every second`;
      status.replaceChildren();
      root.dataset.loaded = "true";
    } catch (err) {
      if (ctx.signal.aborted) return;
      // The last figures stay on screen; the error says they are stale.
      status.replaceChildren(errorBox(err));
      root.dataset.loaded = "true"; // loaded, with the server's answer shown
    }
  }, ctx.signal);
}

// "news (12), audit (0)": each topic the group has offsets on, with its lag.
function topicsText(topics) {
  if (!Array.isArray(topics) || !topics.length) return "–";
  return topics.map((t) => `${t.topic} (${t.lag === null || t.lag === undefined ? "–" : fmtNumber(t.lag)})`).join(", ");
}
