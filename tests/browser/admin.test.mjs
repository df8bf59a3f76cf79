// The admin screens: acme's admin adds and edits members (the API's refusals on the page),
// switches who may connect to LINE and allows members one by one, binds a member to a LINE
// Official Account (no secret ever on the page), and reads the audit trail of what was just
// done; an admin who lost the role sees the API's 403, a member sees no admin screen, and
// globex's admin sees globex's members only; with the LINE platform simulator refusing a push
// (the monthly quota), the admin sees the undelivered message and the channel's last error,
// a refused resend, and a resend that reaches LINE.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { startLineDemo } from "./engine.mjs";
import { launch, logIn, screenshot } from "./browser.mjs";
import { engineApi, lineApi } from "./api.mjs";

let line;
let engine;
let browser;
let demo;
let request, api, token; // the engine's API
let simPost, asLineUser, pushes; // the LINE platform simulator's

async function users(adminToken) {
  return (await api("GET", "/v1/admin/users", adminToken)).users;
}

async function user(adminToken, id) {
  return (await users(adminToken)).find((u) => u.id === id);
}

before(async () => {
  // The engine beside the LINE platform simulator, alice bound to the demo channel.
  line = await startLineDemo();
  ({ engine, demo } = line);
  ({ request, api, token } = engineApi(engine.base));
  ({ simPost, asLineUser, pushes } = lineApi(line));
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await line?.stop();
});

