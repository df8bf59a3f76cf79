// The live connection drops and comes back: the page says it is reconnecting, and once it is
// back what was said meanwhile shows in the open room, in order, without a reload (the
// client's `sync` after the reconnect).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { startEngine } from "./engine.mjs";
import { launch, logIn } from "./browser.mjs";

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

test("after the connection drops, the room catches up on what was said meanwhile, in order", async () => {
  const aliceContext = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const bobContext = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const alice = await aliceContext.newPage();
  const bob = await bobContext.newPage();
  // Bob's WebSocket goes through a route the test can cut: while cut, his connection is closed
  // and every new attempt is refused at once (his client keeps retrying).
  let cut = false;
  const open = [];
  await bob.routeWebSocket(/\/v1\/ws/, (ws) => {
    if (cut) {
      ws.close({ code: 1011, reason: "cut by the test" });
      return;
    }
    open.push({ page: ws, server: ws.connectToServer() });
  });
  await logIn(alice, engine.base, "acme", "alice");
  await logIn(bob, engine.base, "acme", "bob");
  await alice.getByRole("button", { name: /General/ }).click();
  await bob.getByRole("button", { name: /General/ }).click();
  const bobLog = bob.getByRole("log", { name: "Messages" });
  await alice.getByLabel("Message", { exact: true }).fill("Before the drop");
  await alice.getByRole("button", { name: "Send" }).click();
  await bobLog.getByText("Before the drop").waitFor({ timeout: 15_000 });

  // Bob's connection drops: the page says so.
  cut = true;
  for (const { page, server } of open.splice(0)) {
    await server.close();
    await page.close({ code: 1006, reason: "dropped" });
  }
  await bob.getByRole("status").filter({ hasText: "Reconnecting…" }).waitFor({ timeout: 15_000 });
  const missed = ["While you were away 1", "While you were away 2", "While you were away 3"];
  for (const text of missed) {
    await alice.getByLabel("Message", { exact: true }).fill(text);
    await alice.getByRole("button", { name: "Send" }).click();
    await alice.getByRole("log", { name: "Messages" }).locator(".message.mine", { hasText: text }).locator(".state", { hasText: "sent" }).waitFor();
  }
  assert.equal(await bobLog.getByText("While you were away").count(), 0, "nothing reaches bob while cut off");

  // The way is open again: the connection comes back by itself and the missed messages show,
  // in order.
  cut = false;
  await bobLog.getByText(missed[2]).waitFor({ timeout: 30_000 });
  const shown = (await bobLog.locator(".message .body").allTextContents()).filter((t) => t.startsWith("While you were away"));
  assert.deepEqual(shown, missed, "each once, in the order sent");
  // Online again: the page no longer says it is reconnecting.
  await bob.locator("#status").filter({ hasText: "Reconnecting…" }).waitFor({ state: "detached", timeout: 5_000 });

  // And live delivery works again on the new connection.
  await alice.getByLabel("Message", { exact: true }).fill("After the return");
  await alice.getByRole("button", { name: "Send" }).click();
  await bobLog.getByText("After the return").waitFor({ timeout: 15_000 });
  await aliceContext.close();
  await bobContext.close();
});
