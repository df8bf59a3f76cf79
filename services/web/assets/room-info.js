// Room info and New room. Room info is a dialog over the open room: its name, description,
// kind, markers and participants; renaming and editing the description, adding people and
// leaving, where the room's kind allows it (the API decides; its refusals are shown). New room
// picks people (the caller's colleagues, Clients/Partners, LINE friends, or user ids), offers
// the rooms that already have exactly those participants first, then creates one.

import { call } from "./api.js";
import { confirmStep, el, errorText, panel } from "./dom.js";
import { applyRoomInfo, forgetRoom, learnNames, loadRooms, openRoom, renderRoomList, roomNotice } from "./rooms.js";
import { displayName, nameWithCompany, on, roomTitle, state } from "./state.js";

// rooms.js asks for Room info (its header button) and says when a room changed.
on("room-info-requested", (roomId) => openRoomInfo(roomId));
on("room-changed", (roomId) => roomInfoChanged(roomId));

const KINDS = {
  direct: "1:1 chat",
  group: "Group",
  external_direct: "External 1:1 chat",
  external_group: "External group",
  line_direct: "LINE 1:1 chat",
  line_group: "LINE group",
};

const REASONS = {
  not_authorized: "not allowed in this room",
  unknown_user: "no such user",
  external_not_authorized: "the two companies do not trust each other",
  line_not_authorized: "may not use LINE",
  line_access_revoked: "LINE permission withdrawn",
  trust_revoked: "trust withdrawn",
};

const ONE_TO_ONE = ["direct", "external_direct", "line_direct"];

function excludedText(excluded) {
  return (excluded || []).map((e) => `${displayName(e.user)} (${REASONS[e.reason] || e.reason})`).join(", ");
}

function markerViews(markers) {
  return (markers || []).map((m) => el("span", { class: `marker marker-${m}` }, m === "line" ? "LINE" : "External"));
}

// ----- Room info -----

/** The open dialog: its room and how to read its details again. */
let current = null;

export async function openRoomInfo(roomId) {
  document.getElementById("room-info")?.close();
  const room = state.rooms.get(roomId);
  if (!room) return;
  const error = el("p", { id: "room-info-error", class: "error", role: "alert" });
  const status = el("p", { id: "room-info-status", class: "status-line", role: "status" });
  const facts = el("dl", { class: "facts" });
  const people = el("ul", { id: "participants", class: "participants", "aria-label": "Participants" });
  const actions = el("div", { class: "room-actions" });
  const dialog = el(
    "dialog",
    { id: "room-info", class: "dialog", "aria-labelledby": "room-info-title" },
    el(
      "div",
      { class: "dialog-head" },
      el("h2", { id: "room-info-title" }, "Room info"),
      el("button", { type: "button", class: "close", onclick: () => dialog.close() }, "Close room info"),
    ),
    error,
    status,
    facts,
    el("h3", {}, "Participants"),
    people,
    actions,
  );
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (current?.dialog === dialog) current = null;
    document.getElementById("room-info-button")?.focus();
  });
  document.body.append(dialog);
  dialog.showModal();

  const refresh = async () => {
    try {
      const details = await call("GET", `/v1/rooms/${encodeURIComponent(roomId)}`, { token: state.session.token });
      await learnNames((details.members || []).map((m) => m.user));
      showDetails(details, facts, people);
      return details;
    } catch (err) {
      error.textContent = errorText(err);
      return null;
    }
  };
  current = { roomId, dialog, refresh };
  facts.replaceChildren(el("dt", {}, "Name"), el("dd", {}, roomTitle(room)));
  const details = await refresh();
  if (details && dialog.isConnected) actions.replaceChildren(...roomActions(roomId, details, { error, status, refresh, dialog }));
}

/** A live event changed the room (its name, who is in it): the open dialog reads it again. */
export function roomInfoChanged(roomId) {
  if (current && current.roomId === roomId && current.dialog.isConnected) current.refresh();
}

function showDetails(details, facts, people) {
  const fact = (term, value) => [el("dt", {}, term), el("dd", {}, value)];
  const room = state.rooms.get(details.id) || details;
  facts.replaceChildren(
    ...fact("Name", details.name || el("span", { class: "hint-inline" }, `${roomTitle(room)} (no name)`)),
    ...fact("Description", details.description || el("span", { class: "hint-inline" }, "none")),
    ...fact("Kind", KINDS[details.kind] || details.kind),
    ...fact("Markers", details.markers && details.markers.length ? markerViews(details.markers) : el("span", { class: "hint-inline" }, "none")),
  );
  const members = [...(details.members || [])].sort((a, b) => displayName(a.user).localeCompare(displayName(b.user)));
  people.replaceChildren(
    ...members.map((m) =>
      el(
        "li",
        { "data-user": m.user },
        el("span", { class: "person" }, m.user === state.me.id ? `${displayName(m.user)} (you)` : nameWithCompany(m.user)),
        m.kind === "line_user" ? el("span", { class: "marker marker-line" }, "LINE") : null,
        m.kind !== "line_user" && m.tenant !== state.me.tenant ? el("span", { class: "marker marker-external" }, "External") : null,
        m.role === "master" ? el("span", { class: "role" }, "Group Master") : null,
      ),
    ),
  );
}

