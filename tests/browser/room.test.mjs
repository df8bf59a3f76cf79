// The member's room screens: New room (the rooms of exactly those people first), Room info
// (rename, the API's refusals), images and files sent by URL, recall (and its refusal in a LINE
// room), a text over the API's limit failing with the API's message, and notifications.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";

import { startLineDemo } from "./engine.mjs";
import { launch, logIn, screenshot } from "./browser.mjs";
import { engineApi, lineApi } from "./api.mjs";

let line;
let engine;
let demo;
let browser;
let api, token; // the engine's API
let simPost, asLineUser, pushes; // the LINE platform simulator's

// ----- a real PNG, made here (no file in the repository) -----

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A width x height RGB PNG with a gradient. */
function png(width, height, [r, g, b]) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x++) row.set([(r + x) & 0xff, (g + y) & 0xff, b], 1 + x * 3);
    rows.push(row);
  }
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk("IHDR", header), chunk("IDAT", deflateSync(Buffer.concat(rows))), chunk("IEND", Buffer.alloc(0))]);
}

const PHOTO = png(160, 100, [40, 90, 200]);

/** Files "online" at https://media.example.test/ for a browser context (the engine only keeps
 * the address; the recipients' browsers load it). */
async function serveMedia(context) {
  await context.route("https://media.example.test/**", (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path.endsWith(".png")) return route.fulfill({ status: 200, contentType: "image/png", body: PHOTO });
    if (path.endsWith(".pdf")) return route.fulfill({ status: 200, contentType: "application/pdf", body: Buffer.from("%PDF-1.4\n%plan\n") });
    return route.fulfill({ status: 404, body: "" });
  });
}

// ----- the public API, as the tests check what the engine stored -----

async function history(roomId, tok) {
  return (await api("GET", `/v1/rooms/${roomId}/messages?limit=500`, tok)).events;
}

/** Wait until `check()` (an API read) holds. */
async function eventually(check, what, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    assert.ok(Date.now() < deadline, what);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  line = await startLineDemo();
  ({ engine, demo } = line);
  ({ api, token } = engineApi(engine.base));
  ({ simPost, asLineUser, pushes } = lineApi(line));
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await line?.stop();
});

