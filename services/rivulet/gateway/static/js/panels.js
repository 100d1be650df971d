// DOM helpers. Everything the service or the user wrote is inserted with textContent, never as HTML.
export function addLogEntry(log, kind, text, meta) {
  const item = document.createElement("li");
  item.className = kind;
  item.textContent = text;
  if (meta) {
    const small = document.createElement("span");
    small.className = "meta";
    small.textContent = meta;
    item.append(small);
  }
  log.append(item);
  log.scrollTop = log.scrollHeight;
  return item;
}

export function announce(live, text) {
  const line = document.createElement("p");
  line.textContent = text;
  live.append(line);
  while (live.children.length > 5) live.firstElementChild.remove();
}

function clock(unixSeconds) {
  return new Date(unixSeconds * 1000).toLocaleTimeString();
}

/** A skill's data as short lines: timers by label and due time, devices and lists by name. */
function describe(value) {
  if (value === null || value === undefined || value === "") return "—";
  if (Array.isArray(value)) {
    if (!value.length) return "none";
    return value
      .map((item) => (item && typeof item === "object" && "due" in item ? `${item.label || item.kind} at ${clock(item.due)}` : describe(item)))
      .join("; ");
  }
  if (typeof value === "object") {
    return Object.entries(value)
      .map(([key, item]) => `${key}: ${typeof item === "object" && item !== null ? describe(item) : item}`)
      .join("; ");
  }
  return String(value);
}

function addRows(dl, rows) {
  for (const [name, value] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = describe(value);
    dl.append(dt, dd);
  }
}

/** The session from GetSession: frame, context, turns, and the skills' data (timers, lights, lists). */
export function renderSession(container, session) {
  const dl = document.createElement("dl");
  const frame = session.frame || {};
  const rows = [
    ["turns", session.turns],
    ["task", frame.intent],
    ["slots", Object.keys(frame.slots || {}).length ? frame.slots : null],
    ["asking for", frame.awaiting_slot],
    ["confirming", frame.awaiting_confirmation ? "yes" : ""],
    ["last task", (session.context || {}).intent],
  ];
  let data = {};
  try {
    data = session.data_json ? JSON.parse(session.data_json) : {};
  } catch (e) {
    data = { data: session.data_json };
  }
  for (const [key, value] of Object.entries(data)) rows.push([key, value]);
  rows.push(["expires in", session.ttl_s ? `${Math.round(Number(session.ttl_s) / 3600)} h` : ""]);
  addRows(dl, rows);
  container.replaceChildren(dl);
}
