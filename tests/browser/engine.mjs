// The standalone engine for a browser test: the debug binary on a free port, in a run
// directory of its own (SQLite files, media, demo data), stopped and removed at the end.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");

function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** The LINE platform simulator (`target/debug/line-sim`) on a free port. */
export async function startSimulator() {
  const port = await freePort();
  const child = spawn(join(ROOT, "target/debug/line-sim"), [], {
    env: { ...process.env, CHAT__HTTP__PORT: String(port), CHAT__TELEMETRY__LOG_FORMAT: "json" },
    stdio: ["ignore", "ignore", "ignore"],
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`${base}/health/live`, child, "line-sim");
  return {
    base,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
    },
  };
}

async function waitFor(url, child, what) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${what} stopped`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${what} was not ready in 60 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The standalone engine; `lineApi`: the LINE platform to use (the simulator's base URL);
 * `env`: more settings (`CHAT__SECTION__KEY`). */
export async function startEngine({ lineApi, env = {} } = {}) {
  const port = await freePort();
  const runDir = mkdtempSync(join(tmpdir(), "chat-browser-"));
  const log = openSync(join(runDir, "standalone.log"), "w");
  const child = spawn(join(ROOT, "target/debug/standalone"), [], {
    cwd: runDir,
    env: {
      ...process.env,
      CHAT_RUN_DIR: runDir,
      CHAT__HTTP__PORT: String(port),
      CHAT__DATABASE__URL: `sqlite://${runDir}/rooms.sqlite?mode=rwc`,
      CHAT__TELEMETRY__LOG_FORMAT: "json",
      ...(lineApi ? { CHAT_LINE_API_BASE_URL: lineApi } : {}),
      ...env,
    },
    stdio: ["ignore", log, log],
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the standalone stopped; see ${runDir}/standalone.log`);
    try {
      const res = await fetch(`${base}/health/ready`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the standalone was not ready in 60 s; see ${runDir}/standalone.log`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    base,
    runDir,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)));
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}

/** `demo.env` of an engine's run directory (demo tokens, the demo LINE channel), once written. */
export async function demoEnv(runDir) {
  const path = join(runDir, "demo.env");
  for (let i = 0; i < 300 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 100));
  return Object.fromEntries(
    readFileSync(path, "utf8")
      .split("\n")
      .filter((line) => line.includes("="))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}

/**
 * What `make run` starts: the simulator and the engine pointed at it, the simulator told about
 * alice's demo channel, the demo LINE user's profile and the demo LINE group (as
 * tests/scripts/run.sh does), and the engine's binding of alice to that channel in place.
 */
export async function startLineDemo() {
  const sim = await startSimulator();
  const engine = await startEngine({ lineApi: sim.base });
  const demo = await demoEnv(engine.runDir);
  const simPost = async (path, body) => {
    const res = await fetch(`${sim.base}${path}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  };
  await simPost("/_sim/channels", {
    channel_id: demo.LINE_CHANNEL_ID,
    channel_secret: demo.LINE_CHANNEL_SECRET,
    access_token: demo.LINE_CHANNEL_ACCESS_TOKEN,
    basic_id: demo.LINE_BASIC_ID,
    bot_user_id: demo.LINE_BOT_USER_ID,
    display_name: "Alice (Acme)",
  });
  await simPost("/_sim/profiles", { channel_id: demo.LINE_CHANNEL_ID, user_id: demo.LINE_DEMO_USER, display_name: "Taro Yamada" });
  await simPost("/_sim/groups", { channel_id: demo.LINE_CHANNEL_ID, group_id: demo.LINE_DEMO_GROUP, group_name: "Tokyo shop" });
  // The engine binds alice once its own server answers: wait for the binding.
  const login = await fetch(`${engine.base}/v1/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ tenant: "acme", username: "admin", password: "admin-demo-pass" }),
  });
  const { access_token: token } = await login.json();
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await fetch(`${engine.base}/v1/admin/line/channels`, { headers: { Authorization: `Bearer ${token}` } });
    if (res.ok && (await res.text()).includes(demo.LINE_CHANNEL_ID)) break;
    if (Date.now() > deadline) throw new Error("alice's demo LINE channel was not bound in 60 s");
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    sim,
    engine,
    demo,
    async stop() {
      await engine.stop();
      await sim.stop();
    },
  };
}
