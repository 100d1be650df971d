// The voice-assistant app: microphone → gateway WebSocket → Converse; transcripts, understanding,
// replies, reply audio, barge-in, a latency waterfall per turn and the session panel.
// `window.rivulet` exposes what the page measured (tests and the bench read it).
import { Microphone } from "./capture.js";
import { Connection } from "./connection.js";
import { addLogEntry, announce, renderSession } from "./panels.js";
import { Player } from "./player.js";
import { drawLegend, drawTurn } from "./waterfall.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const MAX_FRAMES_KEPT = 30000; // 10 min of 20 ms capture frames (time, level) for measurements
// The level meter shows the loudest frame of every 100 ms: redrawn for each 20 ms frame it cost the
// page's renderer about a tenth of a CPU core (bench/reports/gateway_latency.md)
const LEVEL_EVERY_FRAMES = 5;
const CLOSE_TEXT = {
  4400: "The app sent a message the gateway refused",
  4403: "This page's origin is not allowed",
  4408: "The connection timed out before it started",
  4409: "Messages arrived out of order",
  4413: "A message was too large",
  4429: "Too many messages",
  4500: "The dialog service failed",
  4503: "The dialog service is unavailable",
  4508: "Busy, try again",
};

function sessionId() {
  const given = params.get("session");
  if (given) return given;
  let id = localStorage.getItem("rivulet.session");
  if (!id) {
    id = `web-${crypto.randomUUID()}`;
    localStorage.setItem("rivulet.session", id);
  }
  return id;
}

const state = {
  session: sessionId(),
  voice: params.get("voice") ?? localStorage.getItem("rivulet.voice") ?? "",
  // headphones: no echo to cancel, so the browser's echo canceller is off (Firefox's mutes the
  // microphone while a reply plays, which rules out barge-in there)
  headphones: (params.get("headphones") ?? localStorage.getItem("rivulet.headphones")) === "1",
  mode: "hands-free",
  talking: false,
};

const context = new AudioContext({ latencyHint: "interactive" });
const probe = {
  session: state.session,
  frames: [], // [audio clock time of the frame's end, rms]
  // [ms from a frame's last sample to its arrival on this thread (audio clock), ms its send took]
  frameWaits: [],
  turns: {}, // turn_id → {transcript, interims, reply, intent, firstArrival, firstPlayAt, samples, latency}
  bargeIns: [], // {turn_id, at (audio clock), played_ms}
  closes: [], // {code, reason}
  readyCount: 0,
  messages: 0,
  get samplesScheduled() {
    return player.samplesScheduled;
  },
  get underruns() {
    return player.underruns;
  },
  get meter() {
    // the fewest capture frames between two redraws of the level meter, and its highest level
    return { fewestBetween: meter.fewestBetween, loudest: meter.loudest };
  },
  get microphone() {
    return microphone.settings; // the capture processing the browser applied (null when off)
  },
  audioTime: () => context.currentTime,
};
window.rivulet = probe;

function turn(id) {
  return (probe.turns[id] ??= { interims: 0, samples: 0, firstArrival: null, firstPlayAt: null });
}

function setStatus(text, kind) {
  const status = $("status");
  status.textContent = text;
  status.dataset.state = kind;
}

const player = new Player(context, (turnId, playedMs, finished) => {
  connection.sendJson({ type: "playback", turn_id: turnId, played_ms: playedMs, finished });
});
player.onFirstPlay = (turnId, at, arrival) => {
  const t = turn(turnId);
  t.firstPlayAt = at;
  t.firstArrival = arrival;
  if (t.latency && !t.drawn) drawLatency(turnId);
};

const meter = { peak: 0, frames: 0, shown: -1, sinceDraw: 0, fewestBetween: Infinity, loudest: 0 };
function showLevel(rms) {
  meter.peak = Math.max(meter.peak, rms);
  meter.sinceDraw += 1;
  if (++meter.frames < LEVEL_EVERY_FRAMES) return;
  const level = Math.round(Math.min(1, meter.peak * 4) * 50) / 50; // 2 % steps: unchanged draws nothing
  meter.peak = 0;
  meter.frames = 0;
  if (level === meter.shown) return;
  meter.shown = level;
  meter.fewestBetween = Math.min(meter.fewestBetween, meter.sinceDraw);
  meter.sinceDraw = 0;
  meter.loudest = Math.max(meter.loudest, level);
  $("level").firstElementChild.style.transform = `scaleX(${level})`; // composited: no layout
}

