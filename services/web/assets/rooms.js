// Rooms: the room list (markers, unread counts, last message), a room with its history and
// live messages, sending text, stickers and attachments (by URL) with sending / sent / failed
// per message, recalling one's own messages, images and files shown in place, and the live
// frames (notifications go to their own screen). The header's call buttons and the calls'
// history text come from call.js.

import { call, readDataUrl } from "./api.js";
import { callButtons, callEventText } from "./call.js";
import { el, errorText, panel } from "./dom.js";
import { displayName, emit, on, roomTitle, state } from "./state.js";

// call.js asks for people's names (a caller, a participant) and to open a call's room.
on("names-wanted", (users) => nameThem(users));
on("room-open-requested", (roomId) => state.rooms.has(roomId) && openRoom(roomId));

const PAGE = 50;

/** Stickers the composer offers: from packages LINE lets an Official Account send (rooms with
 * LINE users refuse others), so they can go anywhere. */
const STICKERS = [
  { package_id: "446", sticker_id: "1988", label: "Thumbs up" },
  { package_id: "446", sticker_id: "1989", label: "Happy" },
  { package_id: "446", sticker_id: "1990", label: "Thank you" },
  { package_id: "789", sticker_id: "10855", label: "Hello" },
];

/** Image types shown inline when fetched from the engine (what its media route serves inline). */
const INLINE_IMAGES = ["image/png", "image/jpeg", "image/gif", "image/webp"];

export async function loadRooms() {
  const answer = await call("GET", "/v1/rooms", { token: state.session.token });
  state.rooms = new Map(answer.rooms.map((room) => [room.id, room]));
  renderRoomList();
  await nameOneToOneRooms();
}

/** At most this many people per call to `GET /v1/users?ids=` and `GET /v1/line/profiles`. */
const NAMES_PER_CALL = 100;
/** Someone whose name was not given (not a person the caller may know, say) is asked for again
 * only after this long. */
const ASK_AGAIN_MS = 60_000;
/** The names being asked for now: user id -> {session, promise} (each asked for once at a time). */
const asking = new Map();

/**
 * People are shown by name: members by their display name (`GET /v1/users?ids=`: those of the
 * caller's company or one trusted both ways; the API leaves the others out), LINE users by
 * their LINE name (`GET /v1/line/profiles`). Asks for the ones not known yet, 100 a call, and
 * keeps the answers in `state.names` (and a member's company in `state.companies`). A failure
 * is silent: those people stay shown by their id. Resolves to whether a name was learnt.
 */
export async function learnNames(users) {
  const session = state.session;
  if (!session) return false;
  const now = Date.now();
  const refusedLately = (user) => state.unnamed.has(user) && now - state.unnamed.get(user) < ASK_AGAIN_MS;
  const wanted = [...new Set(users)].filter((user) => typeof user === "string" && user && !state.names.has(user) && !refusedLately(user));
  const asked = (user) => asking.get(user)?.session === session;
  const waits = [...new Set(wanted.filter(asked).map((user) => asking.get(user).promise))];
  const ask = wanted.filter((user) => !asked(user));
  const line = ask.filter((user) => user.startsWith("line:"));
  const members = ask.filter((user) => !user.startsWith("line:"));
  const calls = [
    ...chunks(members).map((ids) => askNames(session, ids, `/v1/users?ids=${encodeURIComponent(ids.join(","))}`, (answer) =>
      (answer.users || []).map((u) => ({ user: u.id, name: u.display_name, company: { tenant: u.tenant, name: u.tenant_name } })),
    )),
    ...chunks(line).map((ids) => askNames(session, ids, `/v1/line/profiles?users=${encodeURIComponent(ids.join(","))}`, (answer) =>
      (answer.profiles || []).map((p) => ({ user: p.user, name: p.display_name })),
    )),
  ];
  const learnt = await Promise.all([...calls, ...waits]);
  return learnt.some(Boolean);
}

