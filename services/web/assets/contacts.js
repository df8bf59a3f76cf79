// Contacts: Clients/Partners (other companies' members and the LINE users one saved, each with
// one's additional information: name, phone, email), adding an external contact, editing and
// deleting one, and "Messaging on LINE" (the LINE users who added one as a friend: saving one to
// Clients/Partners). Every contact has Chat (its 1:1 room) and Block / Unblock.

import { ApiError, call } from "./api.js";
import { confirmStep, el, errorText, panel } from "./dom.js";
import { loadRooms, openRoom, renderRoomList } from "./rooms.js";
import { state } from "./state.js";

/** The largest page the contacts lists give (the API's default maximum). */
const PAGE = 200;

/**
 * The screen's contacts by id (one object per contact, whichever list it came from), and the
 * functions that redraw what shows a contact, so that a change made in one list (a block, a
 * new name) shows in the other at once.
 */
let contacts = new Map();
let views = new Map();

function watch(id, redraw) {
  if (!views.has(id)) views.set(id, new Set());
  views.get(id).add(redraw);
}

/** Keep what the API answered about a contact and redraw everything showing it. */
function remember(contact) {
  const known = contacts.get(contact.id);
  const merged = known ? Object.assign(known, contact) : contact;
  contacts.set(contact.id, merged);
  if (merged.kind === "line" && merged.display_name) state.names.set(merged.user, merged.display_name);
  for (const redraw of views.get(merged.id) || []) redraw();
  return merged;
}

/** How Clients/Partners names a contact: the name one gave them, else their own. */
function savedName(contact) {
  return contact.name || contact.display_name || contact.user;
}

/** How "Messaging on LINE" names a LINE friend: their LINE display name. */
function lineName(contact) {
  return contact.display_name || contact.name || contact.user;
}

/** Every page of a contacts list. */
async function allPages(path, key) {
  const items = [];
  let after = null;
  for (let i = 0; i < 50; i++) {
    const query = `limit=${PAGE}${after ? `&after=${encodeURIComponent(after)}` : ""}`;
    const page = await call("GET", `${path}?${query}`, { token: state.session.token });
    items.push(...(page[key] || []));
    if (!page.next) break;
    after = page.next;
  }
  return items;
}

/** Clients/Partners (with adding an external contact) and "Messaging on LINE". */
export async function openContacts() {
  state.current = null;
  renderRoomList();
  contacts = new Map();
  views = new Map();
  const error = el("p", { id: "contacts-error", class: "error", role: "alert" });
  const status = el("p", { id: "contacts-status", class: "notice", role: "status" });
  const saved = el("ul", { id: "saved-contacts", class: "contacts", "aria-label": "Clients/Partners" });
  const friends = el("ul", { id: "line-friends", class: "contacts", "aria-label": "Messaging on LINE" });
  const screen = { error, status, saved, friends, savedTitle: null };
  screen.savedTitle = el("h3", { id: "saved-title", tabindex: "-1" }, "Clients/Partners");
  panel().replaceChildren(
    el(
      "div",
      { class: "member-screen" },
      el("h2", { id: "room-title" }, "Contacts"),
      error,
      status,
      el(
        "section",
        { class: "contacts-section", "aria-labelledby": "saved-title" },
        screen.savedTitle,
        el(
          "p",
          { class: "hint" },
          "Members of other companies and the LINE users you saved. The name, phone number and email you add are your own notes: only you see them.",
        ),
        addExternalForm(screen),
        saved,
      ),
      el(
        "section",
        { class: "contacts-section", "aria-labelledby": "line-title" },
        el("h3", { id: "line-title" }, "Messaging on LINE"),
        el("p", { class: "hint" }, "LINE users who added you as a friend, by their LINE name. Save one to Clients/Partners to add a name, phone number or email."),
        friends,
      ),
    ),
  );
  saved.append(el("li", { class: "hint" }, "Loading…"));
  friends.append(el("li", { class: "hint" }, "Loading…"));
  const [savedAnswer, friendsAnswer] = await Promise.allSettled([
    allPages("/v1/contacts", "contacts"),
    allPages("/v1/contacts/line-friends", "line_friends"),
  ]);
  const problems = [];
  // Friends first: their entry knows whether they still follow; a saved one is the same contact.
  if (friendsAnswer.status === "fulfilled") {
    const list = friendsAnswer.value.map(remember).sort((a, b) => lineName(a).localeCompare(lineName(b)));
    friends.replaceChildren(...list.map((c) => friendItem(c, screen)));
  } else {
    friends.replaceChildren();
    problems.push(`Messaging on LINE could not be read: ${errorText(friendsAnswer.reason)}`);
  }
  if (savedAnswer.status === "fulfilled") {
    const list = savedAnswer.value.map(remember).sort((a, b) => savedName(a).localeCompare(savedName(b)));
    saved.replaceChildren(...list.map((c) => savedItem(c, screen)));
  } else {
    saved.replaceChildren();
    problems.push(`Clients/Partners could not be read: ${errorText(savedAnswer.reason)}`);
  }
  error.textContent = problems.join(" ");
  emptyHint(saved, "No saved contacts yet.");
  emptyHint(friends, "No LINE friends yet: a LINE user appears here after adding you as a friend (see My LINE).");
}