/** What the caller may do in this room: edit its info, add people, leave. */
function roomActions(roomId, details, { error, status, refresh, dialog }) {
  const nodes = [];
  const oneToOne = ONE_TO_ONE.includes(details.kind);
  const me = (details.members || []).find((m) => m.user === state.me.id);
  if (oneToOne) {
    nodes.push(el("p", { class: "hint" }, "A 1:1 chat has exactly two people and no name. To talk with more people, start a New room."));
  } else {
    nodes.push(editForm(roomId, details, { error, status, refresh }));
    if (details.kind === "external_group" && me?.role !== "master") {
      nodes.push(el("p", { class: "hint" }, "Only the Group Master adds people to an external group room."));
    } else {
      nodes.push(addForm(roomId, details, { error, status, refresh }));
    }
  }
  nodes.push(leaveControls(roomId, details, { error, dialog }));
  return nodes;
}

function editForm(roomId, details, { error, status, refresh }) {
  const name = el("input", { id: "room-name", name: "name", autocomplete: "off", value: details.name || "" });
  const description = el("textarea", { id: "room-description", name: "description", rows: "3" });
  description.value = details.description || "";
  let saved = { name: details.name || "", description: details.description || "" };
  const form = el(
    "form",
    { class: "room-form", "aria-labelledby": "edit-room-title", novalidate: true },
    el("h3", { id: "edit-room-title" }, "Name and description"),
    el("label", { for: "room-name" }, "Room name"),
    name,
    el("label", { for: "room-description" }, "Description"),
    description,
    el("button", { type: "submit" }, "Save room info"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    status.textContent = "";
    const body = {};
    // A blank name is sent too: the API refuses it with its own message.
    if (name.value !== saved.name) body.name = name.value;
    if (description.value !== saved.description) body.description = description.value;
    if (Object.keys(body).length === 0) {
      status.textContent = "Nothing changed.";
      return;
    }
    try {
      const answer = await call("PATCH", `/v1/rooms/${encodeURIComponent(roomId)}`, { token: state.session.token, body });
      applyRoomInfo(roomId, answer);
      saved = { name: answer.name || "", description: answer.description || "" };
      name.value = saved.name;
      description.value = saved.description;
      status.textContent = "Saved.";
      refresh();
    } catch (err) {
      error.textContent = errorText(err);
    }
  });
  return form;
}

function addForm(roomId, details, { error, status, refresh }) {
  const inRoom = new Set((details.members || []).map((m) => m.user));
  const holder = el("div", { class: "picker-holder" }, el("p", { class: "hint" }, "Loading people…"));
  let picker = null;
  knownPeople().then(({ people, problems }) => {
    picker = peoplePicker(people.filter((p) => !inRoom.has(p.user)), "add");
    holder.replaceChildren(picker.node);
    if (problems.length) error.textContent = problems.join(" ");
  });
  const form = el(
    "form",
    { class: "room-form", "aria-labelledby": "add-people-title", novalidate: true },
    el("h3", { id: "add-people-title" }, "Add people"),
    holder,
    el("button", { type: "submit" }, "Add to room"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    status.textContent = "";
    const users = picker ? picker.selected() : [];
    if (users.length === 0) {
      error.textContent = "Choose someone to add first.";
      return;
    }
    try {
      const answer = await call("POST", `/v1/rooms/${encodeURIComponent(roomId)}/members`, { token: state.session.token, body: { users } });
      const added = (answer.added || []).map(displayName).join(", ");
      status.textContent = added ? `Added: ${added}.` : "Nobody was added.";
      if ((answer.excluded || []).length) error.textContent = `Left out: ${excludedText(answer.excluded)}.`;
      for (const user of answer.added || []) inRoom.add(user);
      picker.clear();
      refresh();
    } catch (err) {
      error.textContent = errorText(err);
    }
  });
  return form;
}