test("alice makes a room with bob, renames it, sends an image and a file, recalls, and bob is notified", async () => {
  const aliceToken = await token("acme", "alice");
  const bobToken = await token("acme", "bob");
  const aliceContext = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const bobContext = await browser.newContext({ viewport: { width: 390, height: 800 } });
  await serveMedia(aliceContext);
  await serveMedia(bobContext);
  const alice = await aliceContext.newPage();
  const bob = await bobContext.newPage();
  const errors = [];
  for (const page of [alice, bob]) page.on("pageerror", (err) => errors.push(err.message));

  await logIn(bob, engine.base, "acme", "bob");
  const bobNav = bob.getByRole("navigation", { name: "Rooms" });
  await bobNav.getByRole("button", { name: /General/ }).waitFor();
  // Bob has seen his notifications (the demo's rooms): from now on, only new ones count.
  await bobNav.getByRole("button", { name: /Notifications/ }).click();
  await bob.getByRole("list", { name: "Notifications" }).getByText("You were added to General").waitFor();
  await bobNav.getByRole("button", { name: /General/ }).click();
  assert.equal(await bobNav.getByLabel(/new$/).count(), 0, "no new notification yet");

  await logIn(alice, engine.base, "acme", "alice");
  const nav = alice.getByRole("navigation", { name: "Rooms" });
  await nav.getByRole("button", { name: /General/ }).waitFor();

  // New room with bob: the pair's existing 1:1 room is offered first, and opens.
  await nav.getByRole("button", { name: "New room" }).click();
  // "Your company" lists every colleague by name (GET /v1/users), not alice herself.
  const company = alice.getByRole("list", { name: "Your company" });
  await company.getByRole("checkbox", { name: "Bob Brown (bob@acme)" }).waitFor();
  const colleagues = (await api("GET", "/v1/users", aliceToken)).users.filter((u) => u.id !== "alice@acme");
  assert.ok(colleagues.some((u) => u.id === "admin@acme"), "the API lists alice's colleagues");
  assert.deepEqual(
    (await company.getByRole("checkbox").evaluateAll((boxes) => boxes.map((box) => box.value))).sort(),
    colleagues.map((u) => u.id).sort(),
    "the picker offers exactly the colleagues the API lists",
  );
  await company.getByRole("checkbox", { name: "Acme Admin (admin@acme)" }).waitFor();
  assert.equal(await company.getByRole("checkbox", { name: /alice@acme/ }).count(), 0, "not alice herself");
  await alice.getByRole("checkbox", { name: "Bob Brown" }).check();
  await alice.getByRole("button", { name: "Continue" }).click();
  const existing = alice.getByRole("list", { name: "Existing rooms" });
  await existing.getByRole("button", { name: /Open existing room/ }).first().waitFor();
  const offered = await existing.locator("li[data-room]").evaluateAll((items) => items.map((li) => li.dataset.room));
  const pairRooms = (await api("GET", "/v1/rooms?members=bob@acme", aliceToken)).rooms.map((r) => r.id);
  assert.deepEqual(offered.sort(), pairRooms.sort(), "the rooms of exactly alice and bob are offered");
  assert.equal(pairRooms.length, 1);
  await alice.getByRole("button", { name: "Create a new room" }).waitFor();
  await screenshot(alice, "new-room");
  await existing.getByRole("button", { name: /Open existing room/ }).click();
  await alice.locator("#room-title", { hasText: "Bob Brown" }).waitFor();
  await nav.getByRole("button", { name: /Bob Brown/ }).waitFor();
  assert.equal(await nav.getByText("bob@acme").count(), 0, "the room list names bob, not his id");

  // Then a new named group room with bob: it opens.
  await nav.getByRole("button", { name: "New room" }).click();
  await alice.getByRole("checkbox", { name: "Bob Brown" }).check();
  await alice.getByRole("button", { name: "Continue" }).click();
  await alice.getByRole("button", { name: "Create a new room" }).waitFor();
  await alice.getByLabel("Room name (optional)").fill("Launch plan");
  await alice.getByRole("button", { name: "Create a new room" }).click();
  await alice.locator("#room-title", { hasText: "Launch plan" }).waitFor();
  const created = (await api("GET", "/v1/rooms", aliceToken)).rooms.find((r) => r.name === "Launch plan");
  assert.ok(created, "the engine has the room");
  assert.equal(created.kind, "group");
  const roomId = created.id;
  const members = (await api("GET", `/v1/rooms/${roomId}`, aliceToken)).members.map((m) => m.user).sort();
  assert.deepEqual(members, ["alice@acme", "bob@acme"]);

  // Bob is notified live: the count on his Notifications button.
  await bobNav.getByRole("button", { name: /Notifications/ }).getByLabel("1 new").waitFor({ timeout: 15_000 });
  await bobNav.getByRole("button", { name: /Launch plan/ }).waitFor({ timeout: 15_000 });

  // Room info: the facts, then the API's refusals for bad names, then a rename.
  await alice.getByRole("button", { name: "Room info" }).click();
  const info = alice.getByRole("dialog", { name: "Room info" });
  await info.getByRole("list", { name: "Participants" }).getByText("Bob Brown", { exact: true }).waitFor();
  await info.getByText("Alice Anders (you)").waitFor();
  assert.equal(await info.getByRole("list", { name: "Participants" }).getByText(/@acme/).count(), 0, "by name, not by id");
  assert.equal(await info.locator("dd", { hasText: "Group" }).count(), 1, "the kind");
  const nameField = info.getByRole("textbox", { name: "Room name", exact: true });
  await nameField.fill("n".repeat(101));
  await info.getByRole("button", { name: "Save room info" }).click();
  await info.getByRole("alert").filter({ hasText: "room name is longer than 100 characters (name_too_long)" }).waitFor();
  await nameField.fill("   ");
  await info.getByRole("button", { name: "Save room info" }).click();
  await info.getByRole("alert").filter({ hasText: "a room's name cannot be blank (invalid_field)" }).waitFor();
  assert.equal((await api("GET", `/v1/rooms/${roomId}`, aliceToken)).name, "Launch plan", "nothing was changed");
  await nameField.fill("Launch plan v2");
  await info.getByRole("textbox", { name: "Description", exact: true }).fill("Ship it in May");
  await info.getByRole("button", { name: "Save room info" }).click();
  await info.getByRole("status").filter({ hasText: "Saved." }).waitFor();
  await info.locator("dd", { hasText: "Ship it in May" }).waitFor();
  await alice.locator("#room-title", { hasText: "Launch plan v2" }).waitFor();
  await screenshot(alice, "room-info");
  await info.getByRole("button", { name: "Close room info" }).click();
  const stored = await api("GET", `/v1/rooms/${roomId}`, aliceToken);
  assert.equal(stored.name, "Launch plan v2");
  assert.equal(stored.description, "Ship it in May");
  // Bob sees the new name live.
  await bobNav.getByRole("button", { name: /Launch plan v2/ }).waitFor({ timeout: 15_000 });
  await bobNav.getByRole("button", { name: /Launch plan v2/ }).click();
  const bobLog = bob.getByRole("log", { name: "Messages" });

  // An image and a file by their address.
  const log = alice.getByRole("log", { name: "Messages" });
  await alice.getByRole("button", { name: "Attach", exact: true }).click();
  await alice.getByLabel("Attachment kind").selectOption("image");
  await alice.getByLabel("File address (URL)").fill("https://media.example.test/team-photo.png");
  await alice.getByLabel("File name (optional)").fill("team-photo.png");
  await alice.getByRole("button", { name: "Send attachment" }).click();
  await alice.getByLabel("Attachment kind").selectOption("file");
  await alice.getByLabel("File address (URL)").fill("https://media.example.test/plan.pdf");
  await alice.getByLabel("File name (optional)").fill("plan.pdf");
  await alice.getByRole("button", { name: "Send attachment" }).click();
  // An address the API refuses: failed, with the API's message.
  await alice.getByLabel("File address (URL)").fill("ftp://media.example.test/old.zip");
  await alice.getByRole("button", { name: "Send attachment" }).click();
  await log.locator(".message.failed", { hasText: "failed: url is invalid or longer than 2048 characters" }).waitFor({ timeout: 15_000 });
  for (const page of [alice, bob]) {
    const img = page.getByRole("log", { name: "Messages" }).getByRole("img", { name: "Image: team-photo.png" });
    await img.waitFor({ timeout: 15_000 });
    await page.waitForFunction((el) => el.complete && el.naturalWidth === 160, await img.elementHandle());
    const file = page.getByRole("log", { name: "Messages" }).getByRole("link", { name: "plan.pdf" });
    await file.waitFor();
    assert.equal(await file.getAttribute("href"), "https://media.example.test/plan.pdf");
  }
  await log.locator(".message.mine", { hasText: "plan.pdf" }).locator(".state", { hasText: "sent" }).waitFor();
  await alice.getByRole("button", { name: "Attach", exact: true }).click();
  await alice.getByRole("form", { name: "Attach a file by its address" }).waitFor({ state: "hidden" });
  await log.getByRole("img", { name: "Image: team-photo.png" }).scrollIntoViewIfNeeded();
  await screenshot(alice, "room-media");
  let events = await history(roomId, aliceToken);
  const bodies = events.filter((e) => e.type === "message").map((e) => e.body);
  assert.ok(bodies.some((b) => b.type === "image" && b.url === "https://media.example.test/team-photo.png" && b.name === "team-photo.png"), JSON.stringify(bodies));
  assert.ok(bodies.some((b) => b.type === "file" && b.url === "https://media.example.test/plan.pdf" && b.name === "plan.pdf"), JSON.stringify(bodies));
  assert.ok(!bodies.some((b) => b.url && b.url.startsWith("ftp:")), "the refused address was not stored");

  // Recall: alice's message becomes "recalled" on both screens and in the engine.
  await alice.getByLabel("Message", { exact: true }).fill("Wrong room, sorry");
  await alice.getByRole("button", { name: "Send", exact: true }).click();
  const mine = log.locator(".message.mine", { hasText: "Wrong room, sorry" });
  await mine.locator(".state", { hasText: "sent" }).waitFor();
  await bobLog.getByText("Wrong room, sorry").waitFor({ timeout: 15_000 });
  // Bob sees who sent it by her name.
  await bobLog.locator(".message", { hasText: "Wrong room, sorry" }).locator(".sender", { hasText: "Alice Anders" }).waitFor();
  const messageId = await mine.getAttribute("data-message-id");
  await mine.getByRole("button", { name: /^Recall/ }).click();
  await log.locator(`[data-message-id="${messageId}"]`, { hasText: "You recalled this message." }).waitFor();
  await bobLog.locator(`[data-message-id="${messageId}"]`, { hasText: "Alice Anders recalled this message." }).waitFor({ timeout: 15_000 });
  assert.equal(await bobLog.getByText("Wrong room, sorry").count(), 0, "bob no longer sees the text");
  events = await history(roomId, bobToken);
  const recalled = events.find((e) => e.message_id === messageId);
  assert.equal(recalled.recalled, true);
  assert.equal(recalled.body, null);

  // A text over the API's limit: failed with the API's message, nothing stored.
  const long = "x".repeat(10_001);
  await alice.getByLabel("Message", { exact: true }).fill(long);
  await alice.getByRole("button", { name: "Send", exact: true }).click();
  await log.locator(".message.failed", { hasText: "failed: message text is longer than 10000 characters" }).waitFor({ timeout: 15_000 });
  events = await history(roomId, aliceToken);
  assert.ok(!events.some((e) => e.type === "message" && e.body?.type === "text" && e.body.text.length > 10_000), "not stored");

  // Bob's notifications: being added to the room, newest first; it opens the room.
  await bobNav.getByRole("button", { name: /Notifications/ }).click();
  const list = bob.getByRole("list", { name: "Notifications" });
  await list.getByText("You were added to Launch plan").waitFor();
  const first = await list.locator("li").first().textContent();
  assert.match(first, /You were added to Launch plan/, "newest first");
  const api_ = (await api("GET", "/v1/notifications", bobToken)).notifications;
  assert.equal(api_[0].kind, "room_added");
  assert.equal(api_[0].room_id, roomId);
  // Seen once shown: the count goes (once the screen has read the notifications).
  await bobNav.getByLabel(/new$/).waitFor({ state: "detached", timeout: 10_000 });
  assert.equal(await bobNav.getByLabel(/new$/).count(), 0, "seen once shown");
  await screenshot(bob, "notifications");
  await list.getByRole("button", { name: /Open room: Launch plan v2/ }).first().click();
  await bob.locator("#room-title", { hasText: "Launch plan v2" }).waitFor();

  assert.deepEqual(errors, [], "no script errors");
  await aliceContext.close();
  await bobContext.close();
});

