// Resetting a group's offsets the way kraft-consumer-groups --reset-offsets does (Kafka's
// ConsumerGroupCommand.prepareOffsetsToReset): the same scenarios, the same range checks and
// warnings, the same fallbacks. The group page builds the form; this module parses what was
// typed (plain functions) and plans the new offsets (reads the partitions' offsets through the
// API). Nothing here commits: the page POSTs the plan the user saw.

import { get } from "../api.js";

/** The scenarios, in kraft-consumer-groups' words, with what their value field takes. */
export const SCENARIOS = [
  { name: "to-earliest", label: "to earliest", value: null },
  { name: "to-latest", label: "to latest", value: null },
  { name: "to-offset", label: "to offset", value: "offset (fills every partition below)" },
  { name: "shift-by", label: "shift by", value: "N (+/-), e.g. -10" },
  { name: "to-datetime", label: "to date and time", value: "YYYY-MM-DDTHH:mm:SS.sss (UTC unless a zone follows)" },
  { name: "by-duration", label: "back by duration", value: "PnDTnHnMnS, e.g. PT1H" },
  { name: "to-current", label: "to current", value: null },
];

/** A value the user typed that cannot be used: the page shows its message. */
export class InputError extends Error {
  constructor(message) {
    super(message);
    this.name = "InputError";
    this.code = "INVALID_INPUT";
  }
}

const LONG_MAX = 2n ** 63n - 1n;

/** A whole number as JS Number (offsets stay far below 2^53); InputError naming `what` else. */
export function parseWhole(text, what) {
  const trimmed = String(text).trim();
  if (!/^[+-]?[0-9]{1,19}$/.test(trimmed)) {
    throw new InputError(`${what}: '${text}' is not a whole number`);
  }
  const big = BigInt(trimmed);
  if (big > LONG_MAX || big < -LONG_MAX - 1n) throw new InputError(`${what}: '${text}' is out of range`);
  if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new InputError(`${what}: '${text}' is larger than the console can count`);
  }
  return Number(big);
}

/** "0,2,5" -> [0, 2, 5]; "" -> null (every partition); InputError on anything else. */
export function parsePartitions(text) {
  const trimmed = String(text).trim();
  if (!trimmed) return null;
  const out = [];
  for (const item of trimmed.split(",")) {
    const p = item.trim();
    if (!/^[0-9]{1,10}$/.test(p) || Number(p) > 2 ** 31 - 1) {
      throw new InputError(`Invalid partition '${item.trim()}': partitions are numbers like 0,1,2`);
    }
    out.push(Number(p));
  }
  return [...new Set(out)].sort((a, b) => a - b);
}

const DATETIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})(Z|[+-]\d{2}(?::?\d{2})?)?$/;

/**
 * Kafka's Utils.getDateTime (what --to-datetime takes): YYYY-MM-DDTHH:mm:SS.sss with an
 * optional zone (Z, +hh, +hhmm, +hh:mm); no zone means UTC. Milliseconds since the epoch.
 */
export function parseDatetimeMs(text) {
  const value = String(text).trim();
  if (!value.includes("T")) {
    throw new InputError("Error parsing timestamp. It does not contain a 'T' according to ISO8601 format");
  }
  const m = DATETIME.exec(value);
  if (!m) throw new InputError(`Unparseable date: "${value}"`);
  const [year, month, day, hour, minute, second, millis] = m.slice(1, 8).map(Number);
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  const back = new Date(utc);
  // Kafka parses strictly: no 31st of February, no 25th hour.
  if (back.getUTCFullYear() !== year || back.getUTCMonth() !== month - 1 || back.getUTCDate() !== day ||
      back.getUTCHours() !== hour || back.getUTCMinutes() !== minute || back.getUTCSeconds() !== second) {
    throw new InputError(`Unparseable date: "${value}"`);
  }
  const zone = m[8] || "Z";
  if (zone === "Z") return utc;
  const digits = zone.slice(1).replace(":", "");
  const offsetMs = (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || 0)) * 60000;
  return zone[0] === "+" ? utc - offsetMs : utc + offsetMs;
}

const DURATION = /^([-+]?)P(?:([-+]?[0-9]+)D)?(?:T(?:([-+]?[0-9]+)H)?(?:([-+]?[0-9]+)M)?(?:([-+]?[0-9]+)(?:[.,]([0-9]{0,9}))?S)?)?$/i;

/** Java's Duration.parse (what --by-duration takes: PnDTnHnMn.nS, signs per part) in ms. */
export function parseDurationMs(text) {
  const value = String(text).trim();
  const m = DURATION.exec(value);
  if (!m || value.toUpperCase().endsWith("T") || m.slice(2, 6).every((g) => g === undefined)) {
    throw new InputError("Text cannot be parsed to a Duration");
  }
  const [, sign, days, hours, minutes, seconds, fraction] = m;
  let total = Number(days || 0) * 86400000 + Number(hours || 0) * 3600000 +
    Number(minutes || 0) * 60000 + Number(seconds || 0) * 1000;
  if (fraction) {
    const partMs = Number(fraction.padEnd(9, "0").slice(0, 3));
    total += (seconds || "").startsWith("-") ? -partMs : partMs;
  }
  return sign === "-" ? -total : total;
}

function tpKey(topic, partition) {
  return `${topic}\u0000${partition}`;
}

function tpText(topic, partition) {
  return `${topic}-${partition}`;
}

