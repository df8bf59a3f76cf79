// Admin screens (tenant admins only): members, who may connect to LINE, the members' LINE
// Official Accounts with the messages LINE never got, trust with other companies, the audit
// trail. Every refusal of the API (a 403 for someone who is no admin any more too) is shown on
// the screen that asked.

import { call } from "./api.js";
import { el, errorText, panel } from "./dom.js";
import { displayName, state } from "./state.js";
import { learnNames, renderRoomList } from "./rooms.js";

const TRUST_STATES = { active: "Active", pending_ours: "Waiting for them", pending_theirs: "Waiting for us" };

/** The companies this one trusts or is trusted by, with authorize and withdraw. */
export async function openTrusts() {
  state.current = null;
  renderRoomList();
  const error = el("p", { id: "trusts-error", class: "error", role: "alert" });
  const list = el("ul", { id: "trusts", class: "contacts", "aria-label": "Trusted companies" });
  const input = el("input", { id: "trust-tenant", name: "tenant", autocomplete: "off" });
  const form = el(
    "form",
    { class: "inline" },
    el("label", { for: "trust-tenant" }, "Company id"),
    input,
    el("button", { type: "submit" }, "Authorize"),
  );
  const token = state.session.token;
  const refresh = async () => {
    try {
      const answer = await call("GET", "/v1/admin/trusts", { token });
      list.replaceChildren(
        ...(answer.trusts || []).map((trust) => {
          const withdraw = el("button", { type: "button" }, `Withdraw trust in ${trust.tenant}`);
          withdraw.addEventListener("click", async () => {
            error.textContent = "";
            try {
              await call("DELETE", `/v1/admin/trusts/${encodeURIComponent(trust.tenant)}`, { token });
              await refresh();
            } catch (err) {
              error.textContent = errorText(err);
            }
          });
          const ours = trust.status !== "pending_theirs";
          return el("li", {}, el("span", { class: "title" }, trust.tenant), el("span", {}, TRUST_STATES[trust.status] || trust.status), ours ? withdraw : null);
        }),
      );
      if (!list.children.length) list.append(el("li", { class: "hint" }, "No trust with another company."));
    } catch (err) {
      error.textContent = errorText(err);
    }
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      await call("POST", "/v1/admin/trusts", { token, body: { tenant: input.value.trim() } });
      input.value = "";
      await refresh();
    } catch (err) {
      error.textContent = errorText(err);
    }
  });
  panel().replaceChildren(el("h2", { id: "room-title" }, "Trusted companies"), error, form, list);
  await refresh();
}

// ----- shared by the admin screens -----

/** Show an admin screen in the main panel (no room open): its title, then `children`. */
function showScreen(title, ...children) {
  state.current = null;
  renderRoomList();
  panel().replaceChildren(el("div", { class: "admin" }, el("h2", { id: "room-title" }, title), ...children));
}

/** Where a section shows the API's refusals. */
function alertBox(id) {
  return el("p", { id, class: "error", role: "alert" });
}

/** Where a section shows the API's answer to a change. */
function noticeBox(id) {
  return el("p", { id, class: "notice", role: "status" });
}

/** Label / value pairs of a list item. */
function facts(pairs) {
  return el("dl", { class: "admin-facts" }, ...pairs.filter(Boolean).flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
}

function when(ms) {
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) return String(ms);
  return el("time", { datetime: date.toISOString() }, date.toLocaleString());
}

/** A member as the admin screens name them: "Alice Anders (alice)". */
function memberName(user) {
  return user.display_name && user.display_name !== user.username ? `${user.display_name} (${user.username})` : user.username;
}

/** The tenant's members (GET /v1/admin/users), and their names by id. */
async function loadMembers(token) {
  const answer = await call("GET", "/v1/admin/users", { token });
  const users = answer.users || [];
  return { users, names: new Map(users.map((user) => [user.id, memberName(user)])) };
}

