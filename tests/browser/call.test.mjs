// Calls between two browsers over real WebRTC: alice of acme calls carol of globex (their
// companies trust each other) in their external 1:1 room. The engine relays the signaling;
// media flows between the two Chromiums (a fake camera and microphone, host candidates on this
// machine, no TURN). The call's history stays in the room.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { startEngine } from "./engine.mjs";
import { launch, logIn, screenshot } from "./browser.mjs";
import { engineApi } from "./api.mjs";

let engine;
let browser;
let api, token; // the engine's API
let roomId; // alice and carol's external 1:1 room

before(async () => {
  engine = await startEngine();
  ({ api, token } = engineApi(engine.base));
  browser = await launch({ media: true });
  // Both companies authorize each other; alice opens a 1:1 room with carol of globex.
  await api("POST", "/v1/admin/trusts", await token("acme", "admin"), { tenant: "globex" });
  await api("POST", "/v1/admin/trusts", await token("globex", "admin"), { tenant: "acme" });
  roomId = (await api("POST", "/v1/rooms", await token("acme", "alice"), { members: ["carol@globex"] })).id;
});

after(async () => {
  await browser?.close();
  await engine?.stop();
});

/** A logged-in page of its own (a browser context allowed the camera and microphone). */
async function person(tenant, username, viewport = { width: 1100, height: 720 }) {
  const context = await browser.newContext({ viewport, permissions: ["camera", "microphone"] });
  const page = await context.newPage();
  await logIn(page, engine.base, tenant, username);
  await page.getByRole("navigation", { name: "Rooms" }).getByRole("button", { name: /Carol Chen|Alice Anders/ }).waitFor({ timeout: 15_000 });
  return { context, page };
}

async function openExternalRoom(page, otherName) {
  await page.getByRole("navigation", { name: "Rooms" }).getByRole("button", { name: new RegExp(otherName) }).click();
  await page.locator("#room-title", { hasText: otherName }).waitFor();
}

/** The call's events in the room, as the API stores them. */
async function callEvents() {
  const answer = await api("GET", `/v1/rooms/${roomId}/messages?limit=50`, await token("acme", "alice"));
  return (answer.events || []).filter((f) => f.type === "room_event" && f.event.type.startsWith("call_")).map((f) => f.event);
}