const microphone = new Microphone(context, (pcm, t, rms) => {
  const arrived = performance.now();
  const wait = (microphone.context.currentTime - t) * 1000;
  probe.frames.push([t, rms]);
  if (probe.frames.length > MAX_FRAMES_KEPT) probe.frames.splice(0, probe.frames.length - MAX_FRAMES_KEPT);
  showLevel(rms);
  if (state.mode === "push-to-talk" && !state.talking) pcm = new ArrayBuffer(pcm.byteLength); // silence
  connection.sendAudio(pcm);
  probe.frameWaits.push([wait, performance.now() - arrived]);
  if (probe.frameWaits.length > MAX_FRAMES_KEPT) probe.frameWaits.splice(0, probe.frameWaits.length - MAX_FRAMES_KEPT);
});

const connection = new Connection(
  () => ({
    type: "start",
    session_id: state.session,
    voice: state.voice,
    barge_in: true,
    interim: true,
    time_zone: Intl.DateTimeFormat().resolvedOptions().timeZone || "",
  }),
  {
    onReady: () => {
      probe.readyCount += 1;
      setStatus(microphone.running ? "Listening" : "Connected: start the microphone or type", "ready");
      refreshSession();
    },
    onMessage: (message) => {
      probe.messages += 1;
      handle(message);
    },
    onAudio: (header, pcm) => {
      const t = turn(header.turn_id);
      t.samples += pcm.length;
      player.enqueue(header.turn_id, pcm, header.sample_rate_hz);
    },
    onClose: (code, reason, retryMs) => {
      probe.closes.push({ code, reason });
      player.stop();
      const text = CLOSE_TEXT[code] || (code === 1006 ? "Connection to the gateway lost" : "Disconnected");
      // a refused message: the gateway's reason says what was wrong; a retried close says it already
      const detail = reason && retryMs === null ? `: ${reason}` : "";
      const retry = retryMs !== null ? ` (reconnecting in ${(retryMs / 1000).toFixed(1)} s)` : "";
      setStatus(`${text}${detail}${retry}`, "error");
      announce($("live"), `${text}${retry}`);
    },
  },
);

let userEntry = null;

function describeUnderstanding(m) {
  const slots = m.slots.map((s) => `${s.name}=${s.value} (${s.score.toFixed(2)})`).join(", ");
  const low = m.low_confidence ? " · low confidence" : "";
  return `${m.intent} (${m.score.toFixed(2)})${slots ? ` · ${slots}` : ""}${low}`;
}

function handle(message) {
  const t = message.turn_id ? turn(message.turn_id) : null;
  switch (message.type) {
    case "transcript":
      if (!message.is_final) {
        t.interims += 1;
        $("interim").textContent = message.text;
        return;
      }
      $("interim").textContent = "";
      t.transcript = message.text;
      userEntry = addLogEntry($("log"), "user", message.text, message.typed ? "typed" : "spoken");
      announce($("live"), `You said: ${message.text}`);
      return;
    case "understanding":
      t.intent = message.intent;
      t.slots = message.slots;
      if (userEntry) userEntry.lastElementChild.textContent += ` · ${describeUnderstanding(message)}`;
      return;
    case "reply":
      t.reply = message.text;
      addLogEntry($("log"), "assistant", message.text, message.action || "");
      announce($("live"), `Assistant: ${message.text}`);
      return;
    case "event":
      return handleEvent(message, t);
    case "error":
      addLogEntry($("log"), "error", `${message.stage} ${message.code}: ${message.message}`);
      announce($("live"), `Error: ${message.message}`);
      return;
    case "latency":
      t.latency = message;
      if (!t.samples || t.firstPlayAt !== null) drawLatency(message.turn_id);
      refreshSession();
      return;
  }
}

function handleEvent(message, t) {
  switch (message.event) {
    case "BARGE_IN": {
      const played = player.stop();
      probe.bargeIns.push({ turn_id: message.turn_id, at: context.currentTime, played_ms: played });
      addLogEntry($("log"), "notice", "(interrupted)", `heard ${played} ms`);
      return;
    }
    case "REPLY_AUDIO_DONE":
      player.audioDone(message.turn_id);
      return;
    case "ANNOUNCEMENT":
      addLogEntry($("log"), "notice", `⏰ ${message.detail || "announcement"}`);
      announce($("live"), `Announcement: ${message.detail}`);
      return;
    case "NO_INPUT":
      $("interim").textContent = "";
      return;
    case "SPEECH_STARTED":
      t.speechStarted = context.currentTime;
      return;
    case "END_OF_TURN":
      t.endOfTurn = context.currentTime;
      return;
  }
}