function listOf(names) {
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

// ----- members -----

/** The tenant's members: add one, edit one (display name, password, admin role, disabled). */
export async function openMembers() {
  const token = state.session.token;
  const error = alertBox("members-error");
  const notice = noticeBox("members-notice");
  const list = el("ul", { id: "members", class: "admin-list", "aria-label": "Members" });
  const fields = {
    username: el("input", { id: "new-username", name: "username", autocomplete: "off", autocapitalize: "none", spellcheck: "false", "aria-describedby": "new-member-rules" }),
    display: el("input", { id: "new-display-name", name: "display_name", autocomplete: "off" }),
    password: el("input", { id: "new-password", name: "password", type: "password", autocomplete: "new-password", "aria-describedby": "new-member-rules" }),
    admin: el("input", { id: "new-admin", name: "admin", type: "checkbox" }),
  };
  const form = el(
    "form",
    { class: "admin-form", "aria-labelledby": "new-member-title", novalidate: true },
    el("label", { for: "new-username" }, "Username"),
    fields.username,
    el("label", { for: "new-display-name" }, "Display name (the username when empty)"),
    fields.display,
    el("label", { for: "new-password" }, "Password"),
    fields.password,
    el("label", { class: "check" }, fields.admin, "Tenant admin (manages members, LINE and trust)"),
    el("p", { id: "new-member-rules", class: "hint" }, "Usernames are 1 to 64 of a-z 0-9 . _ -; passwords 8 to 256 characters. A new member may connect to LINE only if the LINE access mode lets them."),
    el("button", { type: "submit" }, "Add member"),
  );
  const refresh = async () => {
    try {
      const { users } = await loadMembers(token);
      list.replaceChildren(...users.map((user, index) => memberItem(user, index, { token, error, notice, refresh, list })));
      if (!users.length) list.append(el("li", { class: "hint" }, "No members."));
    } catch (err) {
      error.textContent = errorText(err);
    }
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    notice.textContent = "";
    const body = { username: fields.username.value.trim(), password: fields.password.value, admin: fields.admin.checked };
    if (fields.display.value.trim()) body.display_name = fields.display.value.trim();
    try {
      const created = await call("POST", "/v1/admin/users", { token, body });
      form.reset();
      // The notice once the list shows the change: it says the screen is settled.
      await refresh();
      notice.textContent = `Added ${memberName(created)} (${created.id})${created.admin ? ", tenant admin" : ""}; ${created.line_access ? "may connect to LINE" : "may not connect to LINE yet"}.`;
    } catch (err) {
      error.textContent = errorText(err);
    }
  });
  showScreen(
    "Members",
    error,
    notice,
    el("h3", { id: "new-member-title" }, "Add a member"),
    form,
    el("h3", {}, "Members"),
    list,
  );
  await refresh();
}

