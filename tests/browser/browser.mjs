// Debian's Chromium, headless, driven by playwright-core (no browser download), with the
// flags this machine's closed network needs; screenshots go to docs/screenshots/.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";

export const SCREENSHOTS = resolve(import.meta.dirname, "../../docs/screenshots");

/** Chromium; `media`: with a fake camera and microphone (a test pattern and a tone, no
 * permission prompt) and WebRTC's host candidates by their addresses rather than mDNS names
 * (the browsers of a test share this machine and resolve no `.local` names). */
export async function launch({ media = false } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...(media
        ? [
          "--use-fake-device-for-media-stream",
          "--use-fake-ui-for-media-stream",
          "--disable-features=WebRtcHideLocalIpsWithMdns",
          "--autoplay-policy=no-user-gesture-required",
        ]
        : []),
    ],
  });
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

/** Log in through the form as a demo user (password `<username>-demo-pass`). */
export async function logIn(page, base, tenant, username, password = `${username}-demo-pass`) {
  await page.goto(base);
  await page.getByLabel("Company").fill(tenant);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
}