function chunks(ids) {
  const out = [];
  for (let i = 0; i < ids.length; i += NAMES_PER_CALL) out.push(ids.slice(i, i + NAMES_PER_CALL));
  return out;
}

/** One call for `ids`' names; resolves to whether one was learnt (never rejects). */
function askNames(session, ids, path, read) {
  const promise = (async () => {
    try {
      const answer = await call("GET", path, { token: session.token });
      // Logged out (or in as someone else) meanwhile: the answer was for another session.
      if (state.session !== session) return false;
      const named = new Set();
      for (const { user, name, company } of read(answer)) {
        if (!ids.includes(user) || !name) continue;
        state.names.set(user, name);
        if (company) state.companies.set(user, company);
        state.unnamed.delete(user);
        named.add(user);
      }
      for (const user of ids) if (!named.has(user)) state.unnamed.set(user, Date.now());
      return named.size > 0;
    } catch {
      return false; // shown by their id
    } finally {
      for (const user of ids) if (asking.get(user)?.promise === promise) asking.delete(user);
    }
  })();
  for (const user of ids) asking.set(user, { session, promise });
  return promise;
}

/** The people a room's frames name: senders, and who joined, left or was excluded. */
function peopleIn(frames) {
  const people = [];
  for (const frame of frames) {
    if (frame.type === "message") people.push(frame.sender);
    const event = frame.type === "room_event" ? frame.event || {} : null;
    if (event) people.push(...(event.users || []), event.user, event.by);
  }
  return people.filter(Boolean);
}

/** Learn the names of `users`; when some arrive, show them where the ids were. */
function nameThem(users) {
  learnNames(users).then((learnt) => {
    if (!learnt) return;
    renderRoomList();
    showTitle();
    renderMessages();
    emit("names-learnt");
  });
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
  await learnNames([...state.titles.values()]);
  renderRoomList();
  showTitle();
}

/** The open room's title, as the list names it. */
function showTitle() {
  const title = document.getElementById("room-title");
  const room = state.current && state.rooms.get(state.current);
  if (title && room && title.dataset.room === room.id) title.textContent = roomTitle(room);
}

function preview(frame) {
  if (!frame || frame.type !== "message") return "";
  if (frame.recalled || !frame.body) return "Message recalled";
  const body = frame.body;
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

/** The nodes of the open room's log, by key, with what they show (re-used while unchanged, so
 * images are not fetched again and a focused button keeps its focus). */
let rendered = new Map();

export async function openRoom(roomId) {
  state.current = roomId;
  rendered = new Map();
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
        stickerToggle.setAttribute("aria-expanded", "false");
        input.focus();
      } }, sticker.label),
    ),
  );
  const stickerToggle = el("button", { type: "button", "aria-expanded": "false", "aria-controls": "stickers", onclick: () => {
    stickers.hidden = !stickers.hidden;
    stickerToggle.setAttribute("aria-expanded", String(!stickers.hidden));
  } }, "Stickers");
  const attach = attachForm(roomId);
  const attachToggle = el("button", { type: "button", "aria-expanded": "false", "aria-controls": "attach", onclick: () => {
    attach.hidden = !attach.hidden;
    attachToggle.setAttribute("aria-expanded", String(!attach.hidden));
    if (!attach.hidden) attach.querySelector("#attach-url").focus();
  } }, "Attach");
  const form = el(
    "form",
    { class: "compose" },
    el("label", { for: "compose" }, "Message"),
    input,
    el("button", { type: "submit" }, "Send"),
    el("div", { class: "compose-tools" }, stickerToggle, attachToggle),
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
  const head = el(
    "div",
    { class: "room-head" },
    el("h2", { id: "room-title", "data-room": roomId }, roomTitle(room)),
    callButtons(room),
    el("button", { type: "button", id: "room-info-button", "aria-haspopup": "dialog", onclick: () => emit("room-info-requested", roomId) }, "Room info"),
  );
  const roomError = el("p", { id: "room-error", class: "error", role: "alert" });
  panel().replaceChildren(head, roomError, earlier, log, form, attach);
  input.focus();
  if (!state.messages.has(roomId)) state.messages.set(roomId, new Map());
  // The newest page, not the page before the room list's last seq: a message the live stream
  // did not bring (a block lifted while it was on its way, say) is still in history.
  await loadPage(roomId);
  renderMessages();
  markRead(roomId);
}