/** One member: what they are, and an edit form behind "Edit <username>". */
function memberItem(user, index, { token, error, notice, refresh, list }) {
  const id = `member-${index}`;
  const name = el("input", { id: `${id}-name`, name: "display_name", value: user.display_name, autocomplete: "off" });
  const admin = el("input", { id: `${id}-admin`, type: "checkbox", checked: user.admin });
  const disabled = el("input", { id: `${id}-disabled`, type: "checkbox", checked: user.disabled, "aria-describedby": `${id}-disabled-hint` });
  const password = el("input", { id: `${id}-password`, type: "password", autocomplete: "new-password" });
  const form = el(
    "form",
    { class: "admin-form", "aria-label": `Edit ${user.username}`, hidden: true, novalidate: true },
    el("label", { for: `${id}-name` }, "Display name"),
    name,
    el("label", { class: "check" }, admin, "Tenant admin"),
    el("label", { class: "check" }, disabled, "Disabled"),
    el("p", { id: `${id}-disabled-hint`, class: "hint" }, "A disabled member cannot log in, their sessions end and they lose LINE access (they leave their rooms with LINE users)."),
    el("label", { for: `${id}-password` }, "New password (empty: unchanged)"),
    password,
    el(
      "div",
      { class: "buttons" },
      el("button", { type: "submit" }, `Save ${user.username}`),
      el("button", { type: "button", onclick: () => toggle(false) }, `Cancel editing ${user.username}`),
    ),
  );
  const edit = el("button", { type: "button", "aria-expanded": "false", onclick: () => toggle(form.hidden) }, `Edit ${user.username}`);
  function toggle(open) {
    form.hidden = !open;
    edit.setAttribute("aria-expanded", String(open));
    if (open) name.focus();
    else edit.focus();
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    notice.textContent = "";
    const body = {};
    if (name.value !== user.display_name) body.display_name = name.value;
    if (admin.checked !== user.admin) body.admin = admin.checked;
    if (disabled.checked !== user.disabled) body.disabled = disabled.checked;
    if (password.value) body.password = password.value;
    if (!Object.keys(body).length) {
      notice.textContent = `Nothing to change for ${user.username}.`;
      return;
    }
    try {
      const updated = await call("PATCH", `/v1/admin/users/${encodeURIComponent(user.id)}`, { token, body });
      const changes = [];
      if ("display_name" in body) changes.push(`display name "${updated.display_name}"`);
      if ("admin" in body) changes.push(updated.admin ? "now a tenant admin" : "no longer a tenant admin");
      if ("disabled" in body) changes.push(updated.disabled ? "disabled (their sessions end)" : "enabled");
      if ("password" in body) changes.push("new password set");
      if (user.line_access && !updated.line_access) changes.push("lost LINE access");
      if (!user.line_access && updated.line_access) changes.push("may connect to LINE again");
      await refresh();
      notice.textContent = `Saved ${updated.username}: ${changes.join(", ")}.`;
      list.querySelector(`li[data-user="${CSS.escape(updated.id)}"] button`)?.focus();
    } catch (err) {
      error.textContent = errorText(err);
    }
  });
  return el(
    "li",
    { "data-user": user.id, class: user.disabled ? "disabled" : null },
    el("span", { class: "title" }, user.display_name, user.admin ? el("span", { class: "marker marker-admin" }, "Admin") : null),
    facts([
      ["Username", user.username],
      ["Role", user.admin ? "Tenant admin" : "Member"],
      ["Account", user.disabled ? "Disabled" : "Enabled"],
      ["LINE", user.line_access ? "May connect to LINE" : "May not connect to LINE"],
    ]),
    edit,
    form,
  );
}

// ----- LINE access -----

const MODES = [
  ["all", "Everyone", "Every enabled member may connect to LINE."],
  ["selected", "Selected members", "Only the members allowed below may connect to LINE."],
  ["none", "Nobody", "No member may connect to LINE."],
];
const MODE_LABELS = Object.fromEntries(MODES.map(([mode, label]) => [mode, label]));

/** Whether `user` may connect to LINE under `mode` (the engine's rule). */
function mayUseLine(user, mode) {
  return !user.disabled && (mode === "all" || (mode === "selected" && user.line_allowed));
}

