// One conversation over the gateway's WebSocket (PROTOCOL.md): `start` first, then audio frames
// (binary) and JSON messages. Reconnects on its own, to the same session, after a close that says
// to (1001 going away, 1006 dropped, 4503 dialog unavailable, 4508 busy), backing off up to 5 s.
const RETRY_CODES = new Set([1001, 1006, 1011, 1012, 1013, 4503, 4508]);
const PING_MS = 2000;

export class Connection {
  constructor(startMessage, handlers) {
    this.startMessage = startMessage; // () => the `start` message (session id, voice, ...)
    this.handlers = handlers; // {onReady, onMessage, onAudio, onClose}
    this.ws = null;
    this.ready = false;
    this.retries = 0;
    this.rttMs = null;
    this.closedByUs = false;
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.ready = false;
    this.closedByUs = false;
    ws.onopen = () => ws.send(JSON.stringify(this.startMessage()));
    ws.onmessage = (event) => this._receive(event);
    ws.onclose = (event) => this._closed(event);
  }

  _receive(event) {
    if (event.data instanceof ArrayBuffer) {
      const view = new DataView(event.data);
      const size = view.getUint16(0, true);
      const header = JSON.parse(new TextDecoder().decode(new Uint8Array(event.data, 2, size)));
      this.handlers.onAudio(header, new Int16Array(event.data, 2 + size));
      return;
    }
    const message = JSON.parse(event.data);
    if (message.type === "ready") {
      this.ready = true;
      this.retries = 0;
      this._ping();
      this.handlers.onReady(message);
    } else if (message.type === "pong") {
      if (typeof message.t === "number") this.rttMs = performance.now() - message.t;
    } else {
      this.handlers.onMessage(message);
    }
  }

  _ping() {
    clearInterval(this.pinger);
    this.pinger = setInterval(() => this.sendJson({ type: "ping", t: performance.now() }), PING_MS);
    this.sendJson({ type: "ping", t: performance.now() });
  }

  _closed(event) {
    clearInterval(this.pinger);
    this.ready = false;
    const retry = !this.closedByUs && RETRY_CODES.has(event.code);
    const delayMs = retry ? Math.min(5000, 250 * 2 ** this.retries++) : null;
    this.handlers.onClose(event.code, event.reason, delayMs);
    if (retry) this.retryTimer = setTimeout(() => this.open(), delayMs);
  }

  /** Close and open again now (e.g. a new voice), same session. */
  restart() {
    clearTimeout(this.retryTimer);
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) {
      this.closedByUs = true;
      this.ws.onclose = () => this.open();
      this.ws.close(1000, "restart");
    } else {
      this.open();
    }
  }

  sendJson(message) {
    if (this.ready && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  sendAudio(buffer) {
    if (this.ready && this.ws.readyState === WebSocket.OPEN) this.ws.send(buffer);
  }
}
