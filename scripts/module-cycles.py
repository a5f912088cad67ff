#!/usr/bin/env python3
"""Fails when the modules of a crate's src/ depend on each other in a cycle.

A module is a file of src/ (bin/ and test modules left out). Module A depends on module B when
A's code (comments and `#[cfg(test)] mod tests` left out) names a path into B: `crate::b::…`,
`super::b::…` or `self::b::…`, in a `use` or inline. A module naming its own ancestor or
descendant is not counted: a parent declares its children, and a child may use what its
parent holds. Every other cycle is reported with the edges that make it. Paths made by macros
are not seen. scripts/test.sh runs this before the tests; docs/architecture.md states the rule.

    scripts/module-cycles.py [CRATE_DIR ...]   # default: every workspace crate with a src/
"""
import os
import re
import sys


def code_of(text):
    """The text without its comments and its trailing `#[cfg(test)] mod tests { … }`."""
    text = re.sub(r"#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", text, flags=re.S)
    return "\n".join(l for l in text.split("\n") if not l.strip().startswith("//"))


def use_paths(prefix, tree):
    """The full paths of a `use` tree's body: `a, b::{c, d}` under prefix."""
    parts, depth, cur = [], 0, ""
    for ch in tree:
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    out = []
    for p in (p.strip() for p in parts):
        if not p:
            continue
        nested = re.match(r"^([\w:]*?)::\{(.*)\}$", p, flags=re.S)
        if nested:
            out += use_paths(prefix + [s for s in nested.group(1).split("::") if s], nested.group(2))
        else:
            out.append(prefix + [s for s in p.split(" as ")[0].strip().split("::") if s])
    return out


def modules_of(src):
    mods = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
            if rel[0] == "bin" or rel[-1] == "tests":
                continue
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            mods[tuple(rel)] = os.path.join(root, f)
    return mods


def edges_of(mods):
    def resolve(cur, segs):
        if segs[0] == "crate":
            base, segs = [], segs[1:]
        elif segs[0] == "super":
            base = list(cur)
            while segs and segs[0] == "super":
                base, segs = base[:-1], segs[1:]
        elif segs[0] == "self":
            base, segs = list(cur), segs[1:]
        else:
            return None
        found = None
        for i in range(len(segs) + 1):
            if tuple(base + segs[:i]) in mods:
                found = tuple(base + segs[:i])
        return found

    edges = {m: set() for m in mods}
    for m, path in mods.items():
        with open(path, encoding="utf-8") as fh:
            code = code_of(fh.read())
        paths = []
        for u in re.findall(r"\buse\s+((?:crate|super|self)\b[^;]*);", code, flags=re.S):
            u = re.sub(r"\s+", " ", u)
            group = re.match(r"^([\w:]*?)::\{(.*)\}$", u)
            if group:
                paths += use_paths([s for s in group.group(1).split("::") if s], group.group(2))
            else:
                paths.append(u.split(" as ")[0].split("::"))
        paths += [p.split("::") for p in re.findall(r"\b((?:crate|super)(?:::\w+)+)", code)]
        for p in paths:
            p = [s.strip() for s in p if s.strip()]
            target = resolve(m, p) if p else None
            if target is None or target[: len(m)] == m or m[: len(target)] == target:
                continue
            edges[m].add(target)
    return edges


def cycles_of(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    crates = sys.argv[1:] or sorted(
        os.path.join(root, d) for d in os.listdir(root) if os.path.isdir(os.path.join(root, d, "src"))
    )
    bad = 0
    for crate in crates:
        edges = edges_of(modules_of(os.path.join(crate, "src")))
        name = lambda m: "::".join(m) or "(root)"
        for comp in cycles_of(edges):
            bad += 1
            print(f"{os.path.basename(crate)}: module cycle: {', '.join(map(name, comp))}")
            for a in comp:
                for b in sorted(edges[a] & set(comp)):
                    print(f"  {name(a)} -> {name(b)}")
    if bad:
        sys.exit(1)
    print(f"no module cycles ({len(crates)} crates)")


if __name__ == "__main__":
    main()
