// The web client's modules point one way: no two of them import each other, directly or
// through others (screens talk through state.js's events instead). Read from the imports of
// services/web/assets/*.js; no browser needed.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

const ASSETS = resolve(import.meta.dirname, "../../services/web/assets");

/** module -> the modules it imports (static `import ... from "./x.js"` and `import("./x.js")`). */
function importGraph(dir) {
  const graph = new Map();
  for (const file of readdirSync(dir).filter((name) => name.endsWith(".js"))) {
    const source = readFileSync(join(dir, file), "utf8");
    const targets = [...source.matchAll(/(?:from\s+|import\s*\(\s*)["']\.\/([^"']+)["']/g)].map((m) => m[1]);
    graph.set(file, new Set(targets));
  }
  return graph;
}

/** Every cycle found by a depth-first walk, as the modules along it. */
function cycles(graph) {
  const found = [];
  const state = new Map(); // module -> "open" | "done"
  const walk = (module, path) => {
    state.set(module, "open");
    for (const next of graph.get(module) || []) {
      if (state.get(next) === "open") found.push([...path.slice(path.indexOf(next)), next]);
      else if (!state.has(next)) walk(next, [...path, next]);
    }
    state.set(module, "done");
  };
  for (const module of graph.keys()) if (!state.has(module)) walk(module, [module]);
  return found;
}

test("the web client's modules import each other one way only", () => {
  const graph = importGraph(ASSETS);
  assert.ok(graph.size >= 10, `the client's modules are read (${graph.size})`);
  for (const [module, targets] of graph) {
    for (const target of targets) assert.ok(graph.has(target), `${module} imports ${target}, which does not exist`);
  }
  assert.deepEqual(cycles(graph), [], "modules in a cycle");
});

test("the cycle finder finds a cycle through three modules", () => {
  const graph = new Map([
    ["a.js", new Set(["b.js"])],
    ["b.js", new Set(["c.js"])],
    ["c.js", new Set(["a.js"])],
  ]);
  assert.deepEqual(cycles(graph), [["a.js", "b.js", "c.js", "a.js"]]);
});