/** A notice above the open room's messages (an alert: refusals, who was left out). */
export function roomNotice(text) {
  const notice = document.getElementById("room-error");
  if (notice) notice.textContent = text;
}

/** Attachments by URL: the API has no upload, so the file must already be online. */
function attachForm(roomId) {
  const kind = el(
    "select",
    { id: "attach-kind", name: "kind" },
    el("option", { value: "image" }, "Image"),
    el("option", { value: "file" }, "File"),
  );
  const url = el("input", { id: "attach-url", name: "url", type: "url", inputmode: "url", autocomplete: "off", placeholder: "https://", "aria-describedby": "attach-hint" });
  const name = el("input", { id: "attach-name", name: "name", autocomplete: "off" });
  const error = el("p", { id: "attach-error", class: "error", role: "alert" });
  const form = el(
    "form",
    { id: "attach", class: "attach", "aria-label": "Attach a file by its address", hidden: true, novalidate: true },
    el("label", { for: "attach-kind" }, "Attachment kind"),
    kind,
    el("label", { for: "attach-url" }, "File address (URL)"),
    url,
    el("label", { for: "attach-name" }, "File name (optional)"),
    name,
    el(
      "p",
      { id: "attach-hint", class: "hint" },
      "There is no upload here: the file must already be online at this address (http:// or https://), and everyone in the room must be able to reach it there.",
    ),
    el("button", { type: "submit" }, "Send attachment"),
    error,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    error.textContent = "";
    const address = url.value.trim();
    if (!address) {
      error.textContent = "Enter the file's address first.";
      url.focus();
      return;
    }
    const body = { type: kind.value, url: address };
    if (name.value.trim()) body.name = name.value.trim();
    send(roomId, body);
    url.value = "";
    name.value = "";
  });
  return form;
}

