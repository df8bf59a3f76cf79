// The standalone engine for a browser test: the debug binary on a free port, in a run
// directory of its own (SQLite files, media, demo data), stopped and removed at the end.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, openSync } from "node:fs";
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

/** The standalone engine; `lineApi`: the LINE platform to use (the simulator's base URL). */
export async function startEngine({ lineApi } = {}) {
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