/** Who may connect to LINE: the mode, and in `selected` mode each member's grant. */
export async function openLineAccess() {
  const token = state.session.token;
  const error = alertBox("line-access-error");
  const answer = noticeBox("line-access-answer");
  const effect = el("p", { id: "line-mode-effect", class: "effect", "aria-live": "polite" });
  const apply = el("button", { type: "submit" }, "Apply LINE access mode");
  const radios = MODES.map(([mode, label, meaning]) =>
    el(
      "label",
      { class: "check" },
      el("input", { type: "radio", name: "line-mode", value: mode }),
      el("span", {}, el("strong", {}, label), ` (${mode}): ${meaning}`),
    ),
  );
  const form = el(
    "form",
    { class: "admin-form", novalidate: true },
    el("fieldset", {}, el("legend", {}, "Who may connect to LINE"), ...radios),
    effect,
    apply,
  );
  const members = el("ul", { id: "line-members", class: "admin-list", "aria-label": "LINE permission per member" });
  const membersHint = el("p", { id: "line-members-hint", class: "hint" });
  let users = [];
  let mode = null;
  const chosen = () => form.querySelector('input[name="line-mode"]:checked')?.value || mode;

  const describe = () => {
    const target = chosen();
    if (!mode || !target) return;
    if (target === mode) {
      effect.textContent = `This is the current mode. ${MODES.find(([m]) => m === mode)[2]}`;
      apply.disabled = true;
      return;
    }
    apply.disabled = false;
    const gain = users.filter((user) => !user.line_access && mayUseLine(user, target)).map(memberName);
    const lose = users.filter((user) => user.line_access && !mayUseLine(user, target)).map(memberName);
    effect.textContent = [
      `Switching to "${MODE_LABELS[target]}":`,
      gain.length ? `${listOf(gain)} will be able to connect to LINE (each is told where to find what LINE users need to add them as a friend).` : "nobody gains LINE access.",
      lose.length ? `${listOf(lose)} will lose LINE access: they are removed automatically from their rooms with LINE users, and their LINE accounts are suspended.` : "Nobody loses LINE access.",
    ].join(" ");
  };

  const render = () => {
    for (const radio of form.querySelectorAll('input[name="line-mode"]')) radio.checked = radio.value === mode;
    describe();
    membersHint.textContent =
      mode === "selected"
        ? "Tick who may connect to LINE. Whoever loses the permission is removed automatically from their rooms with LINE users (and from LINE groups); whoever gets it is told where to find what LINE users need to add them as a friend."
        : `Per-member permissions apply in the "Selected members" mode; now ${mode === "all" ? "every enabled member may" : "nobody may"} connect to LINE.`;
    members.replaceChildren(...users.map((user, index) => lineMemberItem(user, index)));
    if (!users.length) members.append(el("li", { class: "hint" }, "No members."));
  };

  const lineMemberItem = (user, index) => {
    const access = el("span", { class: "line-state" }, user.line_access ? "May connect to LINE" : "May not connect to LINE", user.disabled ? " (account disabled)" : "");
    if (mode !== "selected") return el("li", { "data-user": user.id }, el("span", { class: "title" }, memberName(user)), access);
    const box = el("input", { id: `line-allowed-${index}`, type: "checkbox", checked: user.line_allowed, "aria-describedby": "line-members-hint" });
    box.addEventListener("change", async () => {
      error.textContent = "";
      answer.textContent = "";
      box.disabled = true;
      try {
        const updated = await call("PUT", `/v1/admin/users/${encodeURIComponent(user.id)}/line-access`, { token, body: { allowed: box.checked } });
        let said = `${memberName(updated)}: ${updated.line_allowed ? "allowed" : "not allowed"}; ${updated.line_access ? "may connect to LINE" : "may not connect to LINE"}.`;
        if (user.line_access && !updated.line_access) said += " They are removed automatically from their rooms with LINE users.";
        if (!user.line_access && updated.line_access) said += " They are told where to find what LINE users need to add them as a friend.";
        users = users.map((other) => (other.id === updated.id ? updated : other));
        render();
        answer.textContent = said;
        document.getElementById(`line-allowed-${index}`)?.focus();
      } catch (err) {
        box.checked = !box.checked;
        box.disabled = false;
        error.textContent = errorText(err);
      }
    });
    return el(
      "li",
      { "data-user": user.id },
      el("label", { class: "check", for: `line-allowed-${index}` }, box, `${memberName(user)} may connect to LINE`),
      access,
    );
  };

  const load = async () => {
    try {
      const [members, access] = await Promise.all([loadMembers(token), call("GET", "/v1/admin/line-access", { token })]);
      users = members.users;
      mode = access.mode;
      render();
    } catch (err) {
      error.textContent = errorText(err);
    }
  };

  form.addEventListener("change", (event) => {
    if (event.target.name === "line-mode") describe();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const target = chosen();
    if (!target || target === mode) return;
    error.textContent = "";
    answer.textContent = "";
    const before = new Map(users.map((user) => [user.id, user.line_access]));
    try {
      const set = await call("PUT", "/v1/admin/line-access", { token, body: { mode: target } });
      users = (await loadMembers(token)).users;
      mode = set.mode;
      render();
      form.querySelector('input[name="line-mode"]:checked')?.focus();
      const gained = users.filter((user) => user.line_access && !before.get(user.id)).map(memberName);
      const lost = users.filter((user) => !user.line_access && before.get(user.id)).map(memberName);
      answer.textContent = [
        `The LINE access mode is now "${MODE_LABELS[set.mode] || set.mode}" (${set.mode}).`,
        gained.length ? `${listOf(gained)} may now connect to LINE.` : "",
        lost.length ? `${listOf(lost)} lost LINE access and are removed automatically from their rooms with LINE users.` : "",
      ]
        .filter(Boolean)
        .join(" ");
    } catch (err) {
      error.textContent = errorText(err);
    }
  });

  showScreen(
    "LINE access",
    el("p", { class: "hint" }, "Members connect to LINE users only with the admin's permission; whoever loses it is excluded automatically from their rooms with LINE users."),
    error,
    form,
    answer,
    el("h3", {}, "Members"),
    membersHint,
    members,
  );
  await load();
}

