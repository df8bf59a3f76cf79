// My LINE: what LINE users need to add the member as a friend (My ID, the add-friend URL, the
// QR code, the profile card) and the profile LINE users see (photo, name and the company as
// status message come from the workspace; About, Phone and Website are the member's to edit).
// A member the administrator has not allowed to connect to LINE is told so.

import { call, readDataUrl } from "./api.js";
import { el, errorText, panel } from "./dom.js";
import { renderRoomList } from "./rooms.js";
import { state } from "./state.js";

/** The profile fields a member edits, with their labels. */
const EDITABLE = [
  ["about", "About"],
  ["phone", "Phone"],
  ["website", "Website"],
];

export async function openMyLine() {
  state.current = null;
  renderRoomList();
  const error = el("p", { id: "my-line-error", class: "error", role: "alert" });
  const body = el("div", { class: "my-line" }, el("p", { class: "hint" }, "Loading…"));
  panel().replaceChildren(el("div", { class: "member-screen" }, el("h2", { id: "room-title" }, "My LINE"), error, body));
  const token = state.session.token;
  const [invite, profile] = await Promise.allSettled([
    call("GET", "/v1/me/line-invite", { token }),
    call("GET", "/v1/me/line-profile", { token }),
  ]);
  const refusal = [invite, profile].find((r) => r.status === "rejected" && r.reason?.code === "line_not_authorized");
  if (refusal) {
    body.replaceChildren(notAllowed(refusal.reason));
    return;
  }
  body.replaceChildren(
    invite.status === "fulfilled" ? inviteSection(invite.value) : failed("Your LINE invite", invite.reason),
    profile.status === "fulfilled" ? profileSection(profile.value) : failed("Your profile on LINE", profile.reason),
  );
}

function notAllowed(reason) {
  return el(
    "section",
    { class: "line-refused", "aria-labelledby": "line-refused-title" },
    el("h3", { id: "line-refused-title" }, "You cannot connect with LINE users"),
    el(
      "p",
      {},
      "Your company's administrator has not authorized you to connect with LINE accounts, so LINE users cannot add you as a friend and there is no LINE profile of yours to show or edit. Ask your administrator to allow you LINE access; your ID, QR code and profile card appear here once they do.",
    ),
    el("p", { class: "error", role: "alert" }, `The engine answered: ${errorText(reason)}`),
  );
}

function failed(what, reason) {
  return el("section", { class: "line-section" }, el("h3", {}, what), el("p", { class: "error", role: "alert" }, `${what} could not be read: ${errorText(reason)}`));
}

// ----- the invite -----

function inviteSection(invite) {
  const status = el("p", { class: "notice", role: "status" });
  const facts = el(
    "dl",
    { class: "facts" },
    el("dt", {}, "My ID"),
    el("dd", {}, el("code", { id: "my-line-id" }, invite.my_id), copyButton("Copy my ID", invite.my_id, status)),
    el("dt", {}, "Add-friend URL"),
    el(
      "dd",
      {},
      invite.add_friend_url
        ? [
            el("a", { id: "my-line-url", href: invite.add_friend_url, target: "_blank", rel: "noopener noreferrer" }, invite.add_friend_url),
            copyButton("Copy the add-friend URL", invite.add_friend_url, status),
          ]
        : el("span", { class: "hint-inline" }, "None yet"),
    ),
  );
  const section = el(
    "section",
    { class: "line-section", "aria-labelledby": "invite-title" },
    el("h3", { id: "invite-title" }, "Let LINE users add you as a friend"),
    el(
      "p",
      { class: "hint" },
      "Send a LINE user your ID, the add-friend URL, the QR code or the profile card: they add you as a friend on LINE, and a 1:1 message room with them appears in your room list.",
    ),
    facts,
    status,
  );
  if (invite.status !== "ready" || !invite.add_friend_url) {
    section.append(
      el(
        "p",
        { class: "error", role: "alert" },
        `No LINE Official Account is set up for you yet, so there is no add-friend URL, QR code or profile card; your administrator sets one up. (${invite.status})`,
      ),
    );
    return section;
  }
  const who = invite.my_id;
  section.append(
    el(
      "div",
      { class: "invite-images" },
      inviteImage(invite.qr_png, "QR code", `QR code: scan it with LINE to add ${who} as a friend`, "Save QR code", `line-qr-${who}.png`),
      inviteImage(invite.card_png, "Profile card", `Profile card of ${who} with the QR code to add them on LINE`, "Save profile card", `line-card-${who}.png`),
    ),
  );
  return section;
}