test("alice adds people to a group room from Room info, then leaves it", async () => {
  const aliceToken = await token("acme", "alice");
  const room = await api("POST", "/v1/rooms", aliceToken, { members: ["bob@acme"], name: "Short-lived" });
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const alice = await context.newPage();
  await logIn(alice, engine.base, "acme", "alice");
  const nav = alice.getByRole("navigation", { name: "Rooms" });
  await nav.getByRole("button", { name: /Short-lived/ }).click();
  await alice.getByRole("button", { name: "Room info" }).click();
  const info = alice.getByRole("dialog", { name: "Room info" });
  // Add admin (picked) and an unknown id (typed): the one is added, the other left out, with why.
  await info.getByRole("checkbox", { name: "Acme Admin" }).check();
  await info.getByLabel("Other people (user ids)").fill("nobody@acme");
  await info.getByRole("button", { name: "Add to room" }).click();
  await info.getByRole("status").filter({ hasText: "Added: Acme Admin." }).waitFor();
  await info.getByRole("alert").filter({ hasText: "Left out: nobody@acme (no such user)." }).waitFor();
  await info.getByRole("list", { name: "Participants" }).getByText("Acme Admin").waitFor();
  const afterAdd = await api("GET", `/v1/rooms/${room.id}`, aliceToken);
  assert.deepEqual(afterAdd.members.map((m) => m.user).sort(), ["admin@acme", "alice@acme", "bob@acme"]);
  await info.getByRole("button", { name: "Leave room" }).click();
  await info.getByRole("button", { name: "Leave now" }).click();
  await alice.getByText("You left this room.").waitFor();
  assert.equal(await nav.getByRole("button", { name: /Short-lived/ }).count(), 0, "gone from the list");
  const bobView = await api("GET", `/v1/rooms/${room.id}`, await token("acme", "bob"));
  assert.deepEqual(bobView.members.map((m) => m.user).sort(), ["admin@acme", "bob@acme"]);
  await context.close();
});

