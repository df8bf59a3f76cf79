// Rooms: the room list (markers, unread counts, last message), a room with its history and
// live messages, sending with sending / sent / failed per message, and the live frames.

import { call } from "./api.js";
import { el, errorText, panel } from "./dom.js";
import { displayName, roomTitle, state } from "./state.js";

const PAGE = 50;

/** Stickers the composer offers: from packages LINE lets an Official Account send (rooms with
 * LINE users refuse others), so they can go anywhere. */
const STICKERS = [
  { package_id: "446", sticker_id: "1988", label: "Thumbs up" },
  { package_id: "446", sticker_id: "1989", label: "Happy" },
  { package_id: "446", sticker_id: "1990", label: "Thank you" },
  { package_id: "789", sticker_id: "10855", label: "Hello" },
];

export async function loadRooms() {
  const answer = await call("GET", "/v1/rooms", { token: state.session.token });
  state.rooms = new Map(answer.rooms.map((room) => [room.id, room]));
  renderRoomList();
  await nameOneToOneRooms();
}

/** Unnamed 1:1 rooms are shown by their other participant, a LINE user by their LINE name. */
async function nameOneToOneRooms() {
  const token = state.session.token;
  const unnamed = [...state.rooms.values()].filter((room) => !room.name && !state.titles.has(room.id));
  await Promise.all(
    unnamed.map(async (room) => {
      try {
        const details = await call("GET", `/v1/rooms/${encodeURIComponent(room.id)}`, { token });
        const other = (details.members || []).map((m) => m.user).find((user) => user !== state.me.id);
        if (other) state.titles.set(room.id, other);
      } catch {
        // shown by its kind
      }
    }),
  );
  const lineUsers = [...state.titles.values()].filter((user) => user.startsWith("line:") && !state.names.has(user));
  if (lineUsers.length > 0) {
    try {
      const answer = await call("GET", `/v1/line/profiles?users=${encodeURIComponent(lineUsers.join(","))}`, { token });
      for (const profile of answer.profiles || []) state.names.set(profile.user, profile.display_name);
    } catch {
      // shown by their id
    }
  }
  renderRoomList();
  const title = document.getElementById("room-title");
  if (title && state.current) title.textContent = roomTitle(state.rooms.get(state.current));
}

function preview(frame) {
  if (!frame || frame.type !== "message") return "";
  const body = frame.body || {};
  if (body.type === "text") return body.text;
  if (body.type === "sticker") return "[sticker]";
  if (body.type === "image") return "[image]";
  if (body.type === "file") return `[file] ${body.name || ""}`;
  return `[${body.type}]`;
}

export function renderRoomList() {
  const list = document.getElementById("room-list");
  if (!list) return;
  const rooms = [...state.rooms.values()].sort((a, b) => (b.updated_at || "").localeCompare(a.updated_at || ""));
  list.replaceChildren(
    ...rooms.map((room) => {
      const markers = (room.markers || []).map((m) => el("span", { class: `marker marker-${m}` }, m === "line" ? "LINE" : "External"));
      const unread = room.unread > 0 ? el("span", { class: "unread", "aria-label": `${room.unread} unread` }, String(room.unread)) : null;
      return el(
        "li",
        { "data-room": room.id },
        el(
          "button",
          { type: "button", class: room.id === state.current ? "active" : "", "aria-current": room.id === state.current ? "true" : null, onclick: () => openRoom(room.id) },
          el("span", { class: "title" }, roomTitle(room), ...markers, unread),
          el("span", { class: "last" }, preview(room.last_message)),
        ),
      );
    }),
  );
}