function drawLatency(turnId) {
  const t = probe.turns[turnId];
  t.drawn = true;
  const network = connection.rttMs !== null ? connection.rttMs / 2 : 0;
  const playout = t.firstPlayAt !== null ? (t.firstPlayAt - t.firstArrival) * 1000 : 0;
  const label = t.transcript ? `“${t.transcript.slice(0, 40)}”` : turnId;
  t.pageTotalMs = drawTurn($("waterfall"), label, t.latency, { network, playout });
}

async function refreshSession() {
  try {
    const response = await fetch(`/api/session/${encodeURIComponent(state.session)}`);
    if (response.ok) renderSession($("session"), await response.json());
    else if (response.status === 404) renderSession($("session"), { turns: 0 }); // new or reset
  } catch (e) {
    /* the panel refreshes with the next turn */
  }
}

async function loadVoices() {
  const select = $("voice");
  try {
    const response = await fetch("/api/voices");
    if (!response.ok) return;
    for (const voice of (await response.json()).voices) {
      const option = document.createElement("option");
      option.value = voice.name;
      option.textContent = `${voice.name} (${voice.language_code})`;
      select.append(option);
    }
  } catch (e) {
    return;
  }
  select.value = state.voice;
}

async function toggleMicrophone() {
  const button = $("mic");
  await context.resume();
  if (microphone.running) {
    microphone.stop();
    button.textContent = "Start microphone";
    button.setAttribute("aria-pressed", "false");
    setStatus("Microphone off", "ready");
    return;
  }
  try {
    await microphone.start(!state.headphones);
  } catch (error) {
    setStatus(`Microphone unavailable: ${error.message}`, "error");
    return;
  }
  button.textContent = "Stop microphone";
  button.setAttribute("aria-pressed", "true");
  setStatus(state.mode === "hands-free" ? "Listening" : "Hold to talk", "ready");
}

function setTalking(on) {
  if (state.mode !== "push-to-talk") return;
  state.talking = on;
  $("ptt").classList.toggle("talking", on);
  $("ptt").setAttribute("aria-pressed", String(on));
}

function wire() {
  $("session-id").textContent = state.session;
  drawLegend($("legend"));
  $("mic").addEventListener("click", toggleMicrophone);
  for (const radio of document.querySelectorAll("input[name=mode]")) {
    radio.addEventListener("change", () => {
      state.mode = radio.value;
      $("ptt").disabled = state.mode !== "push-to-talk";
    });
  }
  const ptt = $("ptt");
  ptt.addEventListener("pointerdown", () => setTalking(true));
  for (const name of ["pointerup", "pointerleave", "blur"]) ptt.addEventListener(name, () => setTalking(false));
  ptt.addEventListener("keydown", (e) => {
    if (e.code === "Space" && !e.repeat) {
      e.preventDefault();
      setTalking(true);
    }
  });
  ptt.addEventListener("keyup", (e) => e.code === "Space" && setTalking(false));
  $("typed").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("text").value.trim();
    if (!text) return;
    context.resume();
    if (connection.sendJson({ type: "text", text })) $("text").value = "";
    else setStatus("Not connected yet: try again in a moment", "error");
  });
  $("headphones").checked = state.headphones;
  $("headphones").addEventListener("change", async () => {
    state.headphones = $("headphones").checked;
    localStorage.setItem("rivulet.headphones", state.headphones ? "1" : "0");
    if (microphone.running) {
      microphone.stop();
      await toggleMicrophone(); // again, with the new echo cancellation setting
    }
  });
  $("voice").addEventListener("change", () => {
    state.voice = $("voice").value;
    localStorage.setItem("rivulet.voice", state.voice);
    connection.restart();
  });
  $("reset").addEventListener("click", async () => {
    const response = await fetch(`/api/session/${encodeURIComponent(state.session)}/reset`, { method: "POST" });
    addLogEntry($("log"), "notice", response.ok ? "Session reset" : `Reset failed (${response.status})`);
    refreshSession();
  });
}

wire();
loadVoices();
connection.open();
