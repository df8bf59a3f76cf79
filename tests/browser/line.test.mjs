// A simulated LINE user follows alice: the room appears with the LINE marker and the LINE
// user's name, and they exchange text and a sticker both ways.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { startLineDemo } from "./engine.mjs";
import { launch, logIn, screenshot } from "./browser.mjs";
import { lineApi } from "./api.mjs";

let line;
let sim;
let engine;
let browser;
let demo;
let asLineUser, pushes; // the LINE platform simulator's

before(async () => {
  line = await startLineDemo();
  ({ sim, engine, demo } = line);
  ({ asLineUser, pushes } = lineApi(line));
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await line?.stop();
});

test("a LINE user follows alice, and they exchange text and a sticker both ways", async () => {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const alice = await context.newPage();
  await logIn(alice, engine.base, "acme", "alice");
  const rooms = alice.getByRole("navigation", { name: "Rooms" });
  await rooms.getByRole("button", { name: /General/ }).waitFor();

  const source = { type: "user", userId: demo.LINE_DEMO_USER };
  await asLineUser([{ type: "follow", source, replyToken: "r1", follow: { isUnblocked: false } }]);
  const lineRoom = rooms.getByRole("button", { name: /Taro Yamada/ });
  await lineRoom.waitFor({ timeout: 20_000 });
  assert.equal(await lineRoom.locator(".marker-line").count(), 1, "the LINE marker");

  await asLineUser([{ type: "message", source, replyToken: "r2", message: { id: "5001", type: "text", text: "Hello from LINE", quoteToken: "q1" } }]);
  await lineRoom.click();
  const log = alice.getByRole("log", { name: "Messages" });
  await log.getByText("Hello from LINE").waitFor({ timeout: 15_000 });
  // No calls with LINE users: the room has no call buttons.
  assert.equal(await alice.getByRole("button", { name: /^(Audio|Video) call$/ }).count(), 0, "no call buttons in a LINE room");
  await asLineUser([
    { type: "message", source, replyToken: "r3", message: { id: "5002", type: "sticker", packageId: "446", stickerId: "1989", stickerResourceType: "STATIC", quoteToken: "q2" } },
  ]);
  await log.getByRole("img", { name: "Sticker: Happy" }).waitFor({ timeout: 15_000 });

  await alice.getByLabel("Message", { exact: true }).fill("Hi Taro");
  await alice.getByRole("button", { name: "Send" }).click();
  await alice.getByRole("button", { name: "Stickers" }).click();
  await alice.getByRole("group", { name: "Stickers" }).getByRole("button", { name: "Thumbs up" }).click();
  await log.locator(".message.mine", { hasText: "Thumbs up" }).locator(".state", { hasText: "sent" }).waitFor();
  await screenshot(alice, "line-room");

  const deadline = Date.now() + 20_000;
  let sent = [];
  while (Date.now() < deadline) {
    sent = (await pushes()).flatMap((request) => request.body.messages || []);
    if (sent.some((m) => m.type === "sticker") && sent.some((m) => m.text === "Hi Taro")) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(sent.some((m) => m.type === "text" && m.text === "Hi Taro"), JSON.stringify(sent));
  assert.ok(sent.some((m) => m.type === "sticker" && m.packageId === "446" && m.stickerId === "1988"), JSON.stringify(sent));
  const invalid = await (await fetch(`${sim.base}/_sim/invalid`)).json();
  assert.deepEqual(invalid, [], "every request to LINE matches LINE's spec");
  await context.close();
});

/** The gateway's count of applied LINE message events (the engine's /metrics). */
async function appliedMessages() {
  const text = await (await fetch(`${engine.base}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith("line_events_total{") && line.includes('type="message"') && line.includes('outcome="applied"'))
    .reduce((sum, line) => sum + Number(line.split(" ").pop()), 0);
}

test("alice blocks the LINE user and does not see what he sends meanwhile", async () => {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const alice = await context.newPage();
  await logIn(alice, engine.base, "acme", "alice");
  await alice.getByRole("button", { name: "Contacts" }).click();
  const friends = alice.getByRole("list", { name: "Messaging on LINE" });
  await friends.getByRole("button", { name: "Block Taro Yamada" }).click();
  await friends.getByText("Blocked").waitFor();
  await screenshot(alice, "contacts");

  // What he sends while blocked is stored (the gateway applies it) but never shown to alice,
  // not even after the unblock; what he sends after it is.
  const source = { type: "user", userId: demo.LINE_DEMO_USER };
  const before = await appliedMessages();
  await asLineUser([{ type: "message", source, replyToken: "r4", message: { id: "5003", type: "text", text: "Sent while blocked", quoteToken: "q3" } }]);
  const deadline = Date.now() + 15_000;
  while ((await appliedMessages()) <= before) {
    assert.ok(Date.now() < deadline, "the gateway applied the message");
    await new Promise((r) => setTimeout(r, 200));
  }
  await friends.getByRole("button", { name: "Unblock Taro Yamada" }).click();
  await friends.getByRole("button", { name: "Block Taro Yamada" }).waitFor();
  const unblocked = await appliedMessages();
  await asLineUser([{ type: "message", source, replyToken: "r5", message: { id: "5004", type: "text", text: "Sent after the unblock", quoteToken: "q4" } }]);
  // Stored before the room is opened: rooms learns of the unblock by an event, and a live
  // delivery in between may still leave alice out (she gets it with the room's history).
  while ((await appliedMessages()) <= unblocked) {
    assert.ok(Date.now() < deadline + 15_000, "the gateway applied the second message");
    await new Promise((r) => setTimeout(r, 200));
  }
  // rooms learns of the unblock from an event: until it has, the room still hides him, so the
  // room is opened again (its history read again) until his new message shows.
  const room = alice.getByRole("navigation", { name: "Rooms" }).getByRole("button", { name: /Taro Yamada/ });
  const log = alice.getByRole("log", { name: "Messages" });
  const shown = Date.now() + 20_000;
  for (;;) {
    await room.click();
    try {
      await log.getByText("Sent after the unblock").waitFor({ timeout: 2_000 });
      break;
    } catch (err) {
      if (Date.now() > shown) throw err;
    }
  }
  assert.equal(await log.getByText("Sent while blocked").count(), 0, "hidden from alice");
  await context.close();
});