export async function openRoom(roomId) {
  state.current = roomId;
  const room = state.rooms.get(roomId);
  renderRoomList();
  const log = el("ol", { id: "messages", class: "messages", role: "log", "aria-live": "polite", "aria-label": "Messages" });
  const earlier = el("button", { type: "button", id: "earlier", class: "link", onclick: () => loadEarlier(roomId) }, "Earlier messages");
  const input = el("input", { id: "compose", name: "text", autocomplete: "off" });
  const error = el("p", { id: "send-error", class: "error", role: "alert" });
  const stickers = el(
    "div",
    { id: "stickers", class: "stickers", role: "group", "aria-label": "Stickers", hidden: true },
    ...STICKERS.map((sticker) =>
      el("button", { type: "button", onclick: () => {
        send(roomId, { type: "sticker", package_id: sticker.package_id, sticker_id: sticker.sticker_id });
        stickers.hidden = true;
        input.focus();
      } }, sticker.label),
    ),
  );
  const stickerToggle = el("button", { type: "button", "aria-expanded": "false", "aria-controls": "stickers", onclick: () => {
    stickers.hidden = !stickers.hidden;
    stickerToggle.setAttribute("aria-expanded", String(!stickers.hidden));
  } }, "Stickers");
  const form = el(
    "form",
    { class: "compose" },
    el("label", { for: "compose" }, "Message"),
    input,
    el("button", { type: "submit" }, "Send"),
    stickerToggle,
    stickers,
    error,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value;
    error.textContent = "";
    if (!text.trim()) {
      error.textContent = "Write something first.";
      return;
    }
    send(roomId, { type: "text", text });
    input.value = "";
  });
  panel().replaceChildren(el("h2", { id: "room-title" }, roomTitle(room)), earlier, log, form);
  input.focus();
  if (!state.messages.has(roomId)) state.messages.set(roomId, new Map());
  // The newest page, not the page before the room list's last seq: a message the live stream
  // did not bring (a block lifted while it was on its way, say) is still in history.
  await loadPage(roomId);
  renderMessages();
  markRead(roomId);
}

async function loadPage(roomId, before) {
  const range = before === undefined ? "" : `before=${before}&`;
  try {
    const answer = await call("GET", `/v1/rooms/${encodeURIComponent(roomId)}/messages?${range}limit=${PAGE}`, {
      token: state.session.token,
    });
    const messages = state.messages.get(roomId);
    for (const frame of answer.events || []) messages.set(frame.seq, frame);
    const newest = Math.max(0, ...(answer.events || []).map((frame) => frame.seq));
    const room = state.rooms.get(roomId);
    if (room && newest > (room.last_seq || 0)) room.last_seq = newest;
    return (answer.events || []).length;
  } catch (err) {
    const error = document.getElementById("send-error");
    if (error) error.textContent = errorText(err);
    return 0;
  }
}

async function loadEarlier(roomId) {
  const messages = state.messages.get(roomId);
  const first = Math.min(...messages.keys());
  if (!Number.isFinite(first) || first <= 1) return;
  const got = await loadPage(roomId, first);
  renderMessages();
  if (got === 0) document.getElementById("earlier")?.setAttribute("hidden", "");
}

function messageItem(frame) {
  if (frame.type === "room_event") {
    return el("li", { class: "event" }, describeEvent(frame.event || {}));
  }
  const mine = frame.sender === state.me.id;
  return el(
    "li",
    { class: mine ? "message mine" : "message", "data-seq": frame.seq },
    el("span", { class: "sender" }, mine ? "You" : displayName(frame.sender)),
    el("span", { class: "body" }, bodyView(frame.body || {})),
    mine ? el("span", { class: "state" }, "sent") : null,
  );
}

function bodyView(body) {
  if (body.type === "text") return body.text;
  if (body.type === "sticker") {
    const known = STICKERS.find((s) => s.package_id === body.package_id && s.sticker_id === body.sticker_id);
    return el("span", { class: "sticker", role: "img", "aria-label": `Sticker${known ? ": " + known.label : ""}` }, `[sticker ${known ? known.label : body.package_id + "/" + body.sticker_id}]`);
  }
  if ((body.type === "image" || body.type === "file") && /^https?:/.test(body.url || "")) {
    return el("a", { href: body.url, rel: "noopener noreferrer", target: "_blank" }, body.name || body.type);
  }
  return `[${body.type}]`;
}