// ----- LINE channels and undelivered messages -----

/** The members' LINE Official Accounts (bind, rebind) and the messages LINE never got. */
export async function openLineChannels() {
  const token = state.session.token;
  const channelsError = alertBox("channels-error");
  const bindings = el("ul", { id: "line-channels", class: "admin-list", "aria-label": "LINE channel bindings" });
  const bindError = alertBox("bind-error");
  const bindNotice = noticeBox("bind-notice");
  const lettersError = alertBox("dead-letters-error");
  const lettersNotice = noticeBox("dead-letters-notice");
  const letters = el("ul", { id: "dead-letters", class: "admin-list", "aria-label": "Undelivered messages to LINE users" });
  const older = el("button", { type: "button", hidden: true }, "Older undelivered messages");
  let names = new Map();

  const member = el("select", { id: "bind-member", name: "member" });
  const fields = {
    channel: el("input", { id: "bind-channel-id", name: "channel_id", inputmode: "numeric", autocomplete: "off" }),
    secret: el("input", { id: "bind-channel-secret", name: "channel_secret", type: "password", autocomplete: "off", "aria-describedby": "bind-secrets-hint" }),
    token: el("input", { id: "bind-access-token", name: "access_token", type: "password", autocomplete: "off", "aria-describedby": "bind-secrets-hint" }),
    basic: el("input", { id: "bind-basic-id", name: "basic_id", autocomplete: "off", placeholder: "@abc1234x" }),
  };
  const form = el(
    "form",
    { class: "admin-form", "aria-labelledby": "bind-title", novalidate: true },
    el("label", { for: "bind-member" }, "Member"),
    member,
    el("label", { for: "bind-channel-id" }, "Channel id"),
    fields.channel,
    el("label", { for: "bind-channel-secret" }, "Channel secret"),
    fields.secret,
    el("label", { for: "bind-access-token" }, "Channel access token"),
    fields.token,
    el("label", { for: "bind-basic-id" }, "Basic id"),
    fields.basic,
    el("p", { id: "bind-secrets-hint", class: "hint" }, "The channel secret and access token are stored encrypted and never shown again: rebinding asks for them again. The member must be allowed to connect to LINE."),
    el("button", { type: "submit" }, "Bind channel"),
  );

  const loadChannels = async () => {
    try {
      const answer = await call("GET", "/v1/admin/line/channels", { token });
      bindings.replaceChildren(...(answer.channels || []).map(channelItem));
      if (!bindings.children.length) bindings.append(el("li", { class: "hint" }, "No member is bound to a LINE Official Account."));
    } catch (err) {
      channelsError.textContent = errorText(err);
    }
  };

  const channelItem = (channel) => {
    const who = names.get(channel.user_id) || channel.user_id;
    const rebind = el("button", { type: "button" }, `Rebind ${who}`);
    rebind.addEventListener("click", () => {
      if (![...member.options].some((option) => option.value === channel.user_id)) member.append(el("option", { value: channel.user_id }, who));
      member.value = channel.user_id;
      fields.channel.value = channel.channel_id;
      fields.basic.value = channel.basic_id;
      fields.secret.value = "";
      fields.token.value = "";
      bindNotice.textContent = `Rebinding ${who}: enter the channel secret and access token again.`;
      fields.secret.focus();
    });
    return el(
      "li",
      { "data-user": channel.user_id },
      el("span", { class: "title" }, who, channel.suspended ? el("span", { class: "marker marker-suspended" }, "Suspended") : null),
      facts([
        ["Channel id", channel.channel_id],
        ["Basic id", channel.basic_id],
        ["State", channel.suspended ? "Suspended: the member may not connect to LINE" : "Active"],
        ["Last error", channel.last_error || "None"],
        ["Bound", when(channel.created_at_ms)],
        channel.updated_at_ms !== channel.created_at_ms ? ["Changed", when(channel.updated_at_ms)] : null,
      ]),
      rebind,
    );
  };

  let next = null; // where the next page starts (the API's cursor)
  const loadLetters = async (more) => {
    lettersError.textContent = "";
    try {
      const query = more && next !== null ? `?cursor=${encodeURIComponent(next)}` : "";
      const answer = await call("GET", `/v1/admin/line/dead-letters${query}`, { token });
      const rows = answer.dead_letters || [];
      await learnNames(rows.map((row) => row.line_user));
      if (!more) letters.replaceChildren();
      letters.querySelector(".hint")?.remove();
      letters.append(...rows.map(letterItem));
      if (!letters.children.length) letters.append(el("li", { class: "hint" }, "Every message reached LINE: nothing undelivered."));
      next = answer.next ?? null;
      older.hidden = next === null;
    } catch (err) {
      lettersError.textContent = errorText(err);
    }
  };

  const letterItem = (row) => {
    const to = displayName(row.line_user);
    const from = names.get(row.sender) || row.sender;
    const item = el(
      "li",
      { "data-message": row.message_id },
      el("span", { class: "title" }, `To ${to}`, el("span", { class: "marker marker-line" }, "LINE")),
      facts([
        ["From", from],
        ["Room", row.room_id],
        row.channel_id ? ["Channel id", row.channel_id] : null,
        ["Error", row.error || "Not delivered"],
        ["Failed", when(row.failed_at_ms)],
      ]),
    );
    if (!row.resendable) {
      item.append(el("p", { class: "hint" }, "This message cannot be sent to LINE users, so it cannot be sent again."));
      return item;
    }
    const label = `Resend to ${to} (failed ${new Date(row.failed_at_ms).toLocaleString()}, message …${row.message_id.slice(-6)})`;
    const resend = el("button", { type: "button", "aria-label": label }, "Resend");
    resend.addEventListener("click", async () => {
      lettersError.textContent = "";
      lettersNotice.textContent = "";
      resend.disabled = true;
      try {
        await call("POST", `/v1/admin/line/dead-letters/${encodeURIComponent(row.message_id)}/${encodeURIComponent(row.line_user)}/resend`, { token });
        lettersNotice.textContent = `The message from ${from} to ${to} is queued to be sent again.`;
        item.remove();
        if (!letters.children.length) letters.append(el("li", { class: "hint" }, "Every message reached LINE: nothing undelivered."));
      } catch (err) {
        resend.disabled = false;
        lettersError.textContent = errorText(err);
      }
    });
    item.append(resend);
    return item;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    bindError.textContent = "";
    bindNotice.textContent = "";
    const userId = member.value;
    const body = {
      channel_id: fields.channel.value.trim(),
      channel_secret: fields.secret.value,
      access_token: fields.token.value,
      basic_id: fields.basic.value.trim(),
    };
    try {
      const bound = await call("PUT", `/v1/admin/line/channels/${encodeURIComponent(userId)}`, { token, body });
      form.reset();
      bindNotice.textContent = `${names.get(bound.user_id) || bound.user_id} is bound to channel ${bound.channel_id} (${bound.basic_id}).`;
      await loadChannels();
    } catch (err) {
      bindError.textContent = errorText(err);
    }
  });
  older.addEventListener("click", () => loadLetters(true));

  showScreen(
    "LINE channels",
    el("p", { class: "hint" }, "Each member who chats with LINE users does so through a LINE Official Account bound to them here."),
    el("h3", {}, "Bindings"),
    channelsError,
    bindings,
    el("h3", {}, "Undelivered messages to LINE users"),
    lettersError,
    lettersNotice,
    letters,
    older,
    el("h3", { id: "bind-title" }, "Bind or rebind a member"),
    bindError,
    bindNotice,
    form,
  );
  try {
    const loaded = await loadMembers(token);
    names = loaded.names;
    member.replaceChildren(...loaded.users.map((user) => el("option", { value: user.id }, `${memberName(user)}${user.line_access ? "" : " (may not connect to LINE)"}`)));
  } catch (err) {
    bindError.textContent = errorText(err);
  }
  await Promise.all([loadChannels(), loadLetters(false)]);
}