/** An empty list says so; a list with contacts has no such line. */
function emptyHint(list, text) {
  const hint = list.querySelector(":scope > li.hint");
  const items = list.querySelectorAll(":scope > li[data-contact]").length;
  if (items && hint) hint.remove();
  if (!items && !hint) list.append(el("li", { class: "hint" }, text));
}

/** Put a contact's item in Clients/Partners, in name order. */
function insertSaved(item, contact, list) {
  const name = savedName(contact);
  const next = [...list.querySelectorAll(":scope > li[data-contact]")].find(
    (li) => savedName(contacts.get(li.dataset.contact) || {}).localeCompare(name) > 0,
  );
  list.insertBefore(item, next || null);
  emptyHint(list, "No saved contacts yet.");
}

// ----- adding an external contact -----

function addExternalForm(screen) {
  const tenant = el("input", { id: "add-contact-tenant", name: "tenant", autocomplete: "off", "aria-describedby": "add-contact-hint" });
  const username = el("input", { id: "add-contact-username", name: "username", autocomplete: "off" });
  const error = el("p", { id: "add-contact-error", class: "error", role: "alert" });
  const form = el(
    "form",
    { id: "add-contact", class: "room-form contact-add", "aria-labelledby": "add-contact-title", novalidate: true },
    el("h4", { id: "add-contact-title" }, "Add an external contact"),
    el(
      "p",
      { id: "add-contact-hint", class: "hint" },
      "A member of another company, by that company's ID and their username. The administrators of both companies must have authorized the connection; a 1:1 message room with them is created.",
    ),
    el("label", { for: "add-contact-tenant" }, "Their company ID"),
    tenant,
    el("label", { for: "add-contact-username" }, "Their username"),
    username,
    el("button", { type: "submit" }, "Add contact"),
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    screen.status.textContent = "";
    const body = { tenant: tenant.value.trim(), username: username.value.trim() };
    if (!body.tenant || !body.username) {
      error.textContent = "Give their company ID and their username.";
      (body.tenant ? username : tenant).focus();
      return;
    }
    try {
      const answer = await call("POST", "/v1/contacts", { token: state.session.token, body });
      const known = screen.saved.querySelector(`li[data-contact="${CSS.escape(answer.id)}"]`);
      const contact = remember(answer);
      if (!known) insertSaved(savedItem(contact, screen), contact, screen.saved);
      const who = `${contact.display_name || contact.user} (${contact.user})`;
      screen.status.textContent = known
        ? `${who} is already in your Clients/Partners.`
        : `${who} is now in your Clients/Partners, with a 1:1 message room.`;
      tenant.value = "";
      username.value = "";
      // The new room belongs in the room list.
      loadRooms().catch(() => {});
    } catch (err) {
      error.textContent = errorText(err);
    }
  });
  return form;
}

// ----- a contact -----

/** The pieces every contact item has: its title, the "Blocked" state, Chat and Block. */
function common(contact, screen, nameOf, error) {
  const title = el("span", { class: "title" });
  const state_ = el("span", { class: "contact-state" });
  const chat = el("button", { type: "button" });
  const block = el("button", { type: "button" });
  chat.addEventListener("click", async () => {
    error.textContent = "";
    chat.disabled = true;
    try {
      await openChat(contact);
    } catch (err) {
      error.textContent = err instanceof ApiError ? errorText(err) : err.message;
    } finally {
      chat.disabled = false;
    }
  });
  block.addEventListener("click", async () => {
    error.textContent = "";
    screen.status.textContent = "";
    try {
      const method = contact.blocked ? "DELETE" : "PUT";
      remember(await call(method, `/v1/contacts/${encodeURIComponent(contact.id)}/block`, { token: state.session.token }));
    } catch (err) {
      error.textContent = errorText(err);
    }
  });
  const redraw = () => {
    const name = nameOf(contact);
    const marker = contact.kind === "line"
      ? el("span", { class: "marker marker-line" }, "LINE")
      : el("span", { class: "marker marker-external" }, "External");
    title.replaceChildren(name, marker);
    state_.textContent = contact.blocked ? "Blocked" : "";
    chat.textContent = `Chat with ${name}`;
    block.textContent = contact.blocked ? `Unblock ${name}` : `Block ${name}`;
  };
  return { title, state: state_, chat, block, redraw };
}

