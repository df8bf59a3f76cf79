#!/usr/bin/env python3
"""Module cycles: for every crate of the workspace, the graph of which module (file) uses which
other module of the same crate, and the cycles in it.

A module is a .rs file under src/ (src/foo.rs and src/foo/mod.rs are module `foo`; src/lib.rs and
src/main.rs are the crate root). Every crate root is its own crate: src/lib.rs, src/main.rs,
src/bin/<name>.rs, src/bin/<name>/main.rs and the [lib]/[[bin]] paths of Cargo.toml. The module
tree is the one the compiler sees: it follows the `mod x;` declarations from the root.

Edges come from paths anywhere in the code (use lines, types, expressions): `crate::a::b::Name`,
`self::x`, `super::x`, `$crate::x` and `use` groups under them (`use crate::{a, b::{c, d}}`).
A path resolves to the deepest module that exists (`crate::store::Store` -> store.rs); an item
of a module (`super::Foo`, `crate::Settings`) is looked up there: defined in that file, it is an
edge to that file; imported there by a `use` (a re-export, or a parent's private import that a
child reaches with `super::`), the import is followed to the file that defines it; imported from
another crate, it is no edge. A `mod x;` declaration is no edge (a parent declaring a child is
not an import); neither are comments, string literals, `pub(in crate::a)` visibilities, nor any
item under `#[cfg(test)]` (tests may import anything).

Exit 1 and every cycle (with the paths that tie it) when two or more modules form one; exit 0
and a one-line summary otherwise. --verbose prints the whole graph; --self-test checks this
script against small made-up crates; --root DIR analyses another tree.
"""

import argparse
import os
import re
import signal
import sys
import tempfile
import textwrap

try:
    import tomllib
except ImportError:  # Python < 3.11: the [lib]/[[bin]] paths are then read with a regex.
    tomllib = None

CRATE_DIRS = ("services", "shared", "tests")
SKIP_DIRS = {"target", "node_modules"}
# Elementary cycles printed per strongly connected component (each one's members are listed).
MAX_CYCLES_PER_COMPONENT = 20
MAX_NAMES_PER_EDGE = 4

# ---------------------------------------------------------------------------------------------
# Tokens: identifiers, punctuation (`::` is one token), string/char literals (kept as opaque
# tokens so that `#[path = "..."]` can be read); comments dropped.

IDENT_START = re.compile(r"[A-Za-z_\u0080-\uffff]")
IDENT = re.compile(r"[A-Za-z0-9_\u0080-\uffff]*")
NUMBER = re.compile(r"[0-9][0-9A-Za-z_]*(\.[0-9][0-9A-Za-z_]*)?")
STRING_PREFIXES = ("b", "br", "r", "c", "cr")


class Token:
    __slots__ = ("kind", "text", "line")

    def __init__(self, kind, text, line):
        self.kind = kind  # "ident", "punct", "str", "char", "lifetime", "num"
        self.text = text
        self.line = line

    def __repr__(self):
        return f"{self.kind}:{self.text}@{self.line}"


def _scan_string(src, i, raw_hashes):
    """Index after the closing quote of a string whose opening quote is at `i`."""
    n = len(src)
    i += 1
    if raw_hashes is not None:
        close = '"' + "#" * raw_hashes
        j = src.find(close, i)
        return n if j < 0 else j + len(close)
    while i < n:
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    return n