test("acme's admin manages members and LINE access, binds a LINE channel and reads the audit trail", async () => {
  const adminToken = await token("acme", "admin");
  const before = await users(adminToken);
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  await logIn(page, engine.base, "acme", "admin");
  const nav = page.getByRole("navigation", { name: "Rooms" });

  // ----- Members -----
  await nav.getByRole("button", { name: "Members", exact: true }).click();
  const members = page.getByRole("list", { name: "Members" });
  await members.getByText("Alice Anders").waitFor();
  const add = page.getByRole("form", { name: "Add a member" });
  const alert = page.locator("#members-error");
  const notice = page.locator("#members-notice");

  // An empty username and a 10 000-character display name: the API's refusals, nothing created.
  await add.getByLabel("Password").fill("erin-secret-pass");
  await add.getByRole("button", { name: "Add member" }).click();
  await page.getByRole("alert").filter({ hasText: "invalid_username" }).waitFor();
  assert.equal(await alert.textContent(), "usernames are 1-64 of [a-z0-9._-] (invalid_username)");
  await add.getByLabel("Username", { exact: true }).fill("erin");
  await add.getByLabel(/^Display name/).fill("x".repeat(10_000));
  await add.getByRole("button", { name: "Add member" }).click();
  await page.getByRole("alert").filter({ hasText: "name_too_long" }).waitFor();
  assert.equal(await alert.textContent(), "display names are 1 to 100 characters (name_too_long)");
  assert.deepEqual((await users(adminToken)).map((u) => u.id), before.map((u) => u.id), "nothing was created");

  // erin is added; she exists and logs in with the password set.
  await add.getByLabel(/^Display name/).fill("Erin Evans");
  await add.getByRole("button", { name: "Add member" }).click();
  await members.getByText("Erin Evans").waitFor();
  assert.match(await notice.textContent(), /^Added Erin Evans \(erin\) \(erin@acme\); may not connect to LINE yet\.$/);
  assert.equal(await alert.textContent(), "");
  const erin = await user(adminToken, "erin@acme");
  assert.equal(erin.display_name, "Erin Evans");
  assert.equal(erin.admin, false);
  const me = await api("GET", "/v1/me", await token("acme", "erin", "erin-secret-pass"));
  assert.equal(me.id, "erin@acme");

  // Edit erin's display name; disable bob, then enable him again.
  await members.getByRole("button", { name: "Edit erin" }).click();
  const editErin = page.getByRole("form", { name: "Edit erin" });
  await editErin.getByLabel("Display name").fill("Erin Ito");
  await editErin.getByRole("button", { name: "Save erin" }).click();
  await notice.getByText('Saved erin: display name "Erin Ito".').waitFor();
  assert.equal((await user(adminToken, "erin@acme")).display_name, "Erin Ito");
  await members.getByRole("button", { name: "Edit bob" }).click();
  await page.getByRole("form", { name: "Edit bob" }).getByLabel("Disabled").check();
  await page.getByRole("button", { name: "Save bob" }).click();
  await notice.getByText("Saved bob: disabled (their sessions end).").waitFor();
  assert.equal((await user(adminToken, "bob@acme")).disabled, true);
  assert.equal((await request("POST", "/v1/auth/login", null, { tenant: "acme", username: "bob", password: "bob-demo-pass" })).status, 401);
  const bobItem = members.locator('li[data-user="bob@acme"]');
  await bobItem.getByRole("definition").filter({ hasText: /^Disabled$/ }).waitFor();
  await members.getByRole("button", { name: "Edit bob" }).click();
  await page.getByRole("form", { name: "Edit bob" }).getByLabel("Disabled").uncheck();
  await page.getByRole("button", { name: "Save bob" }).click();
  await notice.getByText("Saved bob: enabled.").waitFor();
  assert.equal((await user(adminToken, "bob@acme")).disabled, false);
  await bobItem.getByRole("definition").filter({ hasText: /^Enabled$/ }).waitFor();
  assert.equal(await alert.textContent(), "", "no error after the changes");
  assert.ok(await members.getByRole("button", { name: "Edit bob" }).evaluate((button) => button === document.activeElement), "the focus is back on bob");
  await page.locator(".admin").evaluate((screen) => (screen.scrollTop = 0));
  await screenshot(page, "admin-members");

  // ----- LINE access -----
  await nav.getByRole("button", { name: "LINE access", exact: true }).click();
  const perMember = page.getByRole("list", { name: "LINE permission per member" });
  await perMember.getByText(/Alice Anders/).waitFor();
  const modes = page.getByRole("group", { name: "Who may connect to LINE" });
  const effect = page.locator("#line-mode-effect");
  const answer = page.locator("#line-access-answer");
  assert.equal(await modes.getByRole("radio", { name: /^Selected members/ }).isChecked(), true, "the demo's mode is selected");

  // Everyone, then back to selected: the screen says what the change does, then the API's answer.
  await modes.getByRole("radio", { name: /^Everyone/ }).check();
  await effect.getByText(/will be able to connect to LINE/).waitFor();
  assert.match(await effect.textContent(), /Bob Brown \(bob\)/);
  assert.match(await effect.textContent(), /Nobody loses LINE access\./);
  await page.getByRole("button", { name: "Apply LINE access mode" }).click();
  await answer.getByText('The LINE access mode is now "Everyone" (all).', { exact: false }).waitFor();
  assert.equal((await user(adminToken, "bob@acme")).line_access, true);
  await modes.getByRole("radio", { name: /^Selected members/ }).check();
  await effect.getByText(/will lose LINE access: they are removed automatically from their rooms with LINE users/).waitFor();
  assert.match(await effect.textContent(), /Bob Brown \(bob\)/);
  assert.doesNotMatch(await effect.textContent(), /Alice Anders/, "alice keeps her permission");
  await page.getByRole("button", { name: "Apply LINE access mode" }).click();
  await answer.getByText('The LINE access mode is now "Selected members" (selected).', { exact: false }).waitFor();
  assert.match(await answer.textContent(), /lost LINE access/);
  assert.equal((await user(adminToken, "bob@acme")).line_access, false);
  assert.equal((await user(adminToken, "alice@acme")).line_access, true);

  // In selected mode, allow erin, and allow then disallow bob.
  await perMember.getByLabel("Erin Ito (erin) may connect to LINE").check();
  await answer.getByText("Erin Ito (erin): allowed; may connect to LINE.", { exact: false }).waitFor();
  assert.equal((await user(adminToken, "erin@acme")).line_access, true);
  await perMember.getByLabel("Bob Brown (bob) may connect to LINE").check();
  await answer.getByText("Bob Brown (bob): allowed; may connect to LINE.", { exact: false }).waitFor();
  assert.equal((await user(adminToken, "bob@acme")).line_access, true);
  await perMember.getByLabel("Bob Brown (bob) may connect to LINE").uncheck();
  await answer.getByText("Bob Brown (bob): not allowed; may not connect to LINE. They are removed automatically from their rooms with LINE users.").waitFor();
  const bob = await user(adminToken, "bob@acme");
  assert.deepEqual([bob.line_allowed, bob.line_access], [false, false]);
  assert.equal(await perMember.getByLabel("Bob Brown (bob) may connect to LINE").isChecked(), false);
  assert.equal(await page.locator("#line-access-error").textContent(), "");
  await page.locator(".admin").evaluate((screen) => (screen.scrollTop = 0));
  await screenshot(page, "admin-line-access");

  // ----- LINE channels -----
  await nav.getByRole("button", { name: "LINE channels", exact: true }).click();
  const bindings = page.getByRole("list", { name: "LINE channel bindings" });
  const alice = bindings.locator('li[data-user="alice@acme"]');
  await alice.getByText(demo.LINE_CHANNEL_ID, { exact: true }).waitFor();
  await alice.getByText(demo.LINE_BASIC_ID, { exact: true }).waitFor();
  await alice.getByText("Active", { exact: true }).waitFor();
  const bind = page.getByRole("form", { name: "Bind or rebind a member" });
  const bindError = page.locator("#bind-error");
  const erinSecret = "erin-channel-secret-0123456789abcdef";
  const erinToken = "erin-channel-access-token-fedcba9876543210";
  await bind.getByLabel("Member").selectOption("erin@acme");
  await bind.getByLabel("Channel id").fill("not-digits");
  await bind.getByLabel("Channel secret").fill(erinSecret);
  await bind.getByLabel("Channel access token").fill(erinToken);
  await bind.getByLabel("Basic id").fill("@acmeerin");
  assert.equal(await bind.getByLabel("Channel secret").getAttribute("type"), "password");
  assert.equal(await bind.getByLabel("Channel access token").getAttribute("type"), "password");
  await bind.getByRole("button", { name: "Bind channel" }).click();
  await page.getByRole("alert").filter({ hasText: "invalid_field" }).waitFor();
  assert.equal(await bindError.textContent(), "invalid channel_id: 1 to 20 digits (invalid_field)");
  await bind.getByLabel("Channel id").fill("1660000077");
  await bind.getByRole("button", { name: "Bind channel" }).click();
  await page.locator("#bind-notice").getByText("Erin Ito (erin) is bound to channel 1660000077 (@acmeerin).").waitFor();
  await bindings.locator('li[data-user="erin@acme"]').getByText("1660000077", { exact: true }).waitFor();
  assert.equal(await bind.getByLabel("Channel secret").inputValue(), "", "the secret is not kept in the form");
  const channels = await api("GET", "/v1/admin/line/channels", adminToken);
  const erinChannel = channels.channels.find((c) => c.user_id === "erin@acme");
  assert.deepEqual([erinChannel.channel_id, erinChannel.basic_id], ["1660000077", "@acmeerin"]);
  // bob may not connect to LINE: the gateway's refusal is on the page.
  await bind.getByLabel("Member").selectOption("bob@acme");
  await bind.getByLabel("Channel id").fill("1660000078");
  await bind.getByLabel("Channel secret").fill("bob-channel-secret-0123456789");
  await bind.getByLabel("Channel access token").fill("bob-channel-access-token-0123456789");
  await bind.getByLabel("Basic id").fill("@acmebob");
  await bind.getByRole("button", { name: "Bind channel" }).click();
  await page.getByRole("alert").filter({ hasText: "line_not_authorized" }).waitFor();
  assert.equal(await bindError.textContent(), "the member may not use LINE (line_not_authorized)");
  await bind.getByLabel("Channel secret").fill("");
  await bind.getByLabel("Channel access token").fill("");
  // No secret anywhere in the page.
  await page.getByRole("list", { name: "Undelivered messages to LINE users" }).getByText("nothing undelivered", { exact: false }).waitFor();
  assert.equal(await page.locator("#channels-error").textContent(), "");
  assert.equal(await page.locator("#dead-letters-error").textContent(), "");
  const html = await page.content();
  for (const secret of [demo.LINE_CHANNEL_SECRET, demo.LINE_CHANNEL_ACCESS_TOKEN, erinSecret, erinToken]) {
    assert.ok(secret && !html.includes(secret), "a channel secret or token is in the page");
  }

  // ----- Audit trail -----
  await nav.getByRole("button", { name: "Audit trail", exact: true }).click();
  const audit = page.getByRole("list", { name: "Audit trail" });
  const entry = (action, target) => audit.getByRole("listitem").filter({ hasText: action }).filter({ hasText: `Target${target}` });
  await entry("Member added", "Erin Ito (erin)").waitFor();
  await entry("Member disabled", "Bob Brown (bob)").waitFor();
  await audit.getByRole("listitem").filter({ hasText: "LINE access mode set" }).filter({ hasText: "Everyone (all)" }).waitFor();
  await audit.getByRole("listitem").filter({ hasText: "LINE access mode set" }).filter({ hasText: "Selected members (selected)" }).first().waitFor();
  await entry("LINE access granted", "Erin Ito (erin)").first().waitFor();
  await entry("LINE access withdrawn", "Bob Brown (bob)").first().waitFor();
  assert.match(await entry("Member added", "Erin Ito (erin)").textContent(), /WhoAcme Admin \(admin\)/);
  // Newest first: bob's last withdrawal comes before erin's creation.
  const texts = await audit.getByRole("listitem").allTextContents();
  const withdrawn = texts.findIndex((t) => t.startsWith("LINE access withdrawn") && t.includes("Bob Brown (bob)"));
  const added = texts.findIndex((t) => t.startsWith("Member added") && t.includes("Erin Ito (erin)"));
  assert.ok(withdrawn >= 0 && withdrawn < added, `newest first: ${texts.join(" | ")}`);
  await page.locator(".admin").evaluate((screen) => (screen.scrollTop = 0));
  assert.equal(await page.locator("#audit-error").textContent(), "");
  await screenshot(page, "admin-audit");
  await context.close();
});