function copyButton(label, text, status) {
  return el(
    "button",
    {
      type: "button",
      class: "copy",
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(text);
          status.textContent = `Copied ${text}.`;
        } catch {
          status.textContent = `This browser did not allow copying: select ${text} and copy it.`;
        }
      },
    },
    label,
  );
}

/** An invite image, read with the token and shown from a data: URL (the policy allows no blob:). */
function inviteImage(path, caption, alt, saveLabel, fileName) {
  const img = el("img", { alt, class: "invite-image" });
  const save = el("a", { class: "save-image", download: fileName, hidden: true }, saveLabel);
  const error = el("p", { class: "error", role: "alert" });
  const figure = el("figure", { class: "invite-figure" }, img, el("figcaption", {}, caption, " ", save), error);
  img.hidden = true;
  readImage(path)
    .then((dataUrl) => {
      img.src = dataUrl;
      img.hidden = false;
      save.href = dataUrl;
      save.hidden = false;
    })
    .catch((err) => {
      error.textContent = `The ${caption.toLowerCase()} could not be shown: ${errorText(err)}`;
    });
  return figure;
}

async function readImage(path) {
  return (await readDataUrl(path, { token: state.session.token })).dataUrl;
}

// ----- the profile LINE users see -----

function profileSection(profile) {
  const shown = el("dl", { class: "facts", id: "line-profile-shown" });
  const inputs = {
    about: el("textarea", { id: "line-profile-about", name: "about", rows: "3" }),
    phone: el("input", { id: "line-profile-phone", name: "phone", type: "tel", autocomplete: "off" }),
    website: el("input", { id: "line-profile-website", name: "website", type: "url", autocomplete: "off", "aria-describedby": "line-profile-website-hint" }),
  };
  const error = el("p", { id: "line-profile-error", class: "error", role: "alert" });
  const status = el("p", { id: "line-profile-status", class: "notice", role: "status" });
  const editable = new Set(profile.editable || EDITABLE.map(([key]) => key));
  const form = el(
    "form",
    { id: "line-profile-form", class: "room-form", "aria-labelledby": "line-profile-edit-title", novalidate: true },
    el("h4", { id: "line-profile-edit-title" }, "Edit what LINE users see"),
    ...EDITABLE.filter(([key]) => editable.has(key)).flatMap(([key, label]) => [el("label", { for: inputs[key].id }, label), inputs[key]]),
    el("p", { id: "line-profile-website-hint", class: "hint" }, "Website: a full address, e.g. https://example.com. Leave a field empty to remove it."),
    el("button", { type: "submit" }, "Save LINE profile"),
    error,
    status,
  );
  const draw = (p) => {
    shown.replaceChildren(
      el("dt", {}, "Photo"),
      el("dd", {}, p.photo_url ? el("img", { src: p.photo_url, alt: `Photo of ${p.name}`, class: "profile-photo" }) : el("span", { class: "hint-inline" }, "No photo")),
      el("dt", {}, "Name"),
      el("dd", {}, p.name),
      el("dt", {}, "Status message"),
      el("dd", {}, p.status_message || p.company),
      ...EDITABLE.flatMap(([key, label]) => [el("dt", {}, label), el("dd", { class: p[key] ? null : "unset" }, p[key] || "Not set")]),
    );
    for (const [key] of EDITABLE) inputs[key].value = p[key] || "";
  };
  draw(profile);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    status.textContent = "";
    const body = {};
    for (const [key] of EDITABLE) if (editable.has(key)) body[key] = inputs[key].value.trim() || null;
    try {
      const updated = await call("PATCH", "/v1/me/line-profile", { token: state.session.token, body });
      draw(updated);
      status.textContent = "Saved: LINE users see your new profile.";
    } catch (err) {
      error.textContent = errorText(err);
    }
  });
  return el(
    "section",
    { class: "line-section", "aria-labelledby": "line-profile-title" },
    el("h3", { id: "line-profile-title" }, "Your profile on LINE"),
    el(
      "p",
      { class: "hint" },
      "LINE users see your photo, name, status message, About, Phone and Website. The photo and name come from your company profile, and the status message is your company's name: they cannot be changed here.",
    ),
    shown,
    form,
  );
}