/** A contact in Clients/Partners: who they are, one's additional information, Edit, Delete. */
function savedItem(contact, screen) {
  const error = el("p", { class: "error", role: "alert" });
  const parts = common(contact, screen, savedName, error);
  const facts = el("dl", { class: "contact-facts" });
  const edit = el("button", { type: "button", "aria-expanded": "false" });
  const remove = el("button", { type: "button" });
  const form = editForm(contact, screen, edit);
  const confirm = deleteConfirm(contact, screen, remove, error);
  edit.setAttribute("aria-controls", form.id);
  edit.addEventListener("click", () => (form.hidden ? form.open() : form.close()));
  remove.addEventListener("click", () => {
    form.close(false);
    confirm.open();
  });
  const item = el(
    "li",
    { "data-contact": contact.id, class: "contact" },
    el("div", { class: "contact-head" }, parts.title, parts.state),
    facts,
    el("div", { class: "contact-actions" }, parts.chat, edit, remove, parts.block),
    error,
    form,
    confirm,
  );
  const redraw = () => {
    if (!contact.saved) return;
    parts.redraw();
    const name = savedName(contact);
    edit.textContent = `Edit ${name}`;
    remove.textContent = `Delete ${name}`;
    const rows = contact.kind === "line"
      ? [["LINE name", contact.display_name], ["LINE user ID", contact.user]]
      : [["Their name", contact.display_name], ["Company", contact.company || contact.tenant], ["User ID", contact.user]];
    rows.push(["Name", contact.name], ["Phone", contact.phone], ["Email", contact.email]);
    facts.replaceChildren(
      ...rows.flatMap(([label, value]) => [
        el("dt", {}, label),
        el("dd", { class: value ? null : "unset" }, value || "Not set"),
      ]),
    );
  };
  watch(contact.id, redraw);
  redraw();
  return item;
}

/** Name, phone and email: one's own notes on a saved contact (`PATCH`; an empty field clears). */
function editForm(contact, screen, toggle) {
  const prefix = `contact-${contact.id}`;
  const inputs = {
    name: el("input", { id: `${prefix}-name`, name: "name", autocomplete: "off" }),
    phone: el("input", { id: `${prefix}-phone`, name: "phone", type: "tel", autocomplete: "off" }),
    email: el("input", { id: `${prefix}-email`, name: "email", type: "email", autocomplete: "off" }),
  };
  const error = el("p", { class: "error", role: "alert" });
  const cancel = el("button", { type: "button" }, "Cancel");
  const form = el(
    "form",
    { id: `${prefix}-edit`, class: "room-form contact-edit", hidden: true, novalidate: true },
    el("label", { for: inputs.name.id }, "Name"),
    inputs.name,
    el("label", { for: inputs.phone.id }, "Phone"),
    inputs.phone,
    el("label", { for: inputs.email.id }, "Email"),
    inputs.email,
    el("div", { class: "buttons" }, el("button", { type: "submit" }, "Save"), cancel),
    error,
  );
  const label = () => `Edit the additional information of ${savedName(contact)}`;
  form.open = () => {
    for (const [key, input] of Object.entries(inputs)) input.value = contact[key] || "";
    error.textContent = "";
    form.setAttribute("aria-label", label());
    form.hidden = false;
    toggle.setAttribute("aria-expanded", "true");
    inputs.name.focus();
  };
  form.close = (focus = true) => {
    form.hidden = true;
    toggle.setAttribute("aria-expanded", "false");
    if (focus) toggle.focus();
  };
  cancel.addEventListener("click", () => form.close());
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") form.close();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    screen.status.textContent = "";
    const body = {};
    for (const [key, input] of Object.entries(inputs)) body[key] = input.value.trim() || null;
    try {
      const updated = await call("PATCH", `/v1/contacts/${encodeURIComponent(contact.id)}`, { token: state.session.token, body });
      remember(updated);
      form.close();
      screen.status.textContent = `Saved the additional information of ${savedName(contact)}.`;
    } catch (err) {
      error.textContent = errorText(err);
    }
  });
  return form;
}