test("an admin who lost the role sees the API's refusal, members see no admin screen, globex sees its own members", async () => {
  const adminToken = await token("acme", "admin");
  await api("POST", "/v1/admin/users", adminToken, { username: "frank", password: "frank-secret-pass", display_name: "Frank Fox", admin: true });

  const frankContext = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const frank = await frankContext.newPage();
  await logIn(frank, engine.base, "acme", "frank", "frank-secret-pass");
  const frankNav = frank.getByRole("navigation", { name: "Rooms" });
  await frankNav.getByRole("button", { name: "Members", exact: true }).waitFor();

  // acme's admin takes frank's admin role away on the Members screen.
  const adminContext = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const admin = await adminContext.newPage();
  await logIn(admin, engine.base, "acme", "admin");
  await admin.getByRole("navigation", { name: "Rooms" }).getByRole("button", { name: "Members", exact: true }).click();
  await admin.getByRole("button", { name: "Edit frank" }).click();
  await admin.getByRole("form", { name: "Edit frank" }).getByLabel("Tenant admin").uncheck();
  await admin.getByRole("button", { name: "Save frank" }).click();
  await admin.locator("#members-notice").getByText("Saved frank: no longer a tenant admin.").waitFor();
  assert.equal((await user(adminToken, "frank@acme")).admin, false);

  // frank's screens still in his navigation answer with the API's 403.
  await frankNav.getByRole("button", { name: "Members", exact: true }).click();
  await frank.getByRole("alert").filter({ hasText: "forbidden" }).waitFor();
  assert.equal(await frank.locator("#members-error").textContent(), "tenant admins only (forbidden)");
  await frankNav.getByRole("button", { name: "Audit trail", exact: true }).click();
  await frank.getByRole("alert").filter({ hasText: "forbidden" }).waitFor();
  assert.equal(await frank.locator("#audit-error").textContent(), "tenant admins only (forbidden)");
  // The LINE gateway asks authz too: frank's token still says admin, authz does not.
  await frankNav.getByRole("button", { name: "LINE channels", exact: true }).click();
  await frank.locator("#channels-error").filter({ hasText: "(forbidden)" }).waitFor();
  const oldToken = await frank.evaluate(() => JSON.parse(localStorage.getItem("chat.session")).token);
  const claims = JSON.parse(Buffer.from(oldToken.split(".")[1], "base64url").toString());
  assert.ok(JSON.stringify(claims).includes("admin"), "the token issued before still claims the role");
  const refused = await request("GET", "/v1/admin/line/channels", oldToken);
  assert.equal(refused.status, 403, "refused all the same");
  await frankContext.close();
  await adminContext.close();

  // bob (a member) has no admin screen at all.
  const bobContext = await browser.newContext({ viewport: { width: 390, height: 800 } });
  const bob = await bobContext.newPage();
  await logIn(bob, engine.base, "acme", "bob");
  const bobNav = bob.getByRole("navigation", { name: "Rooms" });
  await bobNav.getByRole("button", { name: /General/ }).waitFor();
  for (const view of ["Members", "LINE access", "LINE channels", "Audit trail"]) {
    assert.equal(await bobNav.getByRole("button", { name: view, exact: true }).count(), 0, `${view} is not shown to bob`);
  }
  await bobContext.close();

  // globex's admin, on a phone-sized window, sees globex's members only.
  const globexContext = await browser.newContext({ viewport: { width: 390, height: 800 } });
  const globex = await globexContext.newPage();
  await logIn(globex, engine.base, "globex", "admin");
  await globex.getByRole("navigation", { name: "Rooms" }).getByRole("button", { name: "Members", exact: true }).click();
  const members = globex.getByRole("list", { name: "Members" });
  await members.getByText("Carol Chen").waitFor();
  await members.getByText("Dave Diaz").waitFor();
  assert.equal(await members.getByText("Alice Anders").count(), 0);
  assert.equal(await members.getByText("Erin Ito").count(), 0);
  await globexContext.close();
});

