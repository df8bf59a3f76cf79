// The standalone demo's LINE-user panel (`/#line-user`): a person plays the demo LINE user
// through the LINE platform simulator. Each action here reaches the engine as the signed
// webhook LINE would send (`/demo/line-user/actions`), and what alice's account sent to this
// LINE user or to the demo group is what the simulator received (`/demo/line-user/received`),
// read every 1.5 s. The panel exists only when the standalone runs beside the simulator.

import { call } from "./api.js";
import { el, errorText } from "./dom.js";

/** Stickers a LINE user may send (any LINE sticker; these are LINE's basic ones). */
const STICKERS = [
  { package_id: "446", sticker_id: "1988", label: "Thumbs up" },
  { package_id: "446", sticker_id: "1989", label: "Happy" },
  { package_id: "789", sticker_id: "10855", label: "Hello" },
];
const POLL_MS = 1500;

/** Who the panel plays, or null when the engine has no panel (not the demo, no simulator). */
export async function lineUserDemo() {
  try {
    return await call("GET", "/demo/line-user");
  } catch {
    return null;
  }
}

/** Draw the panel into `main`; it polls until the page is left. */
export async function renderLineUser(main, who) {
  const demo = await lineUserDemo();
  if (!demo) {
    main.replaceChildren(el("p", { class: "error", role: "alert" }, "This engine has no LINE-user panel: it is part of the standalone demo (make run), beside the LINE platform simulator."));
    return;
  }
  const account = demo.account.display_name;
  const group = demo.group.name;
  who.textContent = `${demo.display_name} (LINE user, demo)`;
  const timeline = []; // {from: "me" | "them", where: "chat" | "group", text}
  let seen = 0;
  const error = el("p", { id: "line-user-error", class: "error", role: "alert" });
  const log = el("ol", { class: "messages", role: "log", "aria-live": "polite", "aria-label": `LINE chat with ${account}` });
  const inGroup = el("input", { type: "checkbox", id: "in-group" });
  const render = () => {
    log.replaceChildren(
      ...timeline.map((item) =>
        el(
          "li",
          { class: item.from === "me" ? "message mine" : "message" },
          el("span", { class: "sender" }, `${item.from === "me" ? "You" : account}${item.where === "group" ? ` in ${group}` : ""}`),
          el("span", { class: "body" }, item.text),
        ),
      ),
    );
    log.scrollTop = log.scrollHeight;
  };
  const act = async (action, shown) => {
    error.textContent = "";
    try {
      await call("POST", "/demo/line-user/actions", { body: action });
      if (shown) {
        timeline.push({ from: "me", where: action.in_group ? "group" : "chat", text: shown });
        render();
      }
      return true;
    } catch (err) {
      error.textContent = errorText(err);
      return false;
    }
  };
  const input = el("input", { id: "line-text", name: "text", autocomplete: "off" });
  const form = el(
    "form",
    { class: "compose", "aria-label": "Write as the LINE user" },
    el("label", { for: "line-text" }, "Message"),
    input,
    el("button", { type: "submit" }, "Send on LINE"),
    el("span", { class: "in-group" }, inGroup, el("label", { for: "in-group" }, ` In the group ${group}`)),
    el(
      "div",
      { class: "stickers", role: "group", "aria-label": "LINE stickers" },
      ...STICKERS.map((sticker) =>
        el("button", { type: "button", onclick: () => act({ action: "sticker", package_id: sticker.package_id, sticker_id: sticker.sticker_id, in_group: inGroup.checked }, `[sticker ${sticker.label}]`) }, sticker.label),
      ),
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!input.value.trim()) {
      error.textContent = "Write something first.";
      return;
    }
    if (await act({ action: "text", text: input.value, in_group: inGroup.checked }, input.value)) input.value = "";
  });
  const button = (label, action) => el("button", { type: "button", onclick: () => act(action) }, label);
  main.replaceChildren(
    el(
      "section",
      { class: "room line-user", "aria-labelledby": "line-user-title" },
      el("h2", { id: "line-user-title" }, `LINE: you are ${demo.display_name}`),
      el(
        "p",
        { class: "hint" },
        `This panel plays a LINE user through the LINE platform simulator. What you do here reaches the engine as LINE's signed webhooks; what ${demo.account.member} sends from her LINE room shows below. Log in as alice in another tab to answer.`,
      ),
      el(
        "div",
        { class: "inline" },
        button(`Follow ${account}`, { action: "follow" }),
        button(`Unfollow ${account}`, { action: "unfollow" }),
        button(`Invite ${account} into ${group}`, { action: "invite_to_group" }),
        button(`Remove ${account} from ${group}`, { action: "remove_from_group" }),
      ),
      error,
      log,
      form,
    ),
  );
  input.focus();
  const poll = async () => {
    if (!log.isConnected) return;
    try {
      const answer = await call("GET", "/demo/line-user/received");
      const pushes = answer.received || [];
      for (const push of pushes.slice(seen)) {
        const where = push.to === demo.group.id ? "group" : "chat";
        for (const message of push.messages || []) timeline.push({ from: "them", where, text: lineText(message) });
      }
      if (pushes.length > seen) render();
      seen = pushes.length;
    } catch (err) {
      error.textContent = errorText(err);
    }
    setTimeout(poll, POLL_MS);
  };
  poll();
}

/** A LINE message object as the LINE app would summarise it. */
function lineText(message) {
  switch (message.type) {
    case "text":
      return message.text;
    case "sticker":
      return `[sticker ${message.packageId}/${message.stickerId}]`;
    case "image":
      return "[image]";
    default:
      return `[${message.type}]`;
  }
}