test("in a LINE room a recall is refused with the API's message and the message stays; LINE media show", async () => {
  const aliceToken = await token("acme", "alice");
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const alice = await context.newPage();
  await logIn(alice, engine.base, "acme", "alice");
  const nav = alice.getByRole("navigation", { name: "Rooms" });
  await nav.getByRole("button", { name: /General/ }).waitFor();

  const source = { type: "user", userId: demo.LINE_DEMO_USER };
  await asLineUser([{ type: "follow", source, replyToken: "f1", follow: { isUnblocked: false } }]);
  const lineRoom = nav.getByRole("button", { name: /Taro Yamada/ });
  await lineRoom.waitFor({ timeout: 20_000 });
  // The LINE user sends a photo and a file: kept by the engine, read with alice's token.
  await simPost("/_sim/content/7001", png(120, 90, [200, 60, 40]), "image/png");
  await simPost("/_sim/content/7002", Buffer.from("menu of the day\n"), "application/pdf");
  await asLineUser([
    { type: "message", source, replyToken: "m1", message: { id: "7001", type: "image", contentProvider: { type: "line" }, quoteToken: "q7001" } },
    { type: "message", source, replyToken: "m2", message: { id: "7002", type: "file", fileName: "menu.pdf", fileSize: 16 } },
  ]);
  await lineRoom.click();
  const log = alice.getByRole("log", { name: "Messages" });
  const photo = log.getByRole("img", { name: "Image" });
  await photo.waitFor({ timeout: 20_000 });
  await alice.waitForFunction((el) => el.complete && el.naturalWidth === 120, await photo.elementHandle());
  assert.match(await photo.getAttribute("src"), /^data:image\/png;base64,/);
  const menu = log.getByRole("link", { name: "menu.pdf" });
  await menu.waitFor({ timeout: 20_000 });
  const [download] = await Promise.all([alice.waitForEvent("download"), menu.click()]);
  assert.equal(download.suggestedFilename(), "menu.pdf");

  await alice.getByLabel("Message", { exact: true }).fill("Our shop opens at ten");
  await alice.getByRole("button", { name: "Send", exact: true }).click();
  const mine = log.locator(".message.mine", { hasText: "Our shop opens at ten" });
  await mine.locator(".state", { hasText: "sent" }).waitFor();
  const messageId = await mine.getAttribute("data-message-id");
  await mine.getByRole("button", { name: /^Recall/ }).click();
  await alice.getByRole("alert").filter({ hasText: "messages sent to LINE cannot be recalled (recall_not_allowed)" }).waitFor();
  await log.getByText("Our shop opens at ten").waitFor();
  assert.equal(await log.getByText("You recalled this message.").count(), 0, "the message stays");
  await screenshot(alice, "recall-refused");
  // Room info names the LINE user by their LINE name, with the LINE marker.
  await alice.getByRole("button", { name: "Room info" }).click();
  const info = alice.getByRole("dialog", { name: "Room info" });
  const taro = info.getByRole("list", { name: "Participants" }).locator("li", { hasText: "Taro Yamada" });
  await taro.waitFor();
  assert.equal(await taro.locator(".marker-line").count(), 1, "the LINE marker");
  assert.equal(await info.locator("dd", { hasText: "LINE 1:1 chat" }).count(), 1, "the kind");
  assert.equal(await info.getByRole("textbox", { name: "Room name" }).count(), 0, "a 1:1 room is not renamed");
  await info.getByRole("button", { name: "Close room info" }).click();
  const roomId = await nav.locator("li", { has: alice.getByRole("button", { name: /Taro Yamada/ }) }).getAttribute("data-room");
  const stored = (await history(roomId, aliceToken)).find((e) => e.message_id === messageId);
  assert.equal(stored.body.text, "Our shop opens at ten");
  assert.ok(!stored.recalled, "not recalled in the engine");
  await eventually(
    async () => (await pushes()).flatMap((r) => r.body.messages || []).some((m) => m.text === "Our shop opens at ten"),
    "the message reached LINE",
  );
  await context.close();
});