function leaveControls(roomId, details, { error, dialog }) {
  const title = roomTitle(state.rooms.get(roomId) || details);
  const confirm = el(
    "div",
    { class: "confirm", hidden: true, role: "group", "aria-label": "Confirm leaving" },
    el("p", {}, `Leave “${title}”? You will no longer see its messages.`),
  );
  const ask = el("button", { type: "button", class: "danger" }, "Leave room");
  const yes = el("button", { type: "button", class: "danger" }, "Leave now");
  const no = el("button", { type: "button" }, "Stay in the room");
  confirm.append(yes, no);
  ask.addEventListener("click", confirmStep(ask, confirm, no));
  yes.addEventListener("click", async () => {
    error.textContent = "";
    try {
      await call("POST", `/v1/rooms/${encodeURIComponent(roomId)}/leave`, { token: state.session.token });
      dialog.close();
      forgetRoom(roomId, "You left this room.");
    } catch (err) {
      error.textContent = errorText(err);
    }
  });
  return el("div", { class: "room-form" }, el("h3", {}, "Leave"), ask, confirm);
}

// ----- People -----

/**
 * Whom the caller can pick: their colleagues (`GET /v1/users`: their company's members, by
 * name), Clients/Partners (`/v1/contacts`) and LINE friends (`/v1/contacts/line-friends`).
 * Anyone else is typed in by user id.
 */
export async function knownPeople() {
  const token = state.session.token;
  const people = new Map();
  const problems = [];
  const [colleagues, contacts, friends] = await Promise.allSettled([
    call("GET", "/v1/users", { token }),
    call("GET", "/v1/contacts", { token }),
    call("GET", "/v1/contacts/line-friends", { token }),
  ]);
  if (colleagues.status === "fulfilled") {
    for (const u of colleagues.value.users || []) {
      state.names.set(u.id, u.display_name);
      state.companies.set(u.id, { tenant: u.tenant, name: u.tenant_name });
      if (u.id !== state.me.id) people.set(u.id, { user: u.id, name: u.display_name || u.id, group: "colleagues" });
    }
  } else {
    problems.push(`Your company: ${errorText(colleagues.reason)}`);
  }
  if (contacts.status === "fulfilled") {
    for (const c of contacts.value.contacts || []) {
      if (c.kind === "line") state.names.set(c.user, c.display_name);
      const name = c.name || c.display_name || c.user;
      const detail = [c.company, c.blocked ? "blocked" : ""].filter(Boolean).join(", ");
      people.set(c.user, { user: c.user, name, detail, group: c.kind === "line" ? "line" : "contacts" });
    }
  } else {
    problems.push(`Clients/Partners: ${errorText(contacts.reason)}`);
  }
  if (friends.status === "fulfilled") {
    for (const f of friends.value.line_friends || []) {
      if (f.following === false) continue;
      state.names.set(f.user, f.display_name);
      people.set(f.user, { user: f.user, name: f.name || f.display_name || f.user, detail: f.blocked ? "blocked" : "", group: "line" });
    }
  } else {
    problems.push(`Messaging on LINE: ${errorText(friends.reason)}`);
  }
  return { people: [...people.values()].sort((a, b) => a.name.localeCompare(b.name)), problems };
}

const GROUPS = [
  ["colleagues", "Your company"],
  ["contacts", "Clients/Partners"],
  ["line", "Messaging on LINE"],
];

/** Checkboxes by group, and user ids typed in. */
function peoplePicker(people, prefix) {
  const boxes = [];
  const groups = GROUPS.map(([key, label]) => {
    const members = people.filter((p) => p.group === key);
    if (members.length === 0) return null;
    return el(
      "div",
      { class: "people-group" },
      el("h4", { id: `${prefix}-${key}-title` }, label),
      el(
        "ul",
        { class: "people", "aria-labelledby": `${prefix}-${key}-title` },
        ...members.map((p) => {
          const id = `${prefix}-person-${boxes.length}`;
          const box = el("input", { type: "checkbox", id, value: p.user });
          boxes.push(box);
          const detail = [p.user !== p.name ? p.user : "", p.detail].filter(Boolean).join(", ");
          return el(
            "li",
            {},
            box,
            el("label", { for: id }, p.name, detail ? el("span", { class: "person-detail" }, ` (${detail})`) : null),
            p.group === "line" ? el("span", { class: "marker marker-line" }, "LINE") : null,
          );
        }),
      ),
    );
  }).filter(Boolean);
  const others = el("input", { id: `${prefix}-others`, name: "others", autocomplete: "off", "aria-describedby": `${prefix}-others-hint` });
  const node = el(
    "fieldset",
    { class: "picker" },
    el("legend", {}, "People"),
    ...(groups.length ? groups : [el("p", { class: "hint" }, "Nobody to pick from yet: type user ids below.")]),
    el("label", { for: `${prefix}-others` }, "Other people (user ids)"),
    others,
    el("p", { id: `${prefix}-others-hint`, class: "hint" }, "A user id is username@company, e.g. bob@acme; separate several with commas."),
  );
  return {
    node,
    selected() {
      const typed = others.value.split(",").map((s) => s.trim()).filter(Boolean);
      return [...new Set([...boxes.filter((b) => b.checked).map((b) => b.value), ...typed])].filter((u) => u !== state.me.id);
    },
    clear() {
      for (const box of boxes) box.checked = false;
      others.value = "";
    },
    onChange(handler) {
      node.addEventListener("change", handler);
      others.addEventListener("input", handler);
    },
  };
}

