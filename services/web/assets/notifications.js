// Notifications: what the engine told the caller (added to or removed from a room, LINE or
// external access granted or withdrawn, a message LINE did not take, ...), newest first, from
// `GET /v1/notifications` and live `notification` frames. The navigation's button counts the
// ones not seen yet (what was seen is remembered in this browser, per user).

import { call } from "./api.js";
import { el, errorText, panel } from "./dom.js";
import { openRoom, renderRoomList } from "./rooms.js";
import { roomTitle, state } from "./state.js";

const KINDS = {
  room_added: "Added to a room",
  room_removed: "Removed from a room",
  line_access_granted: "LINE allowed",
  line_access_revoked: "LINE withdrawn",
  external_granted: "External chats allowed",
  external_revoked: "External chats withdrawn",
  line_delivery_failed: "Not delivered on LINE",
  line_group_joined: "Added to a LINE group",
  line_group_left: "Removed from a LINE group",
};

/** The notifications known to this page, newest first, and whether their screen is open. */
const known = { items: [], showing: false };

function seenKey() {
  return `chat.notifications.seen.${state.me?.id || ""}`;
}

function seenMark() {
  return localStorage.getItem(seenKey()) || "";
}

function unseen() {
  const mark = seenMark();
  return known.items.filter((n) => (n.created_at || "") > mark).length;
}

function markSeen() {
  const newest = known.items.reduce((max, n) => ((n.created_at || "") > max ? n.created_at : max), seenMark());
  if (newest) localStorage.setItem(seenKey(), newest);
  showBadge();
}

/** The count on the navigation's "Notifications" button. */
function showBadge() {
  const button = document.querySelector('nav [data-view="Notifications"]');
  if (!button) return;
  button.querySelector(".unread")?.remove();
  const count = known.showing ? 0 : unseen();
  if (count > 0) button.append(el("span", { class: "unread", "aria-label": `${count} new` }, String(count)));
}

function remember(items) {
  const byId = new Map(known.items.map((n) => [n.id, n]));
  for (const n of items) byId.set(n.id, n);
  known.items = [...byId.values()].sort((a, b) => (b.created_at || "").localeCompare(a.created_at || "") || b.id.localeCompare(a.id));
}

/** At login: read the notifications, to count the ones not seen yet. */
export async function startNotifications() {
  known.showing = false;
  known.items = [];
  try {
    const answer = await call("GET", "/v1/notifications", { token: state.session.token });
    remember(answer.notifications || []);
  } catch {
    // counted from the live ones only; the screen shows the error
  }
  showBadge();
}

/** A live `notification` frame. */
export function onNotification(frame) {
  remember([frame]);
  if (known.showing && document.getElementById("notifications")) {
    renderList();
    markSeen();
  } else {
    known.showing = false;
    showBadge();
  }
}

export async function openNotifications() {
  state.current = null;
  renderRoomList();
  known.showing = true;
  const error = el("p", { id: "notifications-error", class: "error", role: "alert" });
  const list = el("ul", { id: "notifications", class: "contacts notifications", "aria-label": "Notifications" });
  panel().replaceChildren(el("h2", { id: "room-title" }, "Notifications"), error, list);
  // Leaving the screen (another view replaces it) ends "showing".
  const observer = new MutationObserver(() => {
    if (!list.isConnected) {
      known.showing = false;
      observer.disconnect();
    }
  });
  observer.observe(panel(), { childList: true });
  renderList();
  markSeen(); // what is on screen now is seen; what the fetch adds is seen once shown below
  try {
    const answer = await call("GET", "/v1/notifications", { token: state.session.token });
    remember(answer.notifications || []);
  } catch (err) {
    error.textContent = errorText(err);
  }
  if (!list.isConnected) return;
  renderList();
  markSeen();
}

function renderList() {
  const list = document.getElementById("notifications");
  if (!list) return;
  if (known.items.length === 0) {
    list.replaceChildren(el("li", { class: "hint" }, "No notifications yet."));
    return;
  }
  const mark = seenMark();
  list.replaceChildren(
    ...known.items.map((n) => {
      const room = n.room_id ? state.rooms.get(n.room_id) : null;
      const when = n.created_at ? new Date(n.created_at) : null;
      const text = n.text ? n.text.charAt(0).toUpperCase() + n.text.slice(1) : KINDS[n.kind] || n.kind;
      return el(
        "li",
        { "data-notification": n.id, class: (n.created_at || "") > mark ? "new" : null },
        el(
          "span",
          { class: "notification" },
          el("span", { class: "title" }, KINDS[n.kind] || n.kind),
          el("span", { class: "notification-text" }, text),
          when ? el("time", { datetime: n.created_at }, when.toLocaleString()) : null,
        ),
        room ? el("button", { type: "button", "aria-label": `Open room: ${roomTitle(room)}`, onclick: () => openRoom(room.id) }, "Open room") : null,
      );
    }),
  );
}