// ----- audit trail -----

/** What an audit entry records, by its action. */
const AUDIT_ACTIONS = {
  tenant_created: "Company created",
  user_created: "Member added",
  user_disabled: "Member disabled",
  line_mode_set: "LINE access mode set",
  line_access_granted: "LINE access granted",
  line_access_revoked: "LINE access withdrawn",
  trust_granted: "External chat authorized",
  trust_revoked: "External chat authorization withdrawn",
  trust_active: "External chat possible (both companies authorized)",
  trust_inactive: "External chat ended (the other company withdrew)",
  member_excluded: "Removed from a room by rule",
};
const AUDIT_PAGE = 50;

/** The audit trail, newest first, a page at a time. */
export async function openAudit() {
  const token = state.session.token;
  const error = alertBox("audit-error");
  const list = el("ol", { id: "audit", class: "admin-list audit", "aria-label": "Audit trail" });
  const more = el("button", { type: "button", hidden: true }, "Older entries");
  const count = el("p", { class: "hint", role: "status" });
  const reload = el("button", { type: "button" }, "Refresh the audit trail");
  let entries = [];
  let names = new Map();
  let shown = 0;
  const who = (id) => (names.has(id) ? names.get(id) : id === "system" ? "The engine" : id === "bootstrap" ? "Setup" : id);
  const entryItem = (entry) =>
    el(
      "li",
      { "data-entry": entry.id },
      el("span", { class: "title" }, AUDIT_ACTIONS[entry.action] || entry.action),
      facts([
        ["When", when(Date.parse(entry.at))],
        ["Who", who(entry.actor)],
        ["Target", who(entry.subject)],
        entry.detail ? ["Detail", entry.action === "line_mode_set" ? `${MODE_LABELS[entry.detail] || entry.detail} (${entry.detail})` : entry.detail] : null,
      ]),
    );
  const showMore = () => {
    const next = entries.slice(shown, shown + AUDIT_PAGE);
    list.append(...next.map(entryItem));
    shown += next.length;
    more.hidden = shown >= entries.length;
    count.textContent = entries.length ? `Showing the newest ${shown} of ${entries.length} entries.` : "";
  };
  const load = async () => {
    error.textContent = "";
    try {
      const [answer, members] = await Promise.all([call("GET", "/v1/admin/audit", { token }), loadMembers(token)]);
      entries = answer.entries || [];
      names = members.names;
      list.replaceChildren();
      shown = 0;
      showMore();
      if (!entries.length) list.append(el("li", { class: "hint" }, "Nothing recorded yet."));
    } catch (err) {
      error.textContent = errorText(err);
    }
  };
  more.addEventListener("click", showMore);
  reload.addEventListener("click", load);
  showScreen(
    "Audit trail",
    el("p", { class: "hint" }, "What admins did and what followed by rule, newest first (the engine answers with the newest 500 entries)."),
    reload,
    error,
    count,
    list,
    more,
  );
  await load();
}