test("alice video-calls carol: both connect and see each other, hang up, and the call stays in the room with its duration", async () => {
  const alice = await person("acme", "alice");
  const carol = await person("globex", "carol");
  // carol is logged in on a second device too (a phone-sized window): it rings there as well.
  const carolPhone = await person("globex", "carol", { width: 390, height: 760 });

  await openExternalRoom(alice.page, "Carol Chen");
  await alice.page.getByRole("button", { name: "Video call", exact: true }).click();
  const aliceCall = alice.page.getByRole("region", { name: /Video call/ });
  await aliceCall.locator("#call-state", { hasText: "Calling…" }).waitFor({ timeout: 15_000 });

  // It rings for carol whatever screen she is on (no room open), on both her devices.
  for (const device of [carol.page, carolPhone.page]) {
    const incoming = device.getByRole("dialog", { name: "Incoming call" });
    await incoming.getByText(/Video call from Alice Anders/).waitFor({ timeout: 15_000 });
    await incoming.getByText("Ringing…").waitFor();
  }
  await screenshot(carol.page, "call-incoming");
  await carol.page.getByRole("dialog", { name: "Incoming call" }).getByRole("button", { name: "Accept" }).click();
  // The other device stops ringing.
  await carolPhone.page.getByText("Answered on another device").waitFor({ timeout: 15_000 });
  assert.equal(await carolPhone.page.getByRole("dialog", { name: "Incoming call" }).count(), 0, "no longer ringing on the phone");

  // Both reach a connected peer connection, and real frames of the other's camera arrive.
  const carolCall = carol.page.getByRole("region", { name: /Video call/ });
  for (const [call, other] of [[aliceCall, "carol@globex"], [carolCall, "alice@acme"]]) {
    const tile = call.locator(`.tile.remote[data-user="${other}"]`);
    await tile.and(call.locator('[data-connection-state="connected"]')).waitFor({ timeout: 30_000 });
    await tile.getByText("Connected").waitFor();
    await call.locator("#call-state", { hasText: "Connected" }).waitFor();
    const video = tile.locator("video.remote");
    await video.evaluate((v) => new Promise((resolve, reject) => {
      const deadline = Date.now() + 20_000;
      const check = () => (v.videoWidth > 0 ? resolve() : Date.now() > deadline ? reject(new Error("no frame")) : setTimeout(check, 100));
      check();
    }));
    assert.ok((await video.evaluate((v) => v.videoWidth)) > 0, "frames of the other's camera arrived");
    // The local preview is the fake camera, muted.
    assert.equal(await call.locator("video.local").evaluate((v) => v.muted && v.srcObject.getVideoTracks().length), 1);
  }
  await screenshot(alice.page, "call-connected");
  await screenshot(carol.page, "call-connected-carol");

  // Mute and camera off switch the tracks off, and back on.
  await aliceCall.getByRole("button", { name: "Mute", exact: true }).click();
  await aliceCall.getByRole("button", { name: "Unmute" }).waitFor();
  assert.equal(await aliceCall.locator("video.local").evaluate((v) => v.srcObject.getAudioTracks()[0].enabled), false);
  await aliceCall.getByRole("button", { name: "Camera off" }).click();
  assert.equal(await aliceCall.locator("video.local").evaluate((v) => v.srcObject.getVideoTracks()[0].enabled), false);
  await aliceCall.getByRole("button", { name: "Camera on" }).click();
  await aliceCall.getByRole("button", { name: "Unmute" }).click();
  assert.equal(await aliceCall.locator("video.local").evaluate((v) => v.srcObject.getAudioTracks()[0].enabled), true);

  await new Promise((r) => setTimeout(r, 1500)); // a call of a second or two
  await aliceCall.getByRole("button", { name: "Hang up" }).click();
  for (const call of [aliceCall, carolCall]) {
    await call.locator("#call-state", { hasText: /^Call ended · \d+:\d\d$/ }).waitFor({ timeout: 15_000 });
    assert.equal(await call.locator("video").count(), 0, "the camera and the other's media are gone");
  }
  await screenshot(carol.page, "call-ended");
  await carolCall.getByRole("button", { name: "Close" }).click();

  // The history: who started it, and the call with its duration, in both timelines.
  const aliceLog = alice.page.getByRole("log", { name: "Messages" });
  await aliceLog.getByText("You started a video call").waitFor({ timeout: 15_000 });
  await aliceLog.getByText(/^Video call · \d+:\d\d$/).waitFor({ timeout: 15_000 });
  await openExternalRoom(carol.page, "Alice Anders");
  const carolLog = carol.page.getByRole("log", { name: "Messages" });
  await carolLog.getByText("Alice Anders started a video call").waitFor({ timeout: 15_000 });
  await carolLog.getByText(/^Video call · \d+:\d\d$/).waitFor();
  await screenshot(carol.page, "call-history");

  const events = await callEvents();
  const started = events.find((e) => e.type === "call_started");
  const ended = events.find((e) => e.type === "call_ended" && e.call_id === started?.call_id);
  assert.ok(started && ended, `started and ended events: ${JSON.stringify(events)}`);
  assert.equal(started.by, "alice@acme");
  assert.equal(ended.media, "video");
  assert.equal(ended.reason, "completed");
  assert.ok(ended.duration_ms > 0, `a duration: ${ended.duration_ms}`);
  // The duration the screen shows is the stored one.
  const shown = await aliceLog.getByText(/^Video call · \d+:\d\d$/).textContent();
  const seconds = Math.round(ended.duration_ms / 1000);
  assert.equal(shown, `Video call · ${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`);

  for (const p of [alice, carol, carolPhone]) await p.context.close();
});

