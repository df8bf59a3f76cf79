// The public API on this origin: JSON calls with the session's bearer token, the session kept
// in localStorage (a reload keeps it), and the WebSocket with reconnection and sync.

const SESSION_KEY = "chat.session";

/** An API refusal: the HTTP status and the API's stable code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function loadSession() {
  try {
    const saved = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
    return saved && typeof saved.token === "string" ? saved : null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  localStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function clearSession() {
  localStorage.removeItem(SESSION_KEY);
}

/** fetch(), with an unreachable engine as an ApiError. */
async function request(path, init) {
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError(0, "network", "The engine cannot be reached; try again.");
  }
}

/** The ApiError of an answer that is not ok, from its body (`{error: {code, message}}`). */
function refusal(res, parsed) {
  const error = parsed && parsed.error;
  return new ApiError(res.status, error?.code || "http_" + res.status, error?.message || `The engine answered ${res.status}.`);
}

function parseJson(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

/** Call the API; the parsed body, or an ApiError with the API's code and message. */
export async function call(method, path, { token, body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await request(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const parsed = parseJson(await res.text());
  if (!res.ok) throw refusal(res, parsed);
  return parsed;
}

/** A file the API serves to the token's holder (media, QR codes), as a data: URL (the page's
 * policy allows data: images, not blob:) and its media type. */
export async function readDataUrl(path, { token }) {
  const res = await request(path, { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) throw refusal(res, parseJson(await res.text()));
  const blob = await res.blob();
  const dataUrl = await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
  return { dataUrl, type: (blob.type || "").split(";")[0].trim().toLowerCase() };
}

/**
 * The live connection: `onFrame` gets every server frame; after a drop it reconnects with a
 * growing delay (capped) and asks `lastSeqs()` what to sync, so nothing is missed.
 */
export class Live {
  constructor(token, { onFrame, onState, lastSeqs }) {
    this.token = token;
    this.onFrame = onFrame;
    this.onState = onState;
    this.lastSeqs = lastSeqs;
    this.delay = 500;
    this.closed = false;
    this.socket = null;
    this.open();
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/v1/ws?access_token=${encodeURIComponent(this.token)}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.delay = 500;
      this.onState("online");
      const rooms = this.lastSeqs();
      if (Object.keys(rooms).length > 0) this.send({ type: "sync", rooms });
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onFrame(frame);
    });
    socket.addEventListener("close", () => {
      if (this.closed) return;
      this.onState("reconnecting");
      setTimeout(() => this.closed || this.open(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    });
  }

  /** Send a frame; false when the connection is not open (the caller marks the message failed). */
  send(frame) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  close() {
    this.closed = true;
    if (this.socket) this.socket.close();
  }
}