/** Delete asks first, on the page; the room and its history stay. */
function deleteConfirm(contact, screen, ask, error) {
  const text = el("p", {});
  const yes = el("button", { type: "button", class: "danger" });
  const no = el("button", { type: "button" });
  const box = el("div", { class: "confirm", hidden: true, role: "group" }, text, yes, no);
  const show = confirmStep(ask, box, no);
  box.open = () => {
    const name = savedName(contact);
    box.setAttribute("aria-label", `Confirm deleting ${name}`);
    text.textContent = `Delete ${name} from Clients/Partners? Your 1:1 message room with them and its history stay, and so does whether you block them; the name, phone number and email you added are removed.`;
    yes.textContent = `Delete ${name} now`;
    no.textContent = `Keep ${name}`;
    show();
  };
  yes.addEventListener("click", async () => {
    error.textContent = "";
    screen.status.textContent = "";
    const name = savedName(contact);
    try {
      await call("DELETE", `/v1/contacts/${encodeURIComponent(contact.id)}`, { token: state.session.token });
    } catch (err) {
      error.textContent = errorText(err);
      return;
    }
    box.closest("li").remove();
    remember({ ...contact, saved: false, name: null, phone: null, email: null });
    emptyHint(screen.saved, "No saved contacts yet.");
    screen.status.textContent = `Deleted ${name} from Clients/Partners. Your message room with them and its history stay.`;
    screen.savedTitle.focus();
  });
  return box;
}

/** A LINE friend: their LINE name, whether they still follow, Save to Clients/Partners. */
function friendItem(contact, screen) {
  const error = el("p", { class: "error", role: "alert" });
  const parts = common(contact, screen, lineName, error);
  const detail = el("span", { class: "contact-detail" });
  const save = el("button", { type: "button" });
  save.addEventListener("click", async () => {
    error.textContent = "";
    screen.status.textContent = "";
    try {
      const answer = await call("POST", "/v1/contacts", { token: state.session.token, body: { line_user: contact.user } });
      const known = screen.saved.querySelector(`li[data-contact="${CSS.escape(answer.id)}"]`);
      remember(answer);
      let item = known;
      if (!item) {
        item = savedItem(contact, screen);
        insertSaved(item, contact, screen.saved);
      }
      screen.status.textContent = `${lineName(contact)} is saved to Clients/Partners: add a name, phone number or email below.`;
      item.querySelector("form.contact-edit").open();
    } catch (err) {
      error.textContent = errorText(err);
    }
  });
  const redraw = () => {
    parts.redraw();
    const notes = [];
    if (contact.saved) notes.push(contact.name && contact.name !== lineName(contact) ? `In Clients/Partners as ${contact.name}` : "In Clients/Partners");
    if (contact.following === false) notes.push("No longer follows your LINE account");
    detail.textContent = notes.join(" · ");
    save.textContent = `Save ${lineName(contact)} to Clients/Partners`;
    save.hidden = contact.saved;
    // The one just saved gave its focus to the edit form; never leave it on a hidden button.
  };
  watch(contact.id, redraw);
  redraw();
  return el(
    "li",
    { "data-contact": contact.id, class: "contact" },
    el("div", { class: "contact-head" }, parts.title, parts.state),
    detail,
    el("div", { class: "contact-actions" }, parts.chat, save, parts.block),
    error,
  );
}

// ----- chat -----

/**
 * Open the contact's 1:1 room: the one the contact names, else the caller's room with exactly
 * them (`GET /v1/rooms?members=`), else a new one (`POST /v1/rooms` answers the existing 1:1
 * room of a pair rather than making a second).
 */
async function openChat(contact) {
  const token = state.session.token;
  let roomId = contact.room_id;
  if (roomId && !state.rooms.has(roomId)) await loadRooms();
  if (!roomId || !state.rooms.has(roomId)) {
    const found = await call("GET", `/v1/rooms?members=${encodeURIComponent(contact.user)}`, { token });
    roomId = (found.rooms || [])[0]?.id;
  }
  if (!roomId) {
    const created = await call("POST", "/v1/rooms", { token, body: { members: [contact.user] } });
    roomId = created.id;
  }
  if (!state.rooms.has(roomId)) await loadRooms();
  if (!state.rooms.has(roomId)) throw new Error(`The room with ${contact.user} is not among your rooms.`);
  state.titles.set(roomId, contact.user);
  await openRoom(roomId);
}