test("a call carol declines and one alice cancels before an answer: declined, and a missed call for carol", async () => {
  const alice = await person("acme", "alice");
  await openExternalRoom(alice.page, "Carol Chen");

  // An audio call carol declines. She logs in while it rings: her page learns of it as it
  // connects (the calls going on come with the sync).
  await alice.page.getByRole("button", { name: "Audio call", exact: true }).click();
  await alice.page.getByRole("region", { name: /Audio call/ }).locator("#call-state", { hasText: "Calling…" }).waitFor({ timeout: 15_000 });
  const carol = await person("globex", "carol");
  const incoming = carol.page.getByRole("dialog", { name: "Incoming call" });
  await incoming.getByText(/Audio call from Alice Anders/).waitFor({ timeout: 15_000 });
  await openExternalRoom(carol.page, "Alice Anders");
  await incoming.getByRole("button", { name: "Decline" }).click();
  const aliceCall = alice.page.getByRole("region", { name: /Audio call/ });
  await aliceCall.locator("#call-state", { hasText: "Call declined" }).waitFor({ timeout: 15_000 });
  await alice.page.getByRole("log", { name: "Messages" }).getByText("Audio call · declined").waitFor({ timeout: 15_000 });
  await carol.page.getByRole("log", { name: "Messages" }).getByText("Declined audio call from Alice Anders").waitFor({ timeout: 15_000 });
  await aliceCall.getByRole("button", { name: "Close" }).click();
  assert.equal(await alice.page.getByRole("region", { name: /Audio call/ }).count(), 0, "the call's screen closed");

  // A video call alice cancels before carol answers: a missed call for carol.
  await alice.page.getByRole("button", { name: "Video call", exact: true }).click();
  await incoming.getByText(/Video call from Alice Anders/).waitFor({ timeout: 15_000 });
  await alice.page.getByRole("region", { name: /Video call/ }).getByRole("button", { name: "Hang up" }).click();
  await alice.page.getByRole("region", { name: /Video call/ }).locator("#call-state", { hasText: "Call cancelled" }).waitFor({ timeout: 15_000 });
  await carol.page.getByRole("dialog", { name: "Missed call" }).getByText(/Video call from Alice Anders/).waitFor({ timeout: 15_000 });
  await carol.page.getByRole("log", { name: "Messages" }).getByText("Missed video call from Alice Anders").waitFor({ timeout: 15_000 });
  await alice.page.getByRole("log", { name: "Messages" }).getByText("Video call · cancelled").waitFor({ timeout: 15_000 });
  await screenshot(carol.page, "call-missed");

  const ends = (await callEvents()).filter((e) => e.type === "call_ended").map((e) => [e.media, e.reason, e.duration_ms ?? null]);
  assert.deepEqual(ends.slice(-2), [["audio", "declined", null], ["video", "cancelled", null]]);

  for (const p of [alice, carol]) await p.context.close();
});

test("a call the engine refuses shows its message: the trust withdrawn, nobody is left to call", async () => {
  // The trust is withdrawn: carol is excluded from the external room, and a call there is
  // refused; the page says why, with the engine's code.
  const alice = await person("acme", "alice");
  await openExternalRoom(alice.page, "Carol Chen");
  await api("DELETE", "/v1/admin/trusts/globex", await token("acme", "admin"));
  await alice.page.getByRole("button", { name: "Audio call", exact: true }).click();
  const refusal = alice.page.locator("#call-error");
  await refusal.filter({ hasText: /^nobody else in this room to call \(not_allowed_for_kind\)$/ }).waitFor({ timeout: 15_000 });
  await screenshot(alice.page, "call-refused");
  assert.equal(await alice.page.getByRole("region", { name: /Audio call/ }).count(), 0, "no call screen");
  await alice.context.close();
});

