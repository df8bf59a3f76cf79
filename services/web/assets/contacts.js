// Contacts: Clients/Partners and "Messaging on LINE".

import { call } from "./api.js";
import { el, errorText, panel } from "./dom.js";
import { renderRoomList } from "./rooms.js";
import { state } from "./state.js";

/** Clients/Partners and "Messaging on LINE", each with block and unblock. */
export async function openContacts() {
  state.current = null;
  renderRoomList();
  const section = panel();
  const error = el("p", { id: "contacts-error", class: "error", role: "alert" });
  const saved = el("ul", { id: "saved-contacts", class: "contacts", "aria-label": "Clients/Partners" });
  const friends = el("ul", { id: "line-friends", class: "contacts", "aria-label": "Messaging on LINE" });
  section.replaceChildren(
    el("h2", { id: "room-title" }, "Contacts"),
    error,
    el("h3", {}, "Clients/Partners"),
    saved,
    el("h3", {}, "Messaging on LINE"),
    friends,
  );
  const token = state.session.token;
  try {
    const [contacts, line] = await Promise.all([
      call("GET", "/v1/contacts", { token }),
      call("GET", "/v1/contacts/line-friends", { token }),
    ]);
    saved.replaceChildren(...(contacts.contacts || []).map((c) => contactItem(c, error)));
    friends.replaceChildren(...(line.line_friends || []).map((c) => contactItem(c, error)));
    if (!saved.children.length) saved.append(el("li", { class: "hint" }, "No saved contacts yet."));
    if (!friends.children.length) friends.append(el("li", { class: "hint" }, "No LINE friends yet."));
  } catch (err) {
    error.textContent = errorText(err);
  }
}

function contactItem(contact, error) {
  const name = contact.name || contact.display_name || contact.user;
  const status = el("span", { class: "contact-state" }, contact.blocked ? "Blocked" : "");
  const button = el("button", { type: "button" }, contact.blocked ? `Unblock ${name}` : `Block ${name}`);
  button.addEventListener("click", async () => {
    error.textContent = "";
    try {
      const method = contact.blocked ? "DELETE" : "PUT";
      const updated = await call(method, `/v1/contacts/${encodeURIComponent(contact.id)}/block`, { token: state.session.token });
      contact.blocked = updated.blocked;
      status.textContent = contact.blocked ? "Blocked" : "";
      button.textContent = contact.blocked ? `Unblock ${name}` : `Block ${name}`;
    } catch (err) {
      error.textContent = errorText(err);
    }
  });
  const markers = contact.kind === "line" ? el("span", { class: "marker marker-line" }, "LINE") : null;
  return el("li", { "data-contact": contact.id }, el("span", { class: "title" }, name, markers), status, button);
}