function describeEvent(event) {
  switch (event.type) {
    case "members_joined":
      return `${(event.users || []).map(displayName).join(", ")} joined`;
    case "member_left":
      return `${displayName(event.user)} left`;
    case "member_excluded":
      return `${displayName(event.user)} was excluded`;
    case "message_recalled":
      return "A message was recalled";
    case "room_created":
      return "The room was created";
    default:
      return event.type || "event";
  }
}

function renderMessages() {
  const log = document.getElementById("messages");
  if (!log || !state.current) return;
  const messages = [...(state.messages.get(state.current) || new Map()).values()].sort((a, b) => a.seq - b.seq);
  const pending = [...state.pending.entries()].filter(([, p]) => p.roomId === state.current && p.status !== "sent");
  log.replaceChildren(
    ...messages.map(messageItem),
    ...pending.map(([id, p]) =>
      el(
        "li",
        { class: `message mine ${p.status}`, "data-client-id": id },
        el("span", { class: "sender" }, "You"),
        el("span", { class: "body" }, bodyView(p.body)),
        el("span", { class: "state" }, p.status === "failed" ? `failed: ${p.error}` : "sending…"),
      ),
    ),
  );
  log.scrollTop = log.scrollHeight;
}

function send(roomId, body) {
  const clientMsgId = crypto.randomUUID();
  state.pending.set(clientMsgId, { roomId, body, status: "sending" });
  const sent = state.live && state.live.send({ type: "send", room_id: roomId, client_msg_id: clientMsgId, body });
  if (!sent) {
    const pending = state.pending.get(clientMsgId);
    pending.status = "failed";
    pending.error = "not connected";
  }
  renderMessages();
}

/** Our own message came back before its ack: it is no longer pending (the oldest pending
 * message of the room with the same body). */
function settleEcho(frame) {
  const body = canonical(frame.body);
  for (const [id, pending] of state.pending) {
    if (pending.roomId === frame.room_id && pending.status === "sending" && canonical(pending.body) === body) {
      state.pending.delete(id);
      return;
    }
  }
}

/** A body as text with its keys sorted (key order does not matter). */
function canonical(body) {
  return JSON.stringify(Object.fromEntries(Object.entries(body || {}).sort(([a], [b]) => a.localeCompare(b))));
}

function markRead(roomId) {
  const messages = state.messages.get(roomId);
  const seq = Math.max(0, ...messages.keys());
  const room = state.rooms.get(roomId);
  if (room) {
    room.unread = 0;
    room.read_seq = seq;
  }
  renderRoomList();
  if (seq > 0) call("POST", `/v1/rooms/${encodeURIComponent(roomId)}/read`, { token: state.session.token, body: { seq } }).catch(() => {});
}

export function onFrame(frame) {
  if (frame.type === "ack") {
    state.pending.delete(frame.client_msg_id);
    return;
  }
  if (frame.type === "error" && frame.client_msg_id && state.pending.has(frame.client_msg_id)) {
    const pending = state.pending.get(frame.client_msg_id);
    pending.status = "failed";
    pending.error = frame.message || frame.code;
    renderMessages();
    return;
  }
  if (frame.type !== "message" && frame.type !== "room_event") return;
  const room = state.rooms.get(frame.room_id);
  if (!room) {
    // A room this session has not seen (a LINE user followed, someone added us): list it.
    loadRooms();
    return;
  }
  if (!state.messages.has(frame.room_id)) state.messages.set(frame.room_id, new Map());
  state.messages.get(frame.room_id).set(frame.seq, frame);
  if (frame.type === "message" && frame.sender === state.me.id) settleEcho(frame);
  room.last_seq = Math.max(room.last_seq || 0, frame.seq);
  if (frame.type === "message") {
    room.last_message = frame;
    room.updated_at = frame.sent_at || room.updated_at;
  }
  if (frame.room_id === state.current) {
    renderMessages();
    markRead(frame.room_id);
  } else {
    if (frame.type === "message" && frame.sender !== state.me.id) room.unread = (room.unread || 0) + 1;
    renderRoomList();
  }
}

