// The client's state, shared by its views, and how users and rooms are named on screen.

export const state = {
  session: null,
  rooms: new Map(), // id -> room from GET /v1/rooms
  current: null, // the open room's id
  messages: new Map(), // room id -> Map(seq -> frame)
  pending: new Map(), // client_msg_id -> {roomId, body, status, error}
  live: null,
  titles: new Map(), // room id -> the other participant of an unnamed 1:1 room
  names: new Map(), // line:<id> -> LINE display name
};

/** The screens tell each other what happened without importing each other (rooms.js says a
 * room changed or that its info was asked for; room-info.js listens). */
const bus = new EventTarget();

export function emit(name, detail) {
  bus.dispatchEvent(new CustomEvent(name, { detail }));
}

export function on(name, handler) {
  bus.addEventListener(name, (event) => handler(event.detail));
}

export function displayName(user) {
  return state.names.get(user) || user;
}

export function roomTitle(room) {
  if (room.name) return room.name;
  if (state.titles.has(room.id)) return displayName(state.titles.get(room.id));
  const kinds = { direct: "Direct chat", external_direct: "External chat", line_direct: "LINE chat" };
  return kinds[room.kind] || "Conversation";
}

