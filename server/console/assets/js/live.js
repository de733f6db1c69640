// Live figures without hammering the node: one run at a time, the next one `ms` after the
// previous one ended (never overlapping), and nothing while the tab is hidden.

function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal && signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      if (signal) signal.removeEventListener("abort", done);
      resolve();
    }
    if (signal) signal.addEventListener("abort", done, { once: true });
  });
}

function visible(signal) {
  if (!document.hidden) return Promise.resolve();
  return new Promise((resolve) => {
    function done() {
      if (document.hidden && !(signal && signal.aborted)) return;
      document.removeEventListener("visibilitychange", done);
      if (signal) signal.removeEventListener("abort", done);
      resolve();
    }
    document.addEventListener("visibilitychange", done);
    if (signal) signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Runs fn() now, then ms after each run ended, until signal aborts; waits while the tab is
 * hidden. fn handles its own errors (shows them); one that escapes is logged (unless it is the
 * abort) and the loop keeps going. Resolves once the signal has aborted.
 */
export async function every(ms, fn, signal) {
  while (!signal.aborted) {
    await visible(signal);
    if (signal.aborted) break;
    try {
      await fn();
    } catch (err) {
      if (!signal.aborted && !(err && err.name === "AbortError")) console.warn("live update failed:", err);
    }
    await sleep(ms, signal);
  }
}