test("an undelivered message to a LINE user: the channel's last error, a refused resend, a resend that reaches LINE", async () => {
  const adminToken = await token("acme", "admin");
  const aliceToken = await token("acme", "alice");
  // The demo LINE user follows alice (retried while the binding is not there yet).
  const source = { type: "user", userId: demo.LINE_DEMO_USER };
  const deadline = Date.now() + 30_000;
  await asLineUser([{ type: "follow", source, replyToken: "r1", follow: { isUnblocked: false } }]);
  let room;
  while (!(room = (await api("GET", "/v1/rooms", aliceToken)).rooms.find((r) => r.kind === "line_direct"))) {
    assert.ok(Date.now() < deadline + 30_000, "alice's LINE room appears");
    await new Promise((r) => setTimeout(r, 200));
  }

  // LINE refuses the next push: the channel's monthly quota is used up.
  await simPost("/_sim/script", { path: "/v2/bot/message/push", responses: [{ status: 429, quota: true }] });
  const text = "Your order #42 is ready";
  await api("POST", `/v1/rooms/${room.id}/messages`, aliceToken, { client_msg_id: "order-42", body: { type: "text", text } });
  let dead;
  while (!(dead = (await api("GET", "/v1/admin/line/dead-letters", adminToken)).dead_letters).length) {
    assert.ok(Date.now() < deadline + 60_000, "the refused push becomes a dead letter");
    await new Promise((r) => setTimeout(r, 200));
  }

  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  await logIn(page, engine.base, "acme", "admin");
  await page.getByRole("navigation", { name: "Rooms" }).getByRole("button", { name: "LINE channels", exact: true }).click();
  const bindings = page.getByRole("list", { name: "LINE channel bindings" });
  const alice = bindings.locator('li[data-user="alice@acme"]');
  await alice.getByText(/monthly message limit/).waitFor();
  const letters = page.getByRole("list", { name: "Undelivered messages to LINE users" });
  const letter = letters.locator(`li[data-message="${dead[0].message_id}"]`);
  await letter.locator(".title", { hasText: "To Taro Yamada" }).waitFor();
  await letter.getByText("Alice Anders (alice)", { exact: true }).waitFor();
  await letter.getByText(/monthly message limit/).waitFor();
  await page.locator(".admin").evaluate((screen) => (screen.scrollTop = 0));
  await screenshot(page, "admin-line-channels");

  // alice rebound to another channel: no account of acme reaches the LINE user, the resend is
  // refused with the API's error.
  const bind = page.getByRole("form", { name: "Bind or rebind a member" });
  const otherSecret = "another-channel-secret-0123456789";
  const otherToken = "another-channel-access-token-0123456789";
  await alice.getByRole("button", { name: "Rebind Alice Anders (alice)" }).click();
  assert.equal(await bind.getByLabel("Member").inputValue(), "alice@acme");
  assert.equal(await bind.getByLabel("Channel id").inputValue(), demo.LINE_CHANNEL_ID);
  assert.equal(await bind.getByLabel("Basic id").inputValue(), demo.LINE_BASIC_ID);
  await bind.getByLabel("Channel id").fill("1660000099");
  await bind.getByLabel("Channel secret").fill(otherSecret);
  await bind.getByLabel("Channel access token").fill(otherToken);
  await bind.getByRole("button", { name: "Bind channel" }).click();
  await page.locator("#bind-notice").getByText(`Alice Anders (alice) is bound to channel 1660000099 (${demo.LINE_BASIC_ID}).`).waitFor();
  await alice.getByText("1660000099", { exact: true }).waitFor();
  await letter.getByRole("button", { name: /^Resend to Taro Yamada/ }).click();
  await page.getByRole("alert").filter({ hasText: "not_resendable" }).waitFor();
  assert.equal(await page.locator("#dead-letters-error").textContent(), "no LINE account of the company reaches this LINE user now (not_resendable)");

  // Rebound to her own channel, the resend is queued and reaches LINE.
  await alice.getByRole("button", { name: "Rebind Alice Anders (alice)" }).click();
  await bind.getByLabel("Channel id").fill(demo.LINE_CHANNEL_ID);
  await bind.getByLabel("Channel secret").fill(demo.LINE_CHANNEL_SECRET);
  await bind.getByLabel("Channel access token").fill(demo.LINE_CHANNEL_ACCESS_TOKEN);
  await bind.getByRole("button", { name: "Bind channel" }).click();
  await page.locator("#bind-notice").getByText(`Alice Anders (alice) is bound to channel ${demo.LINE_CHANNEL_ID} (${demo.LINE_BASIC_ID}).`).waitFor();
  await alice.getByText("None", { exact: true }).waitFor();
  await letter.getByRole("button", { name: /^Resend to Taro Yamada/ }).click();
  await page.locator("#dead-letters-notice").getByText("The message from Alice Anders (alice) to Taro Yamada is queued to be sent again.").waitFor();
  await letters.getByText("nothing undelivered", { exact: false }).waitFor();
  let pushed = [];
  while (!pushed.some((m) => m.type === "text" && m.text === text)) {
    assert.ok(Date.now() < deadline + 90_000, `the resent message reaches LINE: ${JSON.stringify(pushed)}`);
    await new Promise((r) => setTimeout(r, 250));
    const requests = await pushes();
    pushed = requests.flatMap((request) => request.body.messages || []);
  }
  assert.deepEqual((await api("GET", "/v1/admin/line/dead-letters", adminToken)).dead_letters, []);
  const html = await page.content();
  for (const secret of [demo.LINE_CHANNEL_SECRET, demo.LINE_CHANNEL_ACCESS_TOKEN, otherSecret, otherToken]) {
    assert.ok(!html.includes(secret), "a channel secret or token is in the page");
  }
  await context.close();
});
