// Contacts and My LINE: alice adds carol of globex as an external contact (refused until both
// companies trust each other), edits her additional information (a refused edit changes
// nothing), chats with her from the contact and deletes her (the room stays); she saves a LINE
// friend to Clients/Partners with a name; she sees her LINE invite (ID, add-friend URL, QR code
// and profile card) and edits her LINE profile; bob, not allowed LINE, is told so.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { startLineDemo } from "./engine.mjs";
import { launch, logIn, screenshot } from "./browser.mjs";
import { engineApi, lineApi } from "./api.mjs";

let line;
let engine;
let demo;
let browser;
let api, token; // the engine's API
let asLineUser; // the LINE platform simulator's

before(async () => {
  line = await startLineDemo();
  ({ engine, demo } = line);
  ({ api, token } = engineApi(engine.base));
  ({ asLineUser } = lineApi(line));
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await line?.stop();
});

async function openView(page, label) {
  await page.getByRole("navigation", { name: "Rooms" }).getByRole("button", { name: label, exact: true }).click();
}

test("alice adds carol of globex, edits her, chats with her and deletes her", async () => {
  const aliceToken = await token("acme", "alice");
  const context = await browser.newContext({ viewport: { width: 1100, height: 1000 } });
  const alice = await context.newPage();
  await logIn(alice, engine.base, "acme", "alice");
  await openView(alice, "Contacts");
  const addForm = alice.getByRole("form", { name: "Add an external contact" });
  await addForm.getByLabel("Their company ID").fill("globex");
  await addForm.getByLabel("Their username").fill("carol");

  // No trust between the companies yet: the API's refusal is on the screen, nothing is saved.
  await addForm.getByRole("button", { name: "Add contact" }).click();
  await addForm.getByRole("alert").getByText("(external_not_authorized)").waitFor();
  assert.deepEqual((await api("GET", "/v1/contacts", aliceToken)).contacts, []);

  // Both companies' admins authorize each other; the same form now adds her.
  await api("POST", "/v1/admin/trusts", await token("acme", "admin"), { tenant: "globex" });
  await api("POST", "/v1/admin/trusts", await token("globex", "admin"), { tenant: "acme" });
  await addForm.getByLabel("Their company ID").fill("globex");
  await addForm.getByLabel("Their username").fill("carol");
  await addForm.getByRole("button", { name: "Add contact" }).click();
  await alice.getByRole("status").getByText("Carol Chen (carol@globex) is now in your Clients/Partners").waitFor();
  assert.equal(await addForm.getByRole("alert").textContent(), "", "the earlier refusal is gone");
  const saved = alice.getByRole("list", { name: "Clients/Partners" });
  const carol = saved.getByRole("listitem").filter({ hasText: "carol@globex" });
  await carol.getByText("Globex", { exact: true }).waitFor();
  const [stored] = (await api("GET", "/v1/contacts", aliceToken)).contacts;
  assert.equal(stored.user, "carol@globex");
  assert.ok(stored.room_id, "a 1:1 room came with the contact");

  // Her phone and email, stored by the API and shown in the list.
  await carol.getByRole("button", { name: "Edit Carol Chen" }).click();
  const edit = carol.getByRole("form", { name: "Edit the additional information of Carol Chen" });
  await edit.getByLabel("Phone").fill("+81 3-1234-5678");
  await edit.getByLabel("Email").fill("carol@globex.example");
  await edit.getByRole("button", { name: "Save" }).click();
  await carol.getByText("+81 3-1234-5678").waitFor();
  await carol.getByText("carol@globex.example").waitFor();
  assert.ok(await edit.isHidden(), "the form closes once saved");
  let now = await api("GET", `/v1/contacts/${stored.id}`, aliceToken);
  assert.equal(now.phone, "+81 3-1234-5678");
  assert.equal(now.email, "carol@globex.example");
  assert.equal(now.name, null);

  // A name over the API's 100 characters: its refusal shows in the form; nothing changes.
  await carol.getByRole("button", { name: "Edit Carol Chen" }).click();
  assert.equal(await edit.getByLabel("Phone").inputValue(), "+81 3-1234-5678", "the form shows what is stored");
  await edit.getByLabel("Name").fill("C".repeat(101));
  await edit.getByLabel("Phone").fill("+81 3-9999-0000");
  await edit.getByRole("button", { name: "Save" }).click();
  await edit.getByRole("alert").getByText("name is longer than 100 characters (field_too_long)").waitFor();
  assert.ok(await edit.isVisible(), "the form stays open with the typed values");
  await screenshot(alice, "contacts-edit");
  now = await api("GET", `/v1/contacts/${stored.id}`, aliceToken);
  assert.equal(now.name, null);
  assert.equal(now.phone, "+81 3-1234-5678", "a refused edit stores nothing");
  await edit.getByRole("button", { name: "Cancel" }).click();
  await carol.getByText("+81 3-1234-5678").waitFor();

  // Chat opens the 1:1 room that came with the contact.
  await carol.getByRole("button", { name: "Chat with Carol Chen" }).click();
  await alice.getByRole("log", { name: "Messages" }).waitFor();
  assert.equal(await alice.locator("#room-title").getAttribute("data-room"), stored.room_id);
  const roomButton = alice.getByRole("navigation", { name: "Rooms" }).getByRole("button", { name: /Carol Chen/ });
  assert.equal(await roomButton.getAttribute("aria-current"), "true", "the room list marks it open");

  // Delete asks on the page first; "Keep" changes nothing, "Delete … now" removes her.
  await openView(alice, "Contacts");
  await carol.getByRole("button", { name: "Delete Carol Chen" }).click();
  const confirm = carol.getByRole("group", { name: "Confirm deleting Carol Chen" });
  await confirm.getByText("history stay").waitFor();
  await confirm.getByRole("button", { name: "Keep Carol Chen" }).click();
  assert.ok(await confirm.isHidden());
  assert.equal((await api("GET", "/v1/contacts", aliceToken)).contacts.length, 1);
  await carol.getByRole("button", { name: "Delete Carol Chen" }).click();
  await confirm.getByRole("button", { name: "Delete Carol Chen now" }).click();
  await alice.getByRole("status").getByText("Deleted Carol Chen from Clients/Partners").waitFor();
  await carol.waitFor({ state: "detached" });
  await saved.getByText("No saved contacts yet.").waitFor();
  assert.deepEqual((await api("GET", "/v1/contacts", aliceToken)).contacts, []);
  await api("GET", `/v1/contacts/${stored.id}`, aliceToken, undefined, 404);
  const rooms = await api("GET", `/v1/rooms?members=${encodeURIComponent("carol@globex")}`, aliceToken);
  assert.deepEqual(rooms.rooms.map((r) => r.id), [stored.room_id], "the room and its history stay");
  await context.close();
});

