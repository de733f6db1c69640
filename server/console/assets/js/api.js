// The console's client of the node's public /v1 API.
//
// Every request goes to the console's own origin with a relative URL and the header
// X-Kraft-Console: 1 (the browser-write rule lets a POST/PUT/DELETE with an Origin through only
// with it). The browser follows 307s to other nodes by itself; CORS makes that legal. Chrome
// drops Authorization on a cross-origin redirect, so a 401 that came after a redirect is sent
// once more, straight to where it ended, with the credentials.
//
// Credentials live only in this module's variables: never in a URL, a cookie or any browser
// storage, so a reload asks again. A 401 shows the login form and repeats the request after a
// login, so pages never handle 401 themselves.

import { h } from "./dom.js";

/** An error answer of the API: status (HTTP), code (e.g. "TOPIC_ALREADY_EXISTS"), body. */
export class ApiError extends Error {
  constructor(status, code, message, body = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

let credentials = null; // {user, password} or null
let pendingLogin = null; // one login form for every request that met a 401 at the same time
const authListeners = new Set();

/** The user name the console sends, or null when nobody has logged in. */
export function loggedInAs() {
  return credentials ? credentials.user : null;
}

/** Forgets the credentials (the next request that needs them shows the login form). */
export function logout() {
  credentials = null;
  for (const fn of authListeners) fn(null);
}

/** Calls fn(userOrNull) after each login and logout. */
export function onAuthChange(fn) {
  authListeners.add(fn);
}

function basic(user, password) {
  // btoa takes Latin-1 only: encode UTF-8 first so any password can be sent.
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return "Basic " + btoa(binary);
}

function headersFor(accept, hasBody) {
  const headers = { "X-Kraft-Console": "1", Accept: accept };
  if (hasBody) headers["Content-Type"] = "application/json";
  if (credentials) headers.Authorization = basic(credentials.user, credentials.password);
  return headers;
}

async function errorFrom(response) {
  let body = null;
  let text = "";
  try {
    text = await response.text();
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  if (body && typeof body === "object" && typeof body.error === "string") {
    return new ApiError(response.status, body.error, body.message || body.error, body);
  }
  const message = text.trim() ? text.trim().slice(0, 500) : `HTTP ${response.status} ${response.statusText}`;
  return new ApiError(response.status, `HTTP_${response.status}`, message, null);
}

async function fetchOnce(url, method, accept, body, signal) {
  return fetch(url, {
    method,
    headers: headersFor(accept, body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    redirect: "follow",
    credentials: "omit", // the console never relies on cookies or the browser's auth cache
    cache: "no-store",
  });
}

/** Sends the request; answers the Response of a status below 400, throws ApiError otherwise. */
async function request(method, path, { body, signal, accept = "application/json" } = {}) {
  for (;;) {
    let response = await fetchOnce(path, method, accept, body, signal);
    if (response.status === 401 && response.redirected && credentials) {
      // The redirect to another node lost the Authorization header: ask that node directly.
      response = await fetchOnce(response.url, method, accept, body, signal);
    }
    if (response.status !== 401) {
      if (response.ok) return response;
      throw await errorFrom(response);
    }
    // Without credentials the 401 just asks for them; with them, they were wrong: say so.
    const refused = await errorFrom(response);
    await login(credentials ? refused : null, signal);
  }
}

/** GET of a JSON answer. */
export async function get(path, { signal } = {}) {
  const response = await request("GET", path, { signal });
  return response.json();
}

/** A write with a JSON body (or none when body is undefined or null); 204 answers null. */
export async function send(method, path, body, { signal } = {}) {
  const response = await request(method, path, { body: body == null ? undefined : body, signal });
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** GET of a text/plain answer (the disk view's file dumps). */
export async function getText(path, { signal } = {}) {
  const response = await request("GET", path, { signal, accept: "text/plain" });
  return response.text();
}

/**
 * Reads an ndjson stream (follow=true): onItem(obj) for each line, heartbeats included.
 * Resolves when the server ends the stream; an error line (the JSON of an error, e.g. when
 * leadership moves) throws ApiError; aborting the signal rejects with the AbortError.
 */
export async function stream(path, onItem, { signal } = {}) {
  const response = await request("GET", path, { signal, accept: "application/x-ndjson" });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  const handle = (line) => {
    if (!line.trim()) return;
    const item = JSON.parse(line);
    if (item && typeof item.error === "string" && "error_code" in item) {
      throw new ApiError(Math.floor(item.error_code / 100), item.error, item.message || item.error, item);
    }
    onItem(item);
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        handle(line);
      }
    }
    buffered += decoder.decode();
    handle(buffered);
  } finally {
    reader.cancel().catch(() => {});
  }
}

// The login overlay. Resolves once the user has given a user name and password; the request
// that met the 401 then tells whether they were right (a wrong pair shows the form again with
// the server's message).
function login(error, signal) {
  if (!pendingLogin) {
    pendingLogin = new Promise((resolve) => {
      const message = h("div", { class: "error", role: "alert" });
      if (error) message.append(error.message);
      else message.hidden = true;
      const user = h("input", { id: "login-user", name: "user", autocomplete: "username", required: true });
      const password = h("input", {
        id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true,
      });
      const form = h("form", {
        id: "login-form",
        class: "stack",
        on: {
          submit: (event) => {
            event.preventDefault();
            credentials = { user: user.value, password: password.value };
            overlay.remove();
            pendingLogin = null;
            for (const fn of authListeners) fn(credentials.user);
            resolve();
          },
        },
      },
        h("h2", { text: "Log in" }),
        h("p", { class: "muted", text: "This cluster asks for a user name and password. The console keeps them in this page only: a reload asks again." }),
        message,
        h("label", { for: "login-user", text: "User" }), user,
        h("label", { for: "login-password", text: "Password" }), password,
        h("button", { type: "submit", class: "primary", text: "Log in" }),
      );
      const overlay = h("div", { class: "overlay", id: "login-overlay" }, h("div", { class: "dialog" }, form));
      document.body.append(overlay);
      user.focus();
    });
  }
  if (!signal) return pendingLogin;
  // A page the user left stops waiting (its request is dropped); the form stays for the others.
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    pendingLogin.then(resolve);
  });
}