def tokenize(src):
    tokens = []
    i, n, line = 0, len(src), 1
    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            line += src.count("\n", i, j)
            i = j
        elif c == '"':
            j = _scan_string(src, i, None)
            tokens.append(Token("str", src[i:j], line))
            line += src.count("\n", i, j)
            i = j
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}', '{') or a lifetime/label ('a, 'static).
            if i + 1 < n and src[i + 1] == "\\":
                j = i + 2
                while j < n and src[j] != "'":
                    j += 2 if src[j] == "\\" else 1
                tokens.append(Token("char", src[i : j + 1], line))
                i = j + 1
            elif i + 2 < n and src[i + 2] == "'":
                tokens.append(Token("char", src[i : i + 3], line))
                i += 3
            else:
                m = IDENT.match(src, i + 1)
                tokens.append(Token("lifetime", src[i : m.end()], line))
                i = max(m.end(), i + 1)
        elif c.isdigit():
            m = NUMBER.match(src, i)
            tokens.append(Token("num", m.group(0), line))
            i = m.end()
        elif IDENT_START.match(c):
            m = IDENT.match(src, i + 1)
            word = src[i : m.end()]
            j = m.end()
            if word in STRING_PREFIXES and j < n and src[j] in "\"#'":
                if src[j] == "'" and word == "b":  # b'x'
                    k = j + 1
                    while k < n and src[k] != "'":
                        k += 2 if src[k] == "\\" else 1
                    tokens.append(Token("char", src[i : k + 1], line))
                    i = k + 1
                    continue
                if src[j] == '"' and "r" not in word:  # b"..", c".."
                    k = _scan_string(src, j, None)
                    tokens.append(Token("str", src[i:k], line))
                    line += src.count("\n", i, k)
                    i = k
                    continue
                if "r" in word:  # r"..", r#".."#, br#".."#
                    h = j
                    while h < n and src[h] == "#":
                        h += 1
                    if h < n and src[h] == '"':
                        k = _scan_string(src, h, h - j)
                        tokens.append(Token("str", src[i:k], line))
                        line += src.count("\n", i, k)
                        i = k
                        continue
                    if word == "r" and h == j + 1:  # r#ident, a raw identifier
                        m2 = IDENT.match(src, h)
                        tokens.append(Token("ident", src[h : m2.end()], line))
                        i = m2.end()
                        continue
            tokens.append(Token("ident", word, line))
            i = j
        elif src.startswith("::", i):
            tokens.append(Token("punct", "::", line))
            i += 2
        else:
            tokens.append(Token("punct", c, line))
            i += 1
    return tokens


# ---------------------------------------------------------------------------------------------
# `#[cfg(test)]` items are dropped from the token stream before anything else looks at it.

CLOSING = {"(": ")", "[": "]", "{": "}"}


def _matching(tokens, i):
    """Index of the bracket closing the one at `i`."""
    opener = tokens[i].text
    closer = CLOSING[opener]
    depth = 0
    for j in range(i, len(tokens)):
        t = tokens[j]
        if t.kind != "punct":
            continue
        if t.text == opener:
            depth += 1
        elif t.text == closer:
            depth -= 1
            if depth == 0:
                return j
    return len(tokens) - 1


def _is_cfg_test(tokens, i):
    """`#[cfg(test)]` (also `#[cfg(all(test, ...))]`) starts at `i`: the index after it."""
    if not (_text(tokens, i) == "#" and _text(tokens, i + 1) == "[" and _text(tokens, i + 2) == "cfg"):
        return None
    end = _matching(tokens, i + 1)
    inner = [t.text for t in tokens[i + 3 : end]]
    if inner[:3] == ["(", "test", ")"] or inner[:5] == ["(", "all", "(", "test", ","]:
        return end + 1
    return None


def _text(tokens, i):
    return tokens[i].text if 0 <= i < len(tokens) else None


def strip_cfg_test(tokens):
    out = []
    i, n = 0, len(tokens)
    while i < n:
        after = _is_cfg_test(tokens, i)
        if after is None:
            out.append(tokens[i])
            i += 1
            continue
        # Skip the other attributes of the item, then the item itself: up to its `;` or to
        # the end of its first top-level `{...}` (a `use` item ends at its `;` even with braces).
        j = after
        while _text(tokens, j) == "#" and _text(tokens, j + 1) == "[":
            j = _matching(tokens, j + 1) + 1
        is_use = False
        k = j
        while k < n:
            t = tokens[k]
            if t.kind == "ident" and t.text == "use":
                is_use = True
            if t.kind == "punct" and t.text == ";":
                k += 1
                break
            if t.kind == "punct" and t.text in "([{":
                close = _matching(tokens, k)
                if t.text == "{" and not is_use:
                    k = close + 1
                    break
                k = close + 1
                continue
            k += 1
        i = k
    return out


# ---------------------------------------------------------------------------------------------
# One file's facts: its `mod x;` children, its inline modules, the paths it uses, the `use`
# imports and the names it defines (per module scope: a file's module or an inline `mod x {}`).

DEFINING = {"struct", "enum", "fn", "trait", "type", "const", "static", "union", "mod"}
PATH_STARTS = {"crate", "self", "super"}


class PathUse:
    __slots__ = ("segments", "scope", "line", "text", "in_use")

    def __init__(self, segments, scope, line, text, in_use):
        self.segments = segments  # as written, e.g. ["super", "shard", "Passivate"]
        self.scope = scope  # the module (tuple of names) the path is written in
        self.line = line
        self.text = text
        self.in_use = in_use


class FileFacts:
    def __init__(self):
        self.mod_decls = []  # (scope, name, #[path] or None)
        self.inline_mods = []  # scopes of inline modules
        self.paths = []  # PathUse
        self.imports = {}  # scope -> {alias: segments as written}
        self.globs = {}  # scope -> [segments as written]
        self.defined = {}  # scope -> {name}


def _parse_use_tree(tokens, i, prefix, out, in_use):
    """Parse a use tree at `i` (after `use` or inside a group) with the segments of `prefix`;
    append (segments, alias, is_glob) to `out`; return the index after the tree. Outside a
    `use` item (`in_use` false) `as` is no alias: `<crate::a::T as crate::b::Tr>::f()`."""
    segs = list(prefix)
    if _text(tokens, i) == "::":  # `use ::std::x` (an external crate)
        i += 1
    while True:
        t = tokens[i] if i < len(tokens) else None
        if t is None:
            return i
        if t.kind == "punct" and t.text == "{":
            end = _matching(tokens, i)
            j = i + 1
            while j < end:
                j = _parse_use_tree(tokens, j, segs, out, in_use)
                if _text(tokens, j) == ",":
                    j += 1
                elif j < end and _text(tokens, j) != "}":
                    j += 1  # something unexpected: move on
            return end + 1
        if t.kind == "punct" and t.text == "*":
            out.append((segs, None, True))
            return i + 1
        if t.kind == "ident" or (t.kind == "punct" and t.text == "$"):
            name = t.text
            if t.text == "$" and _text(tokens, i + 1) == "crate":
                name, i = "crate", i + 1
            segs = segs + [name]
            i += 1
            if _text(tokens, i) == "::":
                i += 1
                continue
            alias = None
            if in_use and _text(tokens, i) == "as" and i + 1 < len(tokens):
                alias = tokens[i + 1].text
                i += 2
            out.append((segs, alias, False))
            return i
        # Anything else after `::` (a turbofish `::<`, a qualified path `<T as crate::X>::`):
        # the path so far is the path.
        if len(segs) > len(prefix):
            out.append((segs, None, False))
        return i


def path_text(segs, is_glob):
    """A path as it reads: `crate::a::{self}` is `crate::a`, a glob ends in `::*`."""
    if len(segs) > 1 and segs[-1] == "self":
        segs = segs[:-1]
    return "::".join(segs) + ("::*" if is_glob else "")


def analyse_file(src):
    tokens = strip_cfg_test(tokenize(src))
    facts = FileFacts()
    scope_stack = [((), None)]  # (scope, index of the `}` that ends it)
    i, n = 0, len(tokens)

    def scope():
        return scope_stack[-1][0]

    while i < n:
        while len(scope_stack) > 1 and i > scope_stack[-1][1]:
            scope_stack.pop()
        t = tokens[i]
        prev = tokens[i - 1] if i > 0 else None
        # `mod name;` and `mod name { ... }` (not `r#mod`, not a path segment).
        if t.kind == "ident" and t.text == "mod" and i + 2 < n and tokens[i + 1].kind == "ident":
            name = tokens[i + 1].text
            after = tokens[i + 2]
            facts.defined.setdefault(scope(), set()).add(name)
            if after.text == ";":
                path_attr = None
                # `#[path = "x.rs"]` among the attributes right before (after a visibility).
                k = i - 1
                while k >= 0 and tokens[k].kind in ("ident", "punct") and tokens[k].text in ("pub", ")", "crate", "super", "self", "in", "("):
                    k -= 1
                while k >= 0 and _text(tokens, k) == "]":
                    start = k
                    depth = 0
                    while start >= 0:
                        if tokens[start].text == "]":
                            depth += 1
                        elif tokens[start].text == "[":
                            depth -= 1
                            if depth == 0:
                                break
                        start -= 1
                    attr = tokens[start + 1 : k]
                    if len(attr) == 3 and attr[0].text == "path" and attr[1].text == "=" and attr[2].kind == "str":
                        path_attr = attr[2].text.strip('"')
                    k = start - 2  # before the `#`
                facts.mod_decls.append((scope(), name, path_attr))
                i += 3
                continue
            if after.text == "{":
                end = _matching(tokens, i + 2)
                inner = scope() + (name,)
                facts.inline_mods.append(inner)
                scope_stack.append((inner, end))
                i += 3
                continue
        if t.kind == "ident" and t.text in DEFINING and i + 1 < n and tokens[i + 1].kind == "ident":
            facts.defined.setdefault(scope(), set()).add(tokens[i + 1].text)
        if t.kind == "ident" and t.text == "macro_rules" and _text(tokens, i + 1) == "!" and i + 2 < n:
            facts.defined.setdefault(scope(), set()).add(tokens[i + 2].text)
        # `use` items: every leaf is a path use and, when it names something, an import.
        if t.kind == "ident" and t.text == "use" and (prev is None or prev.text != "::"):
            leaves = []
            end = _parse_use_tree(tokens, i + 1, [], leaves, True)
            for segs, alias, is_glob in leaves:
                facts.paths.append(PathUse(segs, scope(), t.line, "use " + path_text(segs, is_glob), True))
                if is_glob:
                    facts.globs.setdefault(scope(), []).append(segs)
                    continue
                if segs and segs[-1] == "self":
                    segs = segs[:-1]
                if not segs:
                    continue
                name = alias or segs[-1]
                if name != "_":
                    facts.imports.setdefault(scope(), {})[name] = segs
            i = max(end, i + 1)
            continue
        # A path: `crate::..`, `$crate::..`, `self::..`, `super::..` (not `x::crate`, not in
        # `pub(in crate::a)`), possibly ending in a group `::{..}` (a use tree) or `::*`.
        start_word = None
        if t.kind == "ident" and t.text in PATH_STARTS and _text(tokens, i + 1) == "::":
            start_word = t.text
        elif t.kind == "punct" and t.text == "$" and _text(tokens, i + 1) == "crate" and _text(tokens, i + 2) == "::":
            start_word = "crate"
            i += 1
        if start_word and not (prev is not None and prev.text == "::") and not (prev is not None and prev.text == "in"):
            leaves = []
            end = _parse_use_tree(tokens, i, [], leaves, False)
            for segs, _alias, is_glob in leaves:
                facts.paths.append(PathUse(segs, scope(), t.line, path_text(segs, is_glob), False))
            i = max(end, i + 1)
            continue
        i += 1
    return facts


# ---------------------------------------------------------------------------------------------
# Crates: the roots, the module tree from `mod` declarations, the edges and the cycles.


class Module:
    def __init__(self, path, file, child_dir):
        self.path = path  # tuple of names, () for the root
        self.file = file  # absolute path
        self.child_dir = child_dir  # where `mod x;` in this file looks for x.rs / x/mod.rs


class Crate:
    def __init__(self, label, src_dir, root_file):
        self.label = label
        self.src_dir = src_dir
        self.root_file = root_file
        self.modules = {}  # module path -> Module (file modules)
        self.inline = {}  # module path of an inline module -> file
        self.facts = {}  # file -> FileFacts
        self.edges = {}  # (from file, to file) -> [(text, line)]
        self.missing = []  # `mod x;` declarations whose file was not found

    def rel(self, f):
        return os.path.relpath(f, self.src_dir)

    def files(self):
        return sorted({m.file for m in self.modules.values()})


def read(path):
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def build_tree(crate):
    root_dir = os.path.dirname(crate.root_file)
    todo = [Module((), crate.root_file, root_dir)]
    seen = set()
    while todo:
        m = todo.pop()
        if m.file in seen:
            continue
        seen.add(m.file)
        crate.modules[m.path] = m
        facts = analyse_file(read(m.file))
        crate.facts[m.file] = facts
        for inner in facts.inline_mods:
            crate.inline[m.path + inner] = m.file
        for scope, name, path_attr in facts.mod_decls:
            base = os.path.join(m.child_dir, *scope)
            if path_attr:
                candidates = [os.path.normpath(os.path.join(os.path.dirname(m.file) if not scope else base, path_attr))]
            else:
                candidates = [os.path.join(base, name + ".rs"), os.path.join(base, name, "mod.rs")]
            found = next((c for c in candidates if os.path.isfile(c)), None)
            if found is None:
                crate.missing.append((m.file, name))
                continue
            child_dir = os.path.dirname(found) if os.path.basename(found) == "mod.rs" else os.path.join(os.path.dirname(found), name)
            todo.append(Module(m.path + scope + (name,), found, child_dir))


class Resolver:
    def __init__(self, crate):
        self.crate = crate

    def file_of(self, path):
        """The file of a module path, or None when no such module exists."""
        if path in self.crate.modules:
            return self.crate.modules[path].file
        return self.crate.inline.get(path)

    def is_module(self, path):
        return self.file_of(path) is not None

    def scope_facts(self, path):
        """(defined names, imports, globs) of a module (a file's own scope or an inline one)."""
        f = self.file_of(path)
        facts = self.crate.facts[f]
        # The scope inside the file: the part of `path` below the file's module.
        file_path = max((p for p, m in self.crate.modules.items() if m.file == f), key=len)
        inner = path[len(file_path) :]
        return facts.defined.get(inner, set()), facts.imports.get(inner, {}), facts.globs.get(inner, [])

    def absolute(self, segs, scope):
        """Segments as written in module `scope` -> an absolute module path, or None when the
        path leaves the crate (another crate, std) or is not one of ours."""
        segs = list(segs)
        if not segs:
            return None
        here = list(scope)
        if segs[-1] == "self":  # `use crate::a::{self}`: the module itself
            segs = segs[:-1]
        if not segs:
            return None
        if segs[0] == "crate":
            return tuple(segs[1:])
        if segs[0] == "self":
            return tuple(here + segs[1:])
        if segs[0] == "super":
            while segs and segs[0] == "super":
                if not here:
                    return None
                here.pop()
                segs.pop(0)
            if segs and segs[0] == "self":
                segs.pop(0)
            return tuple(here + segs)
        # A bare path (in an import): ours only when it starts with a module of this scope.
        if self.is_module(tuple(here + segs[:1])):
            return tuple(here + segs)
        return None

    def resolve(self, path, depth=0):
        """The file an absolute path leads to (None: outside the crate)."""
        k = len(path)
        while k > 0 and not self.is_module(path[:k]):
            k -= 1
        module = path[:k]
        if k == len(path) or depth > 16:
            return self.file_of(module)
        name = path[k]
        defined, imports, globs = self.scope_facts(module)
        if name in defined:
            return self.file_of(module)
        if name in imports:
            target = self.absolute(imports[name], module)
            if target is None:
                return None  # imported from another crate
            return self.resolve(target + path[k + 1 :], depth + 1)
        for g in globs:
            target = self.absolute(g, module)
            if target is None or not self.is_module(target):
                continue
            g_defined, g_imports, _ = self.scope_facts(target)
            if name in g_defined or name in g_imports:
                return self.resolve(target + (name,) + path[k + 1 :], depth + 1)
        return self.file_of(module)


def build_edges(crate):
    r = Resolver(crate)
    for mpath, m in crate.modules.items():
        facts = crate.facts[m.file]
        for use in facts.paths:
            if use.segments[0] not in PATH_STARTS:
                continue
            scope = mpath + use.scope
            target = r.absolute(use.segments, scope)
            if target is None:
                continue
            to = r.resolve(target)
            if to is None or to == m.file:
                continue
            crate.edges.setdefault((m.file, to), []).append((use.text, use.line))


def strongly_connected(nodes, succ):
    """Tarjan's algorithm, iterative; components with two or more nodes."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(succ.get(start, ())))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(succ.get(w, ()))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def elementary_cycles(component, succ, limit):
    """Elementary cycles within one component, shortest first, each starting at its smallest
    node; at most `limit` (and whether there were more)."""
    members = set(component)
    order = {v: i for i, v in enumerate(sorted(component))}
    found = []
    cap = limit * 4  # enough to pick the shortest from; a dense component has very many
    for s in sorted(component):
        # Depth-first search over nodes ordered after s, back to s.
        stack = [(s, [s])]
        while stack and len(found) <= cap:
            v, path = stack.pop()
            for w in sorted(succ.get(v, ()), reverse=True):
                if w not in members:
                    continue
                if w == s:
                    found.append(path + [s])
                elif order[w] > order[s] and w not in path:
                    stack.append((w, path + [w]))
    found.sort(key=lambda c: (len(c), c))
    return found[:limit], len(found) > limit


# ---------------------------------------------------------------------------------------------
# Finding the crates.


def crate_roots(crate_dir):
    """(label suffix, root file) of each crate root of the package in `crate_dir`."""
    src = os.path.join(crate_dir, "src")
    roots = []
    manifest = os.path.join(crate_dir, "Cargo.toml")
    lib_path, bins = None, []
    text = read(manifest)
    if tomllib is not None:
        try:
            data = tomllib.loads(text)
            lib_path = (data.get("lib") or {}).get("path")
            bins = [(b.get("name"), b.get("path")) for b in data.get("bin", []) if b.get("path")]
        except tomllib.TOMLDecodeError:
            pass
    else:
        for section, body in re.findall(r"^\[\[?(lib|bin)\]\]?\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S):
            p = re.search(r'^path\s*=\s*"([^"]+)"', body, re.M)
            nm = re.search(r'^name\s*=\s*"([^"]+)"', body, re.M)
            if p and section == "lib":
                lib_path = p.group(1)
            elif p:
                bins.append((nm.group(1) if nm else None, p.group(1)))
    lib = os.path.join(crate_dir, lib_path) if lib_path else os.path.join(src, "lib.rs")
    if os.path.isfile(lib):
        roots.append(("", lib))
    main = os.path.join(src, "main.rs")
    if os.path.isfile(main):
        roots.append((" (bin)", main))
    bin_dir = os.path.join(src, "bin")
    if os.path.isdir(bin_dir):
        for entry in sorted(os.listdir(bin_dir)):
            p = os.path.join(bin_dir, entry)
            if entry.endswith(".rs") and os.path.isfile(p):
                roots.append((f" (bin {entry[:-3]})", p))
            elif os.path.isfile(os.path.join(p, "main.rs")):
                roots.append((f" (bin {entry})", os.path.join(p, "main.rs")))
    for name, path in bins:
        p = os.path.normpath(os.path.join(crate_dir, path))
        if os.path.isfile(p) and all(os.path.normpath(r) != p for _, r in roots):
            roots.append((f" (bin {name or os.path.basename(os.path.dirname(p))})", p))
    return roots


def find_crates(root):
    crates = []
    for top in CRATE_DIRS:
        base = os.path.join(root, top)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
            if "Cargo.toml" in filenames and os.path.isdir(os.path.join(dirpath, "src")):
                rel = os.path.relpath(dirpath, root)
                for suffix, root_file in crate_roots(dirpath):
                    crates.append(Crate(rel + suffix, os.path.join(dirpath, "src"), root_file))
    return crates


def analyse(root):
    crates = find_crates(root)
    for c in crates:
        build_tree(c)
        build_edges(c)
    return crates


def crate_cycles(c):
    succ = {}
    for a, b in c.edges:
        succ.setdefault(a, set()).add(b)
    cycles = []
    for comp in strongly_connected(c.files(), succ):
        found, more = elementary_cycles(comp, succ, MAX_CYCLES_PER_COMPONENT)
        cycles.append((comp, found, more))
    return cycles


def describe_edge(c, a, b):
    uses = c.edges[(a, b)]
    seen, names = set(), []
    for text, line in uses:
        if text in seen:
            continue
        seen.add(text)
        names.append(f"{text} (line {line})")
    extra = len(names) - MAX_NAMES_PER_EDGE
    shown = ", ".join(names[:MAX_NAMES_PER_EDGE])
    return shown + (f", and {extra} more" if extra > 0 else "")


def run(root, verbose, out):
    crates = analyse(root)
    n_modules = sum(len(c.files()) for c in crates)
    n_edges = sum(len(c.edges) for c in crates)
    if verbose:
        for c in crates:
            print(f"{c.label}:", file=out)
            for f in c.files():
                targets = sorted(b for a, b in c.edges if a == f)
                print(f"  {c.rel(f)}" + ("" if targets else " (no edges)"), file=out)
                for b in targets:
                    print(f"    -> {c.rel(b)}: {describe_edge(c, f, b)}", file=out)
            for f, name in c.missing:
                print(f"  note: `mod {name};` in {c.rel(f)} has no file", file=out)
        print(file=out)
    found = 0
    for c in crates:
        for comp, cycles, more in crate_cycles(c):
            if len(comp) > 2 or more:
                print(f"{c.label}: {len(comp)} modules tied together: {', '.join(c.rel(f) for f in comp)}", file=out)
            for cyc in cycles:
                found += 1
                print(f"{c.label}: {' -> '.join(c.rel(f) for f in cyc)}", file=out)
                for a, b in zip(cyc, cyc[1:]):
                    print(f"    {c.rel(a)} -> {c.rel(b)}: {describe_edge(c, a, b)}", file=out)
            if more:
                print(f"{c.label}: (more cycles in these modules not shown)", file=out)
    if found:
        print(
            f"module cycles: {found} found in {len(crates)} crates, {n_modules} modules, {n_edges} edges", file=out
        )
        return 1
    print(f"module cycles: none in {len(crates)} crates, {n_modules} modules, {n_edges} edges", file=out)
    return 0


# ---------------------------------------------------------------------------------------------
# Self-test: small made-up crates with known answers.


def self_test():
    import io

    def make(root, crate, files):
        d = os.path.join(root, crate)
        os.makedirs(os.path.join(d, "src"), exist_ok=True)
        with open(os.path.join(d, "Cargo.toml"), "w") as fh:
            fh.write(f'[package]\nname = "{os.path.basename(crate)}"\nversion = "0.1.0"\n')
        for rel, text in files.items():
            p = os.path.join(d, "src", rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as fh:
                fh.write(textwrap.dedent(text))

    cases = {
        # name: (files, expected cycles as sets of files relative to src/, expected edges or None)
        "use_crate_cycle": (
            {
                "lib.rs": "mod a;\nmod b;\nmod c;\n",
                "a.rs": "use crate::b::B;\npub struct A;\n",
                "b.rs": "use crate::{a::A, c::{self, C}};\npub struct B;\n",
                "c.rs": "pub struct C;\n",
            },
            [{"a.rs", "b.rs"}],
            {("a.rs", "b.rs"), ("b.rs", "a.rs"), ("b.rs", "c.rs")},
        ),
        "inline_path_cycle": (
            {
                "lib.rs": "pub mod api;\npub mod store;\n",
                "api/mod.rs": "pub mod guard;\n",
                "api/guard.rs": "pub fn may_post() -> bool { crate::store::count() > 0 }\n",
                "store.rs": (
                    "// crate::nothing::here in a comment\n"
                    "pub fn count() -> usize {\n"
                    '    let _s = "crate::api::guard::may_post()"; let _r = r#"super::x"#;\n'
                    "    let _c = '{'; fn f<'a>(x: &'a str) -> &'a str { x }\n"
                    "    if crate::api::guard::may_post() { 1 } else { 0 }\n"
                    "}\n"
                ),
            },
            [{"api/guard.rs", "store.rs"}],
            {("api/guard.rs", "store.rs"), ("store.rs", "api/guard.rs")},
        ),
        "super_cycle": (
            {
                "main.rs": "mod actors;\nfn main() {}\n",
                "actors/mod.rs": "pub mod room;\npub mod shard;\npub struct Ctx;\n",
                "actors/room.rs": "use super::shard::{Passivate, Shard};\nuse super::Ctx;\npub struct Room;\n",
                "actors/shard.rs": "pub struct Passivate;\npub struct Shard;\nfn start() { let _ = super::room::Room; }\n",
            },
            [{"actors/room.rs", "actors/shard.rs"}],
            {("actors/room.rs", "actors/shard.rs"), ("actors/room.rs", "actors/mod.rs"), ("actors/shard.rs", "actors/room.rs")},
        ),
        "parent_child_no_cycle": (
            {
                "lib.rs": "pub mod settings;\npub mod app;\npub use settings::Settings;\npub struct Root;\n",
                "settings.rs": "pub struct Settings;\n",
                "app.rs": "pub mod part;\nuse crate::Settings;\npub struct App;\n",
                "app/part.rs": "use super::App;\nuse crate::Root;\npub(in crate::app) fn f() -> super::super::settings::Settings { todo!() }\n",
            },
            [],
            {("app.rs", "settings.rs"), ("app/part.rs", "app.rs"), ("app/part.rs", "lib.rs"), ("app/part.rs", "settings.rs")},
        ),
        "cfg_test_only_cycle": (
            {
                "lib.rs": "mod a;\nmod b;\n",
                "a.rs": "use crate::b::B;\npub struct A;\n#[cfg(test)]\nmod tests {\n    use crate::b::B;\n    use super::*;\n}\n",
                "b.rs": (
                    "pub struct B;\n"
                    "#[cfg(test)]\nmod tests {\n    use crate::a::A;\n    #[test]\n    fn t() { let _ = crate::a::A; }\n}\n"
                    "#[cfg(test)]\nuse crate::a::A as _A;\n"
                ),
            },
            [],
            {("a.rs", "b.rs")},
        ),
    }
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (files, _, _) in cases.items():
            make(tmp, os.path.join("services", name), files)
        # A binary under src/bin/<name>/ is its own crate: its cycle is found and named as such.
        make(
            tmp,
            "tests/tool",
            {
                "lib.rs": "pub fn shared() {}\n",
                "bin/bench/main.rs": "mod x;\nmod y;\nfn main() { tool::shared(); }\n",
                "bin/bench/x.rs": "pub fn x() { crate::y::y() }\n",
                "bin/bench/y.rs": "pub fn y() { crate::x::x() }\n",
            },
        )
        crates = {c.label: c for c in analyse(tmp)}

        def check(cond, what):
            if not cond:
                failures.append(what)

        for name, (_files, want_cycles, want_edges) in cases.items():
            label = f"services/{name}" if f"services/{name}" in crates else f"services/{name} (bin)"
            c = crates.get(label)
            check(c is not None, f"{name}: crate not found ({sorted(crates)})")
            if c is None:
                continue
            got_cycles = [{c.rel(f) for f in comp} for comp, _, _ in crate_cycles(c)]
            check(got_cycles == want_cycles, f"{name}: cycles {got_cycles}, expected {want_cycles}")
            got_edges = {(c.rel(a), c.rel(b)) for a, b in c.edges}
            check(want_edges is None or got_edges == want_edges, f"{name}: edges {sorted(got_edges)}, expected {sorted(want_edges or [])}")
        bench = crates.get("tests/tool (bin bench)")
        check(bench is not None, f"the src/bin/bench crate is missing ({sorted(crates)})")
        if bench is not None:
            got = [{bench.rel(f) for f in comp} for comp, _, _ in crate_cycles(bench)]
            check(got == [{"bin/bench/x.rs", "bin/bench/y.rs"}], f"bin crate cycles: {got}")
        check("tests/tool" in crates and not crates["tests/tool"].edges, "the tool's lib is its own crate")

        out = io.StringIO()
        code = run(tmp, False, out)
        text = out.getvalue()
        check(code == 1, f"exit code {code} with cycles")
        check("services/use_crate_cycle: a.rs -> b.rs -> a.rs" in text, f"report format:\n{text}")
        check("b.rs -> a.rs: use crate::a::A (line 1)" in text, f"the names that tie a cycle:\n{text}")
        check("crate::store::count (line 1)" in text, f"inline path named:\n{text}")
        check("module cycles: 4 found in 7 crates" in text, f"summary:\n{text}")
        for name in ("parent_child_no_cycle", "cfg_test_only_cycle"):
            check(f"services/{name}:" not in text, f"{name} reported:\n{text}")

    with tempfile.TemporaryDirectory() as tmp:
        make(tmp, "shared/clean", {"lib.rs": "pub mod a;\npub mod b;\n", "a.rs": "use crate::b::B;\n", "b.rs": "pub struct B;\n"})
        out = io.StringIO()
        code = run(tmp, False, out)
        check(code == 0, f"exit code {code} without cycles")
        check(out.getvalue().strip() == "module cycles: none in 1 crates, 3 modules, 1 edges", f"summary: {out.getvalue()!r}")

    # The paths of one file: comments, strings, chars and lifetimes hide nothing and fake nothing.
    tricky = textwrap.dedent(
        r'''
        fn a<'a>(x: &'static str) { let c = '\''; let b = b'"'; let s = "\\"; let r = r#"a " crate::no"#;
        /* outer /* inner crate::no */ crate::no */ let bs = b"crate::no"; // crate::no
        crate::yes::A::<u8>::new(); <crate::q::T as crate::tr::Tr>::f(); let ch = '{';
        'outer: loop { break 'outer; } crate::last::f }
        use crate::{a::{self as aa, b::*}, c};
        pub(in crate::vis) fn g() {}
        '''
    )
    got = [p.text for p in analyse_file(tricky).paths if p.segments[0] in PATH_STARTS]
    want = ["crate::yes::A", "crate::q::T", "crate::tr::Tr", "crate::last::f", "use crate::a", "use crate::a::b::*", "use crate::c"]
    check(got == want, f"paths of the tricky file: {got}")

    if failures:
        for f in failures:
            print(f"self-test FAILED: {f}", file=sys.stderr)
        return 1
    print(f"module cycles self-test: {len(cases) + 3} cases ok")
    return 0


def main():
    if hasattr(signal, "SIGPIPE"):  # `module-cycles.py --verbose | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verbose", action="store_true", help="print the whole module graph")
    parser.add_argument("--self-test", action="store_true", help="check this script on made-up crates")
    parser.add_argument("--root", default=os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")), help="the workspace (default: this repository)")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    return run(args.root, args.verbose, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