test("a call nobody answers rings out: a missed call for bob, no answer for alice", async () => {
  // An engine of its own whose calls ring for 2 s.
  const quick = await startEngine({ env: { CHAT__CALLS__RING_TIMEOUT_SECS: "2" } });
  try {
    const open = async (username, other) => {
      const context = await browser.newContext({ viewport: { width: 1100, height: 720 }, permissions: ["camera", "microphone"] });
      const page = await context.newPage();
      await logIn(page, quick.base, "acme", username);
      await page.getByRole("navigation", { name: "Rooms" }).getByRole("button", { name: new RegExp(other) }).click();
      await page.locator("#room-title", { hasText: other }).waitFor({ timeout: 15_000 });
      return { context, page };
    };
    const alice = await open("alice", "Bob Brown");
    const bob = await open("bob", "Alice Anders");
    await alice.page.getByRole("button", { name: "Video call", exact: true }).click();
    await bob.page.getByRole("dialog", { name: "Incoming call" }).getByText(/Video call from Alice Anders/).waitFor({ timeout: 15_000 });
    // Nobody answers: it stops ringing by itself.
    await bob.page.getByRole("dialog", { name: "Missed call" }).waitFor({ timeout: 15_000 });
    await alice.page.getByRole("region", { name: /Video call/ }).locator("#call-state", { hasText: "No answer" }).waitFor({ timeout: 15_000 });
    await bob.page.getByRole("log", { name: "Messages" }).getByText("Missed video call from Alice Anders").waitFor({ timeout: 15_000 });
    await alice.page.getByRole("log", { name: "Messages" }).getByText("Video call · no answer").waitFor({ timeout: 15_000 });
    const aliceToken = await engineApi(quick.base).token("acme", "alice");
    const roomId = await bob.page.locator("#room-title").getAttribute("data-room");
    const events = (await engineApi(quick.base).api("GET", `/v1/rooms/${roomId}/messages?limit=50`, aliceToken)).events;
    const ended = events.map((f) => f.event).filter((e) => e && e.type === "call_ended");
    assert.deepEqual(ended.map((e) => [e.reason, e.missed, e.duration_ms ?? null]), [["missed", ["bob@acme"], null]]);
    for (const p of [alice, bob]) await p.context.close();
  } finally {
    await quick.stop();
  }
});

test("a group call in General: bob answers, admin declines then joins, everyone connects to everyone, and it goes on when bob leaves", async () => {
  const open = async (username) => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 720 }, permissions: ["camera", "microphone"] });
    const page = await context.newPage();
    await logIn(page, engine.base, "acme", username);
    await page.getByRole("navigation", { name: "Rooms" }).getByRole("button", { name: /General/ }).click();
    await page.locator("#room-title", { hasText: "General" }).waitFor({ timeout: 15_000 });
    return { context, page, call: page.getByRole("region", { name: /Video call/ }) };
  };
  const alice = await open("alice");
  const bob = await open("bob");
  const admin = await open("admin");
  await alice.page.getByRole("button", { name: "Video call", exact: true }).click();
  for (const p of [bob, admin]) {
    const incoming = p.page.getByRole("dialog", { name: "Incoming call" });
    await incoming.getByText(/Video call from Alice Anders/).waitFor({ timeout: 15_000 });
    await incoming.getByText("in General").waitFor();
  }
  await bob.page.getByRole("dialog", { name: "Incoming call" }).getByRole("button", { name: "Accept" }).click();
  await admin.page.getByRole("dialog", { name: "Incoming call" }).getByRole("button", { name: "Decline" }).click();
  // Declined, the call going on can still be joined from the room.
  await admin.page.getByRole("button", { name: "Join call" }).click();

  const connectedTo = async (p, others) => {
    for (const other of others) {
      await p.call.locator(`.tile.remote[data-user="${other}"][data-connection-state="connected"]`).waitFor({ timeout: 30_000 });
    }
    assert.equal(await p.call.locator(".tile.remote").count(), others.length, `${others.length} others on the screen`);
  };
  await connectedTo(alice, ["bob@acme", "admin@acme"]);
  await connectedTo(bob, ["alice@acme", "admin@acme"]);
  await connectedTo(admin, ["alice@acme", "bob@acme"]);
  await screenshot(admin.page, "call-group");

  // bob leaves: the two others go on, without his tile.
  await bob.call.getByRole("button", { name: "Hang up" }).click();
  await bob.call.locator("#call-state", { hasText: "You left the call" }).waitFor({ timeout: 15_000 });
  await bob.page.getByRole("button", { name: "Join call" }).waitFor({ timeout: 15_000 });
  for (const p of [alice, admin]) {
    await p.call.locator('.tile.remote[data-user="bob@acme"]').waitFor({ state: "detached", timeout: 15_000 });
    await p.call.locator("#call-state", { hasText: "Connected" }).waitFor();
  }
  await alice.call.getByRole("button", { name: "Hang up" }).click();
  for (const p of [alice, admin]) await p.call.locator("#call-state", { hasText: /^Call ended · \d+:\d\d$/ }).waitFor({ timeout: 15_000 });
  await bob.page.getByRole("log", { name: "Messages" }).getByText(/^Video call · \d+:\d\d$/).waitFor({ timeout: 15_000 });
  for (const p of [alice, bob, admin]) await p.context.close();
});
