// The latency waterfall of every turn: the stages the service reports (TurnLatency) and what only
// the browser sees (network + gateway one way, from the WebSocket ping's round trip, and the
// playout: first reply audio arrived → actually played on the page's audio clock), laid end to
// end against the 300 ms budget line.
export const STAGES = [
  ["endpointing", "end-of-turn silence"],
  ["asr_final", "ASR final"],
  ["nlu", "NLU"],
  ["policy", "policy + Redis"],
  ["tts_first_audio", "TTS first audio"],
  ["network", "network + gateway"],
  ["playout", "playout"],
];
const BUDGET_MS = 300;

export function drawLegend(list) {
  for (const [key, label] of [...STAGES, ["budget", `${BUDGET_MS} ms budget`]]) {
    const item = document.createElement("li");
    const swatch = document.createElement("i");
    swatch.className = `s-${key}`;
    item.append(swatch, label);
    list.append(item);
  }
}

/** Add one turn: `server` is the latency message, `browser` {network, playout} in ms (or null). */
export function drawTurn(list, label, server, browser) {
  const parts = STAGES.map(([key]) => {
    if (key === "network" || key === "playout") return [key, browser ? browser[key] : 0];
    return [key, server[`${key}_ms`] || 0];
  });
  const serverTotal = server.total_ms || 0;
  const total = serverTotal + (browser ? browser.network + browser.playout : 0);
  const scale = Math.max(BUDGET_MS * 1.4, total, parts.reduce((sum, [, v]) => sum + v, 0));
  const item = document.createElement("li");
  const caption = document.createElement("div");
  caption.className = "label";
  const spec = server.speculative ? " (answered speculatively: stages overlap)" : "";
  caption.textContent = `${label}: ${Math.round(total)} ms at the page, ${Math.round(serverTotal)} ms at the service${spec}`;
  const bars = document.createElement("div");
  bars.className = "bars";
  bars.setAttribute("role", "img");
  bars.setAttribute(
    "aria-label",
    parts.map(([key, v]) => `${key.replace("_", " ")} ${Math.round(v)} ms`).join(", "),
  );
  let left = 0;
  for (const [key, value] of parts) {
    if (value <= 0) continue;
    const bar = document.createElement("span");
    bar.className = `bar s-${key}`;
    bar.style.left = `${(100 * left) / scale}%`;
    bar.style.width = `${(100 * value) / scale}%`;
    bar.title = `${key}: ${value.toFixed(1)} ms`;
    bars.append(bar);
    left += value;
  }
  const budget = document.createElement("span");
  budget.className = "budget";
  budget.style.left = `${(100 * BUDGET_MS) / scale}%`;
  budget.title = "300 ms budget";
  bars.append(budget);
  item.append(caption, bars);
  list.prepend(item);
  while (list.children.length > 20) list.lastElementChild.remove();
  return total;
}
