// What the browser tests read and do beside the browser: the engine's public API (to check what
// it stored, or to set a scene up), and the LINE platform simulator (its `/_sim/` endpoints: a
// LINE user's signed webhooks, the pushes that reached LINE).

import assert from "node:assert/strict";

/**
 * The public API of the engine at `base`. `request` answers whatever the status;
 * `api` asserts it (`expect`, any 2xx when absent) and gives the parsed body;
 * `token` logs a demo user in (password `<username>-demo-pass` unless given).
 */
export function engineApi(base) {
  async function send(method, path, token, body) {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { res, text: await res.text() };
  }

  async function request(method, path, token, body) {
    const { res, text } = await send(method, path, token, body);
    return { status: res.status, body: text ? JSON.parse(text) : null, text };
  }

  async function api(method, path, token, body, expect) {
    const { res, text } = await send(method, path, token, body);
    if (expect === undefined) assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
    else assert.equal(res.status, expect, `${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  async function token(tenant, username, password = `${username}-demo-pass`) {
    return (await api("POST", "/v1/auth/login", null, { tenant, username, password })).access_token;
  }

  return { request, api, token };
}

/**
 * The LINE platform simulator beside the engine, as `startLineDemo` gives them (`sim`, `engine`,
 * `demo`). `simPost` sends JSON to a `/_sim/` endpoint (bytes of another `contentType` are PUT:
 * `/_sim/content/<id>`, a LINE user's media) and gives the parsed answer; `asLineUser` has the
 * simulator sign `events` and POST them to the engine's webhook for the demo channel (retried
 * while the binding is not there yet, 404; then the engine must answer 200); `pushes` are the
 * push requests that reached LINE.
 */
export function lineApi({ sim, engine, demo }) {
  async function simPost(path, body, contentType = "application/json") {
    const res = await fetch(`${sim.base}${path}`, {
      method: path.startsWith("/_sim/content/") ? "PUT" : "POST",
      headers: { "Content-Type": contentType },
      body: contentType === "application/json" ? JSON.stringify(body) : body,
    });
    const text = await res.text();
    assert.ok(res.ok, `${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  async function asLineUser(events) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const sent = await simPost("/_sim/webhook", {
        channel_id: demo.LINE_CHANNEL_ID,
        target_url: `${engine.base}/line/webhook/${demo.LINE_CHANNEL_ID}`,
        events,
      });
      if (sent.status === 200) return sent;
      assert.ok(sent.status === 404 && Date.now() < deadline, `the gateway answered ${sent.status}: ${sent.body}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  async function pushes() {
    return (await fetch(`${sim.base}/_sim/requests?path=/v2/bot/message/push`)).json();
  }

  return { simPost, asLineUser, pushes };
}
