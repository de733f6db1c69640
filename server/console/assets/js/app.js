// The console's router and layout. Each page is an ES module loaded with import() when it is
// first shown (a broken page module breaks only its own page), exporting
// `render(root, ctx)` with ctx = {params, query, signal, navigate, setTitle}. The signal
// aborts when the user leaves the page: its live loops and streams stop with it.

import { get, loggedInAs, logout, onAuthChange } from "./api.js";
import { h, clear, errorBox } from "./dom.js";

const ROUTES = [
  { pattern: /^\/ui\/?$/, module: "overview", nav: "overview" },
  { pattern: /^\/ui\/topics\/?$/, module: "topics", nav: "topics" },
  { pattern: /^\/ui\/topics\/([^/]+)\/?$/, module: "topic", nav: "topics" },
  { pattern: /^\/ui\/topics\/([^/]+)\/messages\/?$/, module: "messages", nav: "topics" },
  { pattern: /^\/ui\/groups\/?$/, module: "groups", nav: "groups" },
  { pattern: /^\/ui\/groups\/([^/]+)\/?$/, module: "group", nav: "groups" },
  { pattern: /^\/ui\/replication\/?$/, module: "replication", nav: "replication" },
  { pattern: /^\/ui\/disk\/?$/, module: "disk", nav: "disk" },
];

const NAV = [
  ["overview", "Overview", "/ui/"],
  ["topics", "Topics", "/ui/topics"],
  ["groups", "Groups", "/ui/groups"],
  ["replication", "Replication", "/ui/replication"],
  ["disk", "Disk", "/ui/disk"],
];

const main = document.getElementById("main");
let current = null; // AbortController of the page on screen

/** The route of a path: {module, nav, params} or null. */
export function match(pathname) {
  for (const route of ROUTES) {
    const found = route.pattern.exec(pathname);
    if (found) {
      let params;
      try {
        params = found.slice(1).map(decodeURIComponent);
      } catch {
        return null; // a broken %-escape names nothing
      }
      return { module: route.module, nav: route.nav, params };
    }
  }
  return null;
}

/** Shows path (with its query) in the page, adding a history entry unless replace is true. */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  show();
}

function setTitle(text) {
  document.title = text ? `${text} · kraft console` : "kraft console";
}

function markNav(active) {
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.nav === active) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

async function show() {
  if (current) current.abort();
  const controller = new AbortController();
  current = controller;
  const route = match(location.pathname);
  const root = h("section", { id: route ? `page-${route.module}` : "page-notfound", class: "page" });
  clear(main).append(root);
  window.scrollTo(0, 0);
  markNav(route ? route.nav : null);
  if (!route) {
    setTitle("Not found");
    root.append(h("h1", { text: "Not found" }), h("p", {}, "The console has no page at ", h("code", { text: location.pathname }), ". ", h("a", { href: "/ui/", text: "Overview" })));
    root.dataset.loaded = "true";
    return;
  }
  setTitle("");
  const ctx = {
    params: route.params,
    query: new URLSearchParams(location.search),
    signal: controller.signal,
    navigate,
    setTitle,
  };
  try {
    const page = await import(`./pages/${route.module}.js`);
    if (controller.signal.aborted) return;
    await page.render(root, ctx);
  } catch (err) {
    if (controller.signal.aborted || (err && err.name === "AbortError")) return;
    console.warn(`page ${route.module} failed:`, err);
    root.append(errorBox(err));
  }
}

// Same-origin links to /ui/ open in the page; modified clicks (new tab...) stay the browser's.
document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const a = event.target.closest("a[href]");
  if (!a || a.target || a.hasAttribute("download")) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/ui")) return;
  event.preventDefault();
  if (url.pathname + url.search !== location.pathname + location.search) navigate(url.pathname + url.search + url.hash);
});

window.addEventListener("popstate", show);

function renderHeader(nodeId) {
  const nav = document.getElementById("nav");
  nav.replaceChildren(...NAV.map(([key, title, href]) => h("a", { href, "data-nav": key, text: title })));
  renderWhoami(nodeId);
  onAuthChange(() => renderWhoami(nodeId));
}

function renderWhoami(nodeId) {
  const who = document.getElementById("whoami");
  const user = loggedInAs();
  const parts = [h("span", { id: "node-id", "data-testid": "node-id", text: nodeId === null ? "node ?" : `node ${nodeId}` })];
  if (user) {
    parts.push(h("span", { class: "user" }, " · ", h("span", { id: "user-name", text: user }), " ", h("button", {
      type: "button", id: "logout", class: "link", text: "log out",
      on: { click: () => { logout(); show(); } },
    })));
  }
  who.replaceChildren(...parts);
}

// Whether this browser reaches origin at all: behind a tunnel or a port forward the node may
// advertise a name the browser cannot reach, and the console then stays where it is (its own
// node answers; only redirects to other nodes fail). A no-cors request resolves with any
// answer (even a refusal) and fails only when nothing answers.
async function reachable(origin) {
  try {
    await fetch(origin + "/ui/", { mode: "no-cors", cache: "no-store", signal: AbortSignal.timeout(3000) });
    return true;
  } catch {
    return false;
  }
}

// At start: which node is this, and is the page on the origin the node advertises? CORS
// trusts only the brokers' advertised origins, so a page opened as localhost:9092 while the
// node says 127.0.0.1:9092 moves there (same path) before it asks anything else.
async function start() {
  let nodeId = null;
  try {
    const ready = await get("/v1/health/ready");
    nodeId = ready.node_id ?? null;
  } catch (err) {
    // Not ready (starting, or cut off from the quorum): the 503 carries node_id too.
    nodeId = err && err.body && err.body.node_id !== undefined ? err.body.node_id : null;
  }
  renderHeader(nodeId);
  if (nodeId !== null) {
    try {
      const cluster = await get("/v1/cluster");
      const self = (cluster.brokers || []).find((b) => b.id === nodeId);
      if (self && self.url) {
        const advertised = new URL(self.url).origin;
        if (advertised !== location.origin && (await reachable(advertised))) {
          location.replace(advertised + location.pathname + location.search + location.hash);
          return;
        }
      }
    } catch (err) {
      console.warn("could not read /v1/cluster:", err);
    }
  }
  show();
}

start();
