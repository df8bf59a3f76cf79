// The client's state, shared by its views, and how users and rooms are named on screen.

/** How many people's names (and companies) a session keeps: past that, the oldest learnt go
 * (and are asked for again when shown). */
export const NAMES_KEPT = 2000;

/** How many files read from the engine (images, LINE media, as data: URLs) a session keeps. */
const MEDIA_KEPT = 40;

/** A Map that keeps its newest `limit` entries: setting a key makes it the newest. */
class Recent extends Map {
  constructor(limit) {
    super();
    this.limit = limit;
  }

  set(key, value) {
    this.delete(key);
    super.set(key, value);
    while (this.size > this.limit) this.delete(this.keys().next().value);
    return this;
  }
}

function fresh() {
  return {
    session: null,
    me: null,
    rooms: new Map(), // id -> room from GET /v1/rooms
    current: null, // the open room's id
    messages: new Map(), // room id -> Map(seq -> frame)
    pending: new Map(), // client_msg_id -> {roomId, body, status, error}
    live: null,
    titles: new Map(), // room id -> the other participant of an unnamed 1:1 room
    // user id -> display name: members' (GET /v1/users), LINE users' LINE names
    names: new Recent(NAMES_KEPT),
    companies: new Recent(NAMES_KEPT), // member id -> {tenant, name}: their company (GET /v1/users)
    unnamed: new Recent(NAMES_KEPT), // user id -> when their name was asked for and not given
    media: new Recent(MEDIA_KEPT), // address -> the engine's file read with this session's token
  };
}

export const state = fresh();

/** Logging out: nothing of the session stays (rooms, messages, whom it knew by name). */
export function resetState() {
  Object.assign(state, fresh());
}

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

/** A person's name with their company when they are of another one: "Carol Chen (Globex)". */
export function nameWithCompany(user) {
  const company = state.companies.get(user);
  return company && company.tenant !== state.me?.tenant ? `${displayName(user)} (${company.name})` : displayName(user);
}

export function roomTitle(room) {
  if (room.name) return room.name;
  if (state.titles.has(room.id)) return displayName(state.titles.get(room.id));
  const kinds = { direct: "Direct chat", external_direct: "External chat", line_direct: "LINE chat" };
  return kinds[room.kind] || "Conversation";
}

