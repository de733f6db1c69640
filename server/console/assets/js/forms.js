// Reading the console's form fields into API bodies. Where the server validates a value the
// user's text goes to it as typed (its 400 says what is wrong); only the shape of a form's own
// syntax (key=value lines) is checked here.

/** A count or id field: "" -> undefined (the server's default), digits -> a number, else the raw text. */
export function numberOrRaw(text) {
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  return /^-?\d+$/.test(trimmed) ? Number(trimmed) : trimmed;
}

/**
 * "key=value" lines (blank lines and lines starting with # skipped) as [[key, value], ...].
 * Throws an Error naming the line when one has no "=" or an empty key.
 */
export function keyValueLines(text, what = "line") {
  const pairs = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim() || line.trim().startsWith("#")) return;
    const eq = line.indexOf("=");
    if (eq <= 0) {
      const err = new Error(`${what} ${i + 1}: expected key=value, got "${line}"`);
      err.code = "FORM_INPUT";
      throw err;
    }
    pairs.push([line.slice(0, eq).trim(), line.slice(eq + 1)]);
  });
  return pairs;
}

/** A topic or group name as one path segment. */
export function seg(name) {
  return encodeURIComponent(name);
}