async function loadPage(roomId, before) {
  const range = before === undefined ? "" : `before=${before}&`;
  try {
    const answer = await call("GET", `/v1/rooms/${encodeURIComponent(roomId)}/messages?${range}limit=${PAGE}`, {
      token: state.session.token,
    });
    const messages = state.messages.get(roomId);
    for (const frame of answer.events || []) messages.set(frame.seq, frame);
    // Who the page names (and whom an unnamed 1:1 room is titled by): by name once known.
    nameThem([...peopleIn(answer.events || []), state.titles.get(roomId)]);
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

/** What a message's node shows: a new node is made when this changes. */
function signature(frame) {
  if (frame.type === "room_event") return "e" + describeEvent(frame.event || {});
  return JSON.stringify([frame.recalled === true, frame.body || null, displayName(frame.sender), frame.sender === state.me.id]);
}

function messageItem(frame, roomId) {
  if (frame.type === "room_event") {
    const type = (frame.event || {}).type;
    const isCall = type === "call_started" || type === "call_ended";
    return el("li", { class: isCall ? "event call-event" : "event", "data-event": type }, describeEvent(frame.event || {}));
  }
  const mine = frame.sender === state.me.id;
  const recalled = frame.recalled === true || !frame.body;
  const classes = ["message", mine ? "mine" : "", recalled ? "recalled" : ""].filter(Boolean).join(" ");
  const sender = mine ? "You" : displayName(frame.sender);
  let actions = null;
  if (mine && !recalled) {
    const recall = el(
      "button",
      { type: "button", class: "recall", "aria-label": `Recall your message: ${shortText(frame.body)}` },
      "Recall",
    );
    recall.addEventListener("click", () => recallMessage(roomId, frame, recall));
    actions = el("span", { class: "state" }, "sent ", recall);
  }
  return el(
    "li",
    { class: classes, "data-seq": frame.seq, "data-message-id": frame.message_id },
    el("span", { class: "sender" }, sender),
    recalled
      ? el("span", { class: "body recalled-note" }, mine ? "You recalled this message." : `${sender} recalled this message.`)
      : el("span", { class: "body" }, bodyView(frame.body)),
    actions,
  );
}

/** A message in a few words, to name its buttons. */
function shortText(body) {
  const text = preview({ type: "message", body }) || "message";
  return text.length > 40 ? text.slice(0, 39) + "…" : text;
}

async function recallMessage(roomId, frame, button) {
  roomNotice("");
  button.disabled = true;
  try {
    await call("DELETE", `/v1/rooms/${encodeURIComponent(roomId)}/messages/${encodeURIComponent(frame.message_id)}`, {
      token: state.session.token,
    });
    // The room's `message_recalled` event says so too; shown now already.
    applyRecall(roomId, frame.seq);
    renderMessages();
    renderRoomList();
  } catch (err) {
    button.disabled = false;
    roomNotice(`Could not recall the message: ${errorText(err)}`);
  }
}

function bodyView(body) {
  if (!body) return "";
  if (body.type === "text") return body.text;
  if (body.type === "sticker") {
    const known = STICKERS.find((s) => s.package_id === body.package_id && s.sticker_id === body.sticker_id);
    return el("span", { class: "sticker", role: "img", "aria-label": `Sticker${known ? ": " + known.label : ""}` }, `[sticker ${known ? known.label : body.package_id + "/" + body.sticker_id}]`);
  }
  if (body.type === "image") return imageView(body);
  if (body.type === "file") return fileView(body);
  if (body.type === "location") {
    return el("span", { class: "location" }, `[location] ${[body.title, body.address].filter(Boolean).join(", ") || `${body.latitude}, ${body.longitude}`}`);
  }
  return `[${body.type}]`;
}

/** Where a medium comes from: `token` for the engine's own media (`/v1/...` on this origin,
 * e.g. LINE users' images: read with the bearer token, shown from a data: URL), `direct` for
 * other http(s) addresses (the browser loads them; the page's policy allows https images), or
 * null for anything else (never loaded). */
function mediaSource(url) {
  let parsed;
  try {
    parsed = new URL(url, location.href);
  } catch {
    return null;
  }
  if (parsed.origin === location.origin && parsed.pathname.startsWith("/v1/")) return { kind: "token", url: parsed.href };
  if (parsed.protocol === "https:" || parsed.protocol === "http:") return { kind: "direct", url: parsed.href };
  return null;
}

/** The engine's media read with the session's token, as data: URLs, once per address (the
 * session's `state.media` keeps the last ones; a logout forgets them). */
function fetchMedia(url) {
  const cache = state.media;
  let loading = cache.get(url);
  if (!loading) {
    loading = readDataUrl(url, { token: state.session.token });
    loading.catch(() => cache.delete(url));
  }
  cache.set(url, loading); // now the newest
  return loading;
}

function imageView(body) {
  const source = mediaSource(body.url || "");
  const label = body.name ? `Image: ${body.name}` : "Image";
  if (!source) return `[image] ${body.name || ""}`;
  const img = el("img", { alt: label, class: "inline-image" });
  const failed = (why) => {
    const note = el("span", { class: "media-error" }, `${label} could not be shown${why ? ": " + why : ""}`);
    (img.parentElement?.tagName === "A" ? img.parentElement : img).replaceWith(note);
  };
  img.addEventListener("load", () => keepAtBottom(img));
  if (source.kind === "direct") {
    img.addEventListener("error", () => failed(""), { once: true });
    img.src = source.url;
    return el("a", { href: source.url, target: "_blank", rel: "noopener noreferrer", class: "image-link" }, img);
  }
  fetchMedia(source.url).then(
    (media) => {
      if (INLINE_IMAGES.includes(media.type)) img.src = media.dataUrl;
      else img.replaceWith(fileView({ ...body, name: body.name || "image" }));
    },
    (err) => failed(errorText(err)),
  );
  return img;
}

function fileView(body) {
  const source = mediaSource(body.url || "");
  const name = body.name || fileNameOf(body.url) || "file";
  const size = Number.isFinite(body.size) ? el("span", { class: "file-size" }, ` (${formatSize(body.size)})`) : null;
  const kind = el("span", { class: "file-kind" }, "File: ");
  if (!source) return el("span", { class: "file" }, kind, name, size);
  if (source.kind === "direct") {
    return el("span", { class: "file" }, kind, el("a", { href: source.url, target: "_blank", rel: "noopener noreferrer", download: name }, name), size);
  }
  const link = el("a", { href: source.url, download: name }, name);
  link.addEventListener("click", async (event) => {
    // A plain link would go without the token: read it with the token, then save it.
    event.preventDefault();
    try {
      const media = await fetchMedia(source.url);
      const save = el("a", { href: media.dataUrl, download: name, hidden: true });
      document.body.append(save);
      save.click();
      save.remove();
    } catch (err) {
      roomNotice(`Could not download ${name}: ${errorText(err)}`);
    }
  });
  return el("span", { class: "file" }, kind, link, size);
}

function fileNameOf(url) {
  try {
    const last = new URL(url, location.href).pathname.split("/").filter(Boolean).pop();
    return last ? decodeURIComponent(last) : "";
  } catch {
    return "";
  }
}

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** An image that loaded while the log showed its end keeps the end in view. */
function keepAtBottom(img) {
  const log = document.getElementById("messages");
  if (log && log.contains(img) && log.scrollHeight - log.scrollTop - log.clientHeight < img.clientHeight + 80) {
    log.scrollTop = log.scrollHeight;
  }
}

function describeEvent(event) {
  switch (event.type) {
    case "members_joined":
      return `${(event.users || []).map(displayName).join(", ")} joined`;
    case "member_left":
      return `${displayName(event.user)} left`;
    case "member_removed":
      return `${displayName(event.user)} was removed by ${displayName(event.by)}`;
    case "member_excluded":
      return `${displayName(event.user)} was excluded`;
    case "message_recalled":
      return `${displayName(event.by)} recalled a message`;
    case "call_started":
    case "call_ended":
      return callEventText(event);
    case "room_created":
      return event.name ? `The room “${event.name}” was created` : "The room was created";
    case "info_updated": {
      const changes = [];
      if (event.name) changes.push(`renamed the room to “${event.name}”`);
      if (event.description !== undefined && event.description !== null) changes.push("changed the description");
      if (event.photo_url !== undefined && event.photo_url !== null) changes.push("changed the photo");
      return `${displayName(event.by)} ${changes.length ? changes.join(" and ") : "edited the room info"}`;
    }
    default:
      return event.type || "event";
  }
}

function renderMessages() {
  const log = document.getElementById("messages");
  if (!log || !state.current) return;
  const roomId = state.current;
  const stored = state.messages.get(roomId) || new Map();
  const messages = [...stored.values()].sort((a, b) => a.seq - b.seq);
  const pending = [...state.pending.entries()].filter(([, p]) => p.roomId === roomId && p.status !== "sent");
  const next = new Map();
  const nodes = [];
  const keep = (key, sig, make) => {
    let entry = rendered.get(key);
    if (!entry || entry.sig !== sig) entry = { sig, node: make() };
    next.set(key, entry);
    nodes.push(entry.node);
  };
  for (const frame of messages) {
    // A recall is shown on the message itself when that message is on the page.
    const event = frame.type === "room_event" ? frame.event || {} : null;
    if (event && event.type === "message_recalled" && stored.get(event.message_seq)?.type === "message") continue;
    keep(`s${frame.seq}`, signature(frame), () => messageItem(frame, roomId));
  }
  for (const [id, p] of pending) {
    keep(`c${id}`, `${p.status}|${p.error || ""}`, () => pendingItem(id, p));
  }
  rendered = next;
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const grew = nodes.length > log.children.length;
  syncChildren(log, nodes);
  if (atBottom || grew) log.scrollTop = log.scrollHeight;
}

function pendingItem(id, p) {
  const failed = p.status === "failed";
  return el(
    "li",
    { class: `message mine ${p.status}`, "data-client-id": id },
    el("span", { class: "sender" }, "You"),
    el("span", { class: "body" }, bodyView(p.body)),
    el(
      "span",
      { class: "state" },
      failed ? `failed: ${p.error} ` : "sending…",
      failed
        ? el("button", { type: "button", class: "dismiss", "aria-label": `Dismiss the failed message: ${shortText(p.body)}`, onclick: () => {
          state.pending.delete(id);
          renderMessages();
        } }, "Dismiss")
        : null,
    ),
  );
}

/** Make `parent`'s children `nodes`, moving only what must move (focus stays where it was). */
function syncChildren(parent, nodes) {
  nodes.forEach((node, i) => {
    const current = parent.children[i];
    if (current !== node) parent.insertBefore(node, current || null);
  });
  while (parent.children.length > nodes.length) parent.lastElementChild.remove();
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

/** The message at `seq` was recalled: it keeps its place, without its body. */
function applyRecall(roomId, seq) {
  const target = state.messages.get(roomId)?.get(seq);
  if (target && target.type === "message") {
    target.recalled = true;
    target.body = null;
  }
  const room = state.rooms.get(roomId);
  if (room?.last_message?.seq === seq) room.last_message = { ...room.last_message, recalled: true, body: null };
}

/** A room's new name, description or photo (an `info_updated` event or a PATCH answer). */
export function applyRoomInfo(roomId, info) {
  const room = state.rooms.get(roomId);
  if (!room) return;
  for (const key of ["name", "description", "photo_url"]) {
    if (info[key] !== undefined && info[key] !== null) room[key] = info[key];
  }
  renderRoomList();
  showTitle();
}

/** The caller is no longer in the room (left it, or was removed): it leaves the list. */
export function forgetRoom(roomId, message) {
  const room = state.rooms.get(roomId);
  state.rooms.delete(roomId);
  state.messages.delete(roomId);
  if (state.current === roomId) {
    state.current = null;
    panel().replaceChildren(el("h2", { id: "room-title" }, room ? roomTitle(room) : "Room"), el("p", { class: "hint", role: "status" }, message));
  }
  renderRoomList();
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
  nameThem(peopleIn([frame]));
  room.last_seq = Math.max(room.last_seq || 0, frame.seq);
  if (frame.type === "message") {
    room.last_message = frame;
    room.updated_at = frame.sent_at || room.updated_at;
  }
  if (frame.type === "room_event") {
    const event = frame.event || {};
    if (event.type === "message_recalled") applyRecall(frame.room_id, event.message_seq);
    if (event.type === "info_updated") applyRoomInfo(frame.room_id, event);
    if ((event.type === "member_left" || event.type === "member_removed") && event.user === state.me.id) {
      emit("room-changed", frame.room_id);
      forgetRoom(frame.room_id, event.type === "member_left" ? "You left this room." : "You were removed from this room.");
      return;
    }
    emit("room-changed", frame.room_id);
  }
  if (frame.room_id === state.current) {
    renderMessages();
    markRead(frame.room_id);
  } else {
    if (frame.type === "message" && frame.sender !== state.me.id) room.unread = (room.unread || 0) + 1;
    renderRoomList();
  }
}
