// The standalone demo's LINE-user panel, as `make run` offers it: a person plays the demo LINE
// user in one tab (the simulator delivers each action to the engine as LINE's signed webhook)
// while alice answers in another; then the LINE user invites alice's account into a LINE group
// and they write there.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { startLineDemo } from "./engine.mjs";
import { launch, logIn, screenshot } from "./browser.mjs";

let line;
let browser;

before(async () => {
  line = await startLineDemo();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await line?.stop();
});

test("a person plays the LINE user on the demo panel and chats with alice, then in a LINE group", async () => {
  const base = line.engine.base;
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const alice = await context.newPage();
  await logIn(alice, base, "acme", "alice");
  const rooms = alice.getByRole("navigation", { name: "Rooms" });
  await rooms.getByRole("heading", { name: "Rooms" }).waitFor();

  // The login page of this engine links the panel; the panel plays Taro Yamada.
  const panelContext = await browser.newContext({ viewport: { width: 420, height: 800 } });
  const login = await panelContext.newPage();
  await login.goto(base);
  const link = login.getByRole("link", { name: "Demo: play the LINE user Taro Yamada" });
  await link.waitFor();
  const [taro] = await Promise.all([panelContext.waitForEvent("page"), link.click()]);
  await login.close();
  await taro.getByRole("heading", { name: "LINE: you are Taro Yamada" }).waitFor();

  await taro.getByRole("button", { name: "Follow Alice (Acme)", exact: true }).click();
  const lineRoom = rooms.getByRole("button", { name: /Taro Yamada/ });
  await lineRoom.waitFor({ timeout: 20_000 });

  await taro.getByLabel("Message", { exact: true }).fill("Hello from the panel");
  await taro.getByRole("button", { name: "Send on LINE" }).click();
  await taro.getByRole("group", { name: "LINE stickers" }).getByRole("button", { name: "Hello" }).click();
  await lineRoom.click();
  const messages = alice.getByRole("log", { name: "Messages" });
  await messages.getByText("Hello from the panel").waitFor({ timeout: 15_000 });
  await messages.getByRole("img", { name: "Sticker: Hello" }).waitFor({ timeout: 15_000 });

  await alice.getByLabel("Message", { exact: true }).fill("Hello Taro, from the engine");
  await alice.getByRole("button", { name: "Send" }).click();
  const chat = taro.getByRole("log", { name: "LINE chat with Alice (Acme)" });
  await chat.getByText("Hello Taro, from the engine").waitFor({ timeout: 20_000 });
  assert.equal(await taro.getByRole("alert").textContent(), "", "no error on the panel");

  // Taro invites alice's account into the LINE group: a room connected to it appears for
  // alice, and what is written on either side reaches the other.
  await taro.getByRole("button", { name: "Invite Alice (Acme) into Tokyo shop" }).click();
  const groupRoom = rooms.getByRole("button", { name: /Tokyo shop/ });
  await groupRoom.waitFor({ timeout: 20_000 });
  await taro.getByLabel("In the group Tokyo shop").check();
  await taro.getByLabel("Message", { exact: true }).fill("Hello shop");
  await taro.getByRole("button", { name: "Send on LINE" }).click();
  await groupRoom.click();
  await messages.getByText("Hello shop").waitFor({ timeout: 15_000 });
  await alice.getByLabel("Message", { exact: true }).fill("Welcome to the shop chat");
  await alice.getByRole("button", { name: "Send" }).click();
  const inGroup = chat.locator(".message", { hasText: "Welcome to the shop chat" });
  await inGroup.waitFor({ timeout: 20_000 });
  assert.match(await inGroup.locator(".sender").textContent(), /in Tokyo shop/, "it went to the group");

  // Bad input on the panel: an empty message is refused on the page, nothing is sent.
  await taro.getByLabel("Message", { exact: true }).fill("   ");
  await taro.getByRole("button", { name: "Send on LINE" }).click();
  await taro.getByRole("alert").getByText("Write something first.").waitFor();
  await screenshot(taro, "line-user-panel");
  await panelContext.close();
  await context.close();
});