test("alice saves a LINE friend to Clients/Partners with a name; deleting keeps the friend", async () => {
  const aliceToken = await token("acme", "alice");
  await asLineUser([{ type: "follow", source: { type: "user", userId: demo.LINE_DEMO_USER }, replyToken: "f1", follow: { isUnblocked: false } }]);
  const context = await browser.newContext({ viewport: { width: 390, height: 800 } });
  const alice = await context.newPage();
  await logIn(alice, engine.base, "acme", "alice");
  await alice.getByRole("navigation", { name: "Rooms" }).getByRole("button", { name: /Taro Yamada/ }).waitFor({ timeout: 20_000 });
  await openView(alice, "Contacts");
  const friends = alice.getByRole("list", { name: "Messaging on LINE" });
  const saved = alice.getByRole("list", { name: "Clients/Partners" });
  const friend = friends.getByRole("listitem").filter({ hasText: "Taro Yamada" });
  await friend.getByRole("button", { name: "Save Taro Yamada to Clients/Partners" }).click();

  // Saved: it appears in Clients/Partners with its edit form open for a name, phone, email.
  const edit = saved.getByRole("form", { name: "Edit the additional information of Taro Yamada" });
  await edit.getByLabel("Name").waitFor();
  await edit.getByLabel("Name").fill("Taro (Tokyo shop)");
  await edit.getByLabel("Email").fill("not an email");
  await edit.getByRole("button", { name: "Save" }).click();
  await edit.getByRole("alert").getByText("invalid email address (invalid_email)").waitFor();
  await edit.getByLabel("Email").fill("taro@shop.example");
  await edit.getByRole("button", { name: "Save" }).click();
  const taro = saved.getByRole("listitem").filter({ hasText: "Taro (Tokyo shop)" });
  await taro.getByText("taro@shop.example").waitFor();
  await friend.getByText("In Clients/Partners as Taro (Tokyo shop)").waitFor();
  assert.equal(await friend.getByRole("button", { name: /^Save / }).count(), 0, "no Save once saved");
  const [stored] = (await api("GET", "/v1/contacts?kind=line", aliceToken)).contacts;
  assert.equal(stored.user, `line:${demo.LINE_DEMO_USER}`);
  assert.equal(stored.name, "Taro (Tokyo shop)");
  assert.equal(stored.email, "taro@shop.example");

  // A block from Clients/Partners shows in Messaging on LINE too.
  await taro.getByRole("button", { name: "Block Taro (Tokyo shop)" }).click();
  await friends.getByText("Blocked").waitFor();
  await friend.getByRole("button", { name: "Unblock Taro Yamada", exact: true }).click();
  await taro.getByRole("button", { name: "Block Taro (Tokyo shop)", exact: true }).waitFor();
  assert.equal((await api("GET", `/v1/contacts/${stored.id}`, aliceToken)).blocked, false);

  // Chat from the LINE friend opens the LINE room.
  await friend.getByRole("button", { name: "Chat with Taro Yamada" }).click();
  await alice.getByRole("log", { name: "Messages" }).waitFor();
  assert.equal(await alice.locator("#room-title").textContent(), "Taro Yamada");

  await openView(alice, "Contacts");
  await taro.getByRole("button", { name: "Delete Taro (Tokyo shop)" }).click();
  await taro.getByRole("button", { name: "Delete Taro (Tokyo shop) now" }).click();
  await taro.waitFor({ state: "detached" });
  await friend.getByRole("button", { name: "Save Taro Yamada to Clients/Partners" }).waitFor();
  assert.deepEqual((await api("GET", "/v1/contacts", aliceToken)).contacts, []);
  const left = (await api("GET", "/v1/contacts/line-friends", aliceToken)).line_friends;
  assert.deepEqual(left.map((f) => [f.user, f.saved]), [[`line:${demo.LINE_DEMO_USER}`, false]], "still a LINE friend");
  await context.close();
});

