// An admin withdraws the trust with another company: the external room's foreign member is
// excluded, on the member's screen, live.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { startEngine } from "./engine.mjs";
import { launch, logIn, screenshot } from "./browser.mjs";
import { engineApi } from "./api.mjs";

let engine;
let browser;
let api, token; // the engine's API

before(async () => {
  engine = await startEngine();
  ({ api, token } = engineApi(engine.base));
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await engine?.stop();
});

test("an admin withdraws the trust and the external room's foreign member is excluded on screen", async () => {
  // Both companies authorize each other; alice opens a 1:1 room with carol of globex.
  await api("POST", "/v1/admin/trusts", await token("acme", "admin"), { tenant: "globex" });
  await api("POST", "/v1/admin/trusts", await token("globex", "admin"), { tenant: "acme" });
  await api("POST", "/v1/rooms", await token("acme", "alice"), { members: ["carol@globex"] });

  const aliceContext = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const adminContext = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const alice = await aliceContext.newPage();
  const admin = await adminContext.newPage();
  await logIn(alice, engine.base, "acme", "alice");
  const external = alice.getByRole("navigation", { name: "Rooms" }).getByRole("button", { name: /Carol Chen/ });
  await external.waitFor({ timeout: 15_000 });
  assert.equal(await external.locator(".marker-external").count(), 1, "the External marker");
  await external.click();
  await alice.locator("#room-title", { hasText: "Carol Chen" }).waitFor();
  // Room info lists the participants by name, carol with her company.
  await alice.getByRole("button", { name: "Room info" }).click();
  const info = alice.getByRole("dialog", { name: "Room info" });
  const participants = info.getByRole("list", { name: "Participants" });
  const carol = participants.locator('li[data-user="carol@globex"]');
  await carol.getByText("Carol Chen (Globex)", { exact: true }).waitFor();
  assert.equal(await carol.locator(".marker-external").count(), 1, "the External marker");
  await participants.locator('li[data-user="alice@acme"]').getByText("Alice Anders (you)", { exact: true }).waitFor();
  const named = (await api("GET", "/v1/users?ids=carol@globex", await token("acme", "alice"))).users;
  assert.deepEqual(named.map((u) => [u.id, u.display_name, u.tenant_name]), [["carol@globex", "Carol Chen", "Globex"]]);
  await screenshot(alice, "external-room-info");
  await info.getByRole("button", { name: "Close room info" }).click();

  await logIn(admin, engine.base, "acme", "admin");
  await admin.getByRole("button", { name: "Trusted companies" }).click();
  const trusts = admin.getByRole("list", { name: "Trusted companies" });
  await trusts.getByText("Active").waitFor();
  await screenshot(admin, "admin-trusts");
  await trusts.getByRole("button", { name: "Withdraw trust in globex" }).click();
  await trusts.getByText("Waiting for us").waitFor();

  await alice.getByRole("log", { name: "Messages" }).getByText("Carol Chen was excluded").waitFor({ timeout: 15_000 });
  await screenshot(alice, "external-room-excluded");
  await aliceContext.close();
  await adminContext.close();
});
