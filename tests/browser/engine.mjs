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

export async function startEngine() {
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