test("alice sees her LINE invite and edits her LINE profile; bob is told he may not use LINE", async () => {
  const aliceToken = await token("acme", "alice");
  const context = await browser.newContext({ viewport: { width: 1100, height: 1350 } });
  const alice = await context.newPage();
  await logIn(alice, engine.base, "acme", "alice");
  await openView(alice, "My LINE");
  const invite = alice.getByRole("region", { name: "Let LINE users add you as a friend" });
  await invite.getByText("alice@acme", { exact: true }).waitFor();
  const url = invite.getByRole("link", { name: "https://line.me/R/ti/p/@acmealice" });
  assert.equal(await url.getAttribute("href"), "https://line.me/R/ti/p/@acmealice");
  for (const name of [/^QR code/, /^Profile card/]) {
    const img = invite.getByRole("img", { name });
    await img.waitFor();
    await alice.waitForFunction((node) => node.complete && node.naturalWidth > 0, await img.elementHandle(), { timeout: 15_000 });
    assert.match(await img.getAttribute("src"), /^data:image\/png;base64,/);
  }
  await invite.getByRole("link", { name: "Save QR code" }).waitFor();

  const profile = alice.getByRole("region", { name: "Your profile on LINE" });
  await profile.getByText("Alice Anders").waitFor();
  await profile.getByText("Acme", { exact: true }).waitFor();
  assert.equal(await profile.getByLabel("Name").count(), 0, "the name is not editable");
  const form = profile.getByRole("form", { name: "Edit what LINE users see" });
  await form.getByLabel("Website").fill("not a url");
  await form.getByRole("button", { name: "Save LINE profile" }).click();
  await form.getByRole("alert").getByText("(invalid_url)").waitFor();
  assert.equal((await api("GET", "/v1/me/line-profile", aliceToken)).website, null, "a refused edit stores nothing");
  await form.getByLabel("About").fill("Sales at Acme: ask me about orders.");
  await form.getByLabel("Website").fill("https://acme.example");
  await form.getByRole("button", { name: "Save LINE profile" }).click();
  await form.getByRole("status").getByText("Saved").waitFor();
  assert.equal(await form.getByRole("alert").textContent(), "");
  await profile.locator("#line-profile-shown").getByText("Sales at Acme: ask me about orders.").waitFor();
  await alice.locator(".member-screen").evaluate((node) => node.scrollTo(0, 0));
  await screenshot(alice, "my-line");
  const stored = await api("GET", "/v1/me/line-profile", aliceToken);
  assert.equal(stored.about, "Sales at Acme: ask me about orders.");
  assert.equal(stored.website, "https://acme.example");
  assert.equal(stored.phone, null);
  await context.close();

  // bob is not among the members acme's admin allowed LINE: the refusal, explained.
  const bobContext = await browser.newContext({ viewport: { width: 390, height: 800 } });
  const bob = await bobContext.newPage();
  await logIn(bob, engine.base, "acme", "bob");
  await openView(bob, "My LINE");
  await bob.getByRole("heading", { name: "You cannot connect with LINE users" }).waitFor();
  await bob.getByRole("alert").getByText("the caller may not use LINE (line_not_authorized)").waitFor();
  assert.equal(await bob.getByRole("img").count(), 0, "no invite images");
  await bobContext.close();
});
