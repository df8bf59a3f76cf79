// The client's entry: log in (the session kept across reloads), the navigation, the live
// connection. Each screen is a module of its own (rooms, contacts, admin); call frames go to
// call.js, the others to rooms.js.

import { Live, call, clearSession, loadSession, saveSession } from "./api.js";
import { onCallFrame, resetCalls } from "./call.js";
import { openAudit, openLineAccess, openLineChannels, openMembers, openTrusts } from "./admin.js";
import { openContacts } from "./contacts.js";
import { openMyLine } from "./line-profile.js";
import { el, errorText } from "./dom.js";
import { lineUserDemo, renderLineUser } from "./line-user.js";
import { onNotification, openNotifications, startNotifications } from "./notifications.js";
import { openNewRoom } from "./room-info.js";
import { loadRooms, onFrame } from "./rooms.js";
import { resetState, state } from "./state.js";

/** The screens besides the rooms, in the order the navigation shows them: [label, open]. */
const MEMBER_VIEWS = [
  ["New room", openNewRoom],
  ["Contacts", openContacts],
  ["My LINE", openMyLine],
  ["Notifications", openNotifications],
];
/** The screens only a tenant admin sees. */
const ADMIN_VIEWS = [
  ["Members", openMembers],
  ["LINE access", openLineAccess],
  ["LINE channels", openLineChannels],
  ["Trusted companies", openTrusts],
  ["Audit trail", openAudit],
];

function navButton(label, open) {
  return el("button", { type: "button", class: "link", "data-view": label, onclick: open }, label);
}

const main = document.getElementById("main");
const who = document.getElementById("who");
const logoutButton = document.getElementById("logout");

// ----- login -----

function renderLogin(error) {
  who.textContent = "";
  logoutButton.hidden = true;
  const message = el("p", { id: "login-error", class: "error", role: "alert" }, error || "");
  const form = el(
    "form",
    { class: "card", "aria-labelledby": "login-title", novalidate: true },
    el("h2", { id: "login-title" }, "Log in"),
    el("label", { for: "tenant" }, "Company"),
    el("input", { id: "tenant", name: "tenant", autocomplete: "organization", value: "acme" }),
    el("label", { for: "username" }, "Username"),
    el("input", { id: "username", name: "username", autocomplete: "username" }),
    el("label", { for: "password" }, "Password"),
    el("input", { id: "password", name: "password", type: "password", autocomplete: "current-password" }),
    el("button", { type: "submit" }, "Log in"),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const tenant = String(data.get("tenant") || "").trim();
    const username = String(data.get("username") || "").trim();
    const password = String(data.get("password") || "");
    message.textContent = "";
    try {
      const answer = await call("POST", "/v1/auth/login", { body: { tenant, username, password } });
      state.session = { token: answer.access_token, tenant, username };
      saveSession(state.session);
      await start();
    } catch (err) {
      message.textContent = errorText(err);
    }
  });
  main.replaceChildren(form);
  // The standalone demo: a link to the panel that plays a LINE user.
  lineUserDemo().then((demo) => {
    if (demo && form.isConnected) {
      form.after(el("p", { class: "hint demo" }, el("a", { href: "/#line-user", target: "_blank" }, `Demo: play the LINE user ${demo.display_name}`)));
    }
  });
  form.querySelector(form.elements.username.value ? "#password" : "#username").focus();
}

// ----- the app -----

async function start() {
  const token = state.session.token;
  let me;
  try {
    me = await call("GET", "/v1/me", { token });
  } catch (err) {
    if (err.status === 401) {
      clearSession();
      return renderLogin("Your session ended; log in again.");
    }
    return renderLogin(errorText(err));
  }
  state.me = me;
  who.textContent = `${me.display_name || me.id} (${me.tenant})`;
  logoutButton.hidden = false;
  main.replaceChildren(
    el(
      "div",
      { class: "layout" },
      el(
        "nav",
        { "aria-label": "Rooms", class: "rooms" },
        ...MEMBER_VIEWS.map(([label, open]) => navButton(label, open)),
        ...((me.roles || []).includes("admin") ? ADMIN_VIEWS.map(([label, open]) => navButton(label, open)) : []),
        el("h2", {}, "Rooms"),
        el("ul", { id: "room-list" }),
      ),
      el("section", { id: "room", class: "room", "aria-label": "Room" }, el("p", { class: "hint" }, "Choose a room.")),
    ),
    el("p", { id: "status", class: "status", role: "status" }),
  );
  await loadRooms();
  startNotifications();
  state.live = new Live(token, {
    onFrame: (frame) => {
      if (frame.type === "notification") onNotification(frame);
      else if (!onCallFrame(frame)) onFrame(frame);
    },
    onState: (s) => {
      document.getElementById("status").textContent = s === "online" ? "" : "Reconnecting…";
    },
    // The rooms opened here, from the last seq each has (the engine tells every connection of
    // the calls going on in the user's rooms by itself).
    lastSeqs: () => {
      const seqs = {};
      for (const [id, messages] of state.messages) seqs[id] = Math.max(0, ...messages.keys());
      return seqs;
    },
  });
}

logoutButton.addEventListener("click", () => {
  resetCalls();
  if (state.live) state.live.close();
  clearSession();
  resetState();
  renderLogin();
});

state.session = loadSession();
// The demo's LINE-user panel has an address of its own (`/#line-user`).
window.addEventListener("hashchange", () => location.reload());
if (location.hash === "#line-user") renderLineUser(main, who);
else if (state.session) start();
else renderLogin();