// ----- New room -----

/** Pick people; the rooms with exactly them come first; then create one (it opens). */
export async function openNewRoom() {
  state.current = null;
  renderRoomList();
  const error = el("p", { id: "new-room-error", class: "error", role: "alert" });
  const holder = el("div", { class: "picker-holder" }, el("p", { class: "hint" }, "Loading people…"));
  const pick = el(
    "form",
    { id: "new-room-people", class: "room-form", "aria-label": "Who is in the room", novalidate: true },
    holder,
    el("button", { type: "submit" }, "Continue"),
  );
  const existingList = el("ul", { id: "existing-rooms", class: "contacts", "aria-label": "Existing rooms" });
  const existing = el(
    "section",
    { class: "room-form", "aria-labelledby": "existing-title", hidden: true },
    el("h3", { id: "existing-title", tabindex: "-1" }, "Rooms you already have with them"),
    existingList,
  );
  const name = el("input", { id: "new-room-name", name: "name", autocomplete: "off", "aria-describedby": "new-room-name-hint" });
  const create = el(
    "form",
    { id: "create-room", class: "room-form", "aria-labelledby": "create-title", hidden: true, novalidate: true },
    el("h3", { id: "create-title" }, "Or create a new room"),
    el("label", { for: "new-room-name" }, "Room name (optional)"),
    name,
    el(
      "p",
      { id: "new-room-name-hint", class: "hint" },
      "Two people and no name make a 1:1 chat (there is one per pair); a name, or more people, make a group room.",
    ),
    el("button", { type: "submit" }, "Create a new room"),
  );
  panel().replaceChildren(
    el("h2", { id: "room-title" }, "New room"),
    el("p", { class: "hint" }, "Choose who is in the room. The rooms you already have with exactly those people are offered first."),
    error,
    pick,
    existing,
    create,
  );

  let picker = null;
  let chosen = [];
  const { people, problems } = await knownPeople();
  if (!pick.isConnected) return;
  picker = peoplePicker(people, "new");
  holder.replaceChildren(picker.node);
  if (problems.length) error.textContent = problems.join(" ");
  picker.onChange(() => {
    existing.hidden = true;
    create.hidden = true;
  });

  pick.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    chosen = picker.selected();
    if (chosen.length === 0) {
      error.textContent = "Choose at least one person.";
      return;
    }
    try {
      const answer = await call("GET", `/v1/rooms?members=${encodeURIComponent(chosen.join(","))}`, { token: state.session.token });
      const rooms = answer.rooms || [];
      for (const room of rooms) if (!state.rooms.has(room.id)) state.rooms.set(room.id, room);
      existingList.replaceChildren(
        ...rooms.map((room) => {
          const known = state.rooms.get(room.id) || room;
          const title = roomTitle(known);
          return el(
            "li",
            { "data-room": room.id },
            el("span", { class: "title" }, title, ...markerViews(room.markers), el("span", { class: "kind" }, KINDS[room.kind] || room.kind)),
            el("button", { type: "button", "aria-label": `Open existing room: ${title}`, onclick: () => openRoom(room.id) }, "Open existing room"),
          );
        }),
      );
      if (rooms.length === 0) existingList.append(el("li", { class: "hint" }, "You have no room with exactly these people yet."));
      existing.hidden = false;
      create.hidden = false;
      existing.querySelector("h3").focus();
    } catch (err) {
      error.textContent = errorText(err);
    }
  });

  create.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const body = { members: chosen };
    if (name.value.trim()) body.name = name.value;
    try {
      const answer = await call("POST", "/v1/rooms", { token: state.session.token, body });
      await loadRooms();
      if (!state.rooms.has(answer.id)) state.rooms.set(answer.id, answer);
      await openRoom(answer.id);
      if ((answer.excluded || []).length) roomNotice(`Left out of the room: ${excludedText(answer.excluded)}.`);
    } catch (err) {
      error.textContent = errorText(err);
    }
  });
}