function offsetsPath(topic, partition, timestamp) {
  const base = `/v1/topics/${encodeURIComponent(topic)}/partitions/${partition}/offsets`;
  return timestamp === undefined ? base : `${base}?timestamp=${timestamp}`;
}

// One offsets request per partition, all at once (a reset is a one-off action, not live).
async function partitionOffsets(partitions, signal, timestamp) {
  const answers = await Promise.all(partitions.map((tp) => get(offsetsPath(tp.topic, tp.partition, timestamp), { signal })));
  const out = new Map();
  partitions.forEach((tp, i) => out.set(tpKey(tp.topic, tp.partition), answers[i]));
  return out;
}

/**
 * The partitions a reset covers: every partition the group has committed offsets on
 * (--all-topics), or one topic's partitions (all of them, or those listed).
 * committed: [{topic, partition, offset}] of the group.
 */
export async function partitionsToReset({ topic, partitions }, committed, signal) {
  if (topic === null) {
    return committed.filter((o) => o.offset !== null && o.offset !== undefined)
      .map((o) => ({ topic: o.topic, partition: o.partition }))
      .sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  }
  const desc = await get(`/v1/topics/${encodeURIComponent(topic)}`, { signal });
  const existing = (desc.partitions || []).map((p) => p.partition);
  if (partitions === null) return existing.sort((a, b) => a - b).map((p) => ({ topic, partition: p }));
  const unknown = partitions.filter((p) => !existing.includes(p));
  if (unknown.length) {
    throw new InputError(`Topic '${topic}' has no partition ${unknown.join(", ")} (it has ${existing.length})`);
  }
  return partitions.map((p) => ({ topic, partition: p }));
}

// Kafka's checkOffsetsRange: beyond the log end -> the log end, below the start -> the start.
function clamp(tp, offset, range, warnings) {
  if (range.latest !== null && offset > range.latest) {
    warnings.push(`New offset (${offset}) is higher than latest offset for topic partition ${tpText(tp.topic, tp.partition)}. Value will be set to ${range.latest}`);
    return range.latest;
  }
  if (range.earliest !== null && offset < range.earliest) {
    warnings.push(`New offset (${offset}) is lower than earliest offset for topic partition ${tpText(tp.topic, tp.partition)}. Value will be set to ${range.earliest}`);
    return range.earliest;
  }
  return offset;
}

/**
 * The new offset of each partition: {rows: [{topic, partition, current, offset}], warnings}.
 * scenario: one of SCENARIOS' names; value: what it takes (for to-offset a function
 * ({topic, partition}) -> the wanted offset, for shift-by the shift, for to-datetime the time
 * in ms, for by-duration the duration in ms; unused otherwise).
 * committed: the group's committed offsets [{topic, partition, offset}].
 */
export async function planReset(scenario, value, partitions, committed, signal) {
  const current = new Map();
  for (const o of committed) {
    if (o.offset !== null && o.offset !== undefined) current.set(tpKey(o.topic, o.partition), o.offset);
  }
  const warnings = [];
  const planned = new Map();
  if (scenario === "to-earliest" || scenario === "to-latest") {
    const ranges = await partitionOffsets(partitions, signal);
    for (const tp of partitions) {
      const range = ranges.get(tpKey(tp.topic, tp.partition));
      planned.set(tpKey(tp.topic, tp.partition), scenario === "to-earliest" ? range.earliest : range.latest);
    }
  } else if (scenario === "to-offset" || scenario === "shift-by") {
    const wanted = new Map();
    for (const tp of partitions) {
      const key = tpKey(tp.topic, tp.partition);
      if (scenario === "to-offset") {
        wanted.set(key, value(tp));
      } else {
        if (!current.has(key)) {
          throw new InputError(`Cannot shift offset for partition ${tpText(tp.topic, tp.partition)} since there is no current committed offset`);
        }
        wanted.set(key, current.get(key) + value);
      }
    }
    const ranges = await partitionOffsets(partitions, signal);
    for (const tp of partitions) {
      const key = tpKey(tp.topic, tp.partition);
      planned.set(key, clamp(tp, wanted.get(key), ranges.get(key), warnings));
    }
  } else if (scenario === "to-datetime" || scenario === "by-duration") {
    const timestamp = scenario === "to-datetime" ? value : Math.max(0, Date.now() - value);
    const found = await partitionOffsets(partitions, signal, timestamp);
    for (const tp of partitions) {
      const answer = found.get(tpKey(tp.topic, tp.partition));
      if (answer.offset === null || answer.offset === undefined) {
        warnings.push(`Partition ${tp.partition} from topic ${tp.topic} is empty. Falling back to latest known offset.`);
        planned.set(tpKey(tp.topic, tp.partition), answer.latest);
      } else {
        planned.set(tpKey(tp.topic, tp.partition), answer.offset);
      }
    }
  } else if (scenario === "to-current") {
    const without = partitions.filter((tp) => !current.has(tpKey(tp.topic, tp.partition)));
    const ends = await partitionOffsets(without, signal);
    for (const tp of partitions) {
      const key = tpKey(tp.topic, tp.partition);
      planned.set(key, current.has(key) ? current.get(key) : ends.get(key).latest);
    }
  } else {
    throw new InputError(`Unknown scenario '${scenario}'`);
  }
  const rows = partitions.map((tp) => {
    const key = tpKey(tp.topic, tp.partition);
    return { topic: tp.topic, partition: tp.partition, current: current.has(key) ? current.get(key) : null, offset: planned.get(key) };
  });
  return { rows, warnings };
}
