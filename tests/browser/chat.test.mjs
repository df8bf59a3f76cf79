// Two members chat live in two browser contexts; bad input shows the API's error; a reload
// keeps the session and the unread counts.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { startEngine } from "./engine.mjs";
import { launch, logIn, screenshot } from "./browser.mjs";

let engine;
let browser;

before(async () => {
  engine = await startEngine();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await engine?.stop();
});

test("two members chat live, and a reload keeps the session and the unread count", async () => {
  const aliceContext = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const bobContext = await browser.newContext({ viewport: { width: 390, height: 760 } });
  const alice = await aliceContext.newPage();
  const bob = await bobContext.newPage();

  await logIn(alice, engine.base, "acme", "alice");
  await logIn(bob, engine.base, "acme", "bob");
  const rooms = alice.getByRole("navigation", { name: "Rooms" });
  await rooms.getByRole("button", { name: /General/ }).waitFor();
  await screenshot(alice, "rooms");

  await alice.getByRole("button", { name: /General/ }).click();
  await bob.getByRole("button", { name: /General/ }).click();
  await alice.getByLabel("Message", { exact: true }).fill("Hello Bob, from the browser");
  await alice.getByRole("button", { name: "Send" }).click();
  const bobLog = bob.getByRole("log", { name: "Messages" });
  await bobLog.getByText("Hello Bob, from the browser").waitFor({ timeout: 15_000 });
  // A live message shows its sender by name, not by user id.
  const fromAlice = bobLog.locator(".message", { hasText: "Hello Bob, from the browser" });
  await fromAlice.locator(".sender", { hasText: "Alice Anders" }).waitFor();
  assert.equal(await fromAlice.getByText("alice@acme").count(), 0, "not her id");
  // Alice's own message settles as sent (acknowledged, then in the room's order).
  await alice.getByRole("log", { name: "Messages" }).locator(".message.mine", { hasText: "Hello Bob" }).locator(".state", { hasText: "sent" }).waitFor();
  await bob.getByLabel("Message", { exact: true }).fill("Hi Alice!");
  await bob.getByRole("button", { name: "Send" }).click();
  await alice.getByRole("log", { name: "Messages" }).getByText("Hi Alice!").waitFor({ timeout: 15_000 });
  await alice.getByRole("log", { name: "Messages" }).locator(".message", { hasText: "Hi Alice!" }).locator(".sender", { hasText: "Bob Brown" }).waitFor();
  await screenshot(alice, "room");
  await screenshot(bob, "room-phone");

  // Empty input is refused on the page; nothing is sent.
  await bob.getByRole("button", { name: "Send" }).click();
  assert.equal(await bob.getByRole("alert").filter({ hasText: "Write something first." }).count(), 1);

  // Bob leaves the room view (logs out), alice writes, bob comes back after a reload: still
  // logged in, the room shows one unread message.
  await bob.reload();
  await bob.getByRole("navigation", { name: "Rooms" }).waitFor();
  await alice.getByLabel("Message", { exact: true }).fill("Are you there?");
  await alice.getByRole("button", { name: "Send" }).click();
  await alice.getByRole("log", { name: "Messages" }).locator(".message.mine", { hasText: "Are you there?" }).locator(".state", { hasText: "sent" }).waitFor();
  await bob.reload();
  const general = bob.getByRole("navigation", { name: "Rooms" }).getByRole("button", { name: /General/ });
  await general.waitFor();
  assert.equal(await general.getByLabel("1 unread").count(), 1, "one unread message after the reload");
  // The history read after the reload names its senders too.
  await general.click();
  await bob.getByRole("log", { name: "Messages" }).locator(".message", { hasText: "Are you there?" }).locator(".sender", { hasText: "Alice Anders" }).waitFor();

  await aliceContext.close();
  await bobContext.close();
});

test("a wrong password shows the API's error, not a blank page", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await logIn(page, engine.base, "acme", "alice", "not-her-password");
  const alert = page.getByRole("alert");
  await alert.filter({ hasText: /invalid_credentials|unauthorized|password/i }).waitFor();
  await screenshot(page, "login-error");
  await logIn(page, engine.base, "", "", "");
  await alert.filter({ hasText: /\(\w+\)/ }).waitFor();
  await context.close();
});
