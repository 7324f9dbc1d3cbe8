#!/usr/bin/env python3
"""Architecture figures for a checkout: lines per crate, the largest files, top-level
`pub` items, and file-level import cycles inside each crate.

    python3 tests/arch/metrics.py [CHECKOUT]

Issue 16 asked for these before and after the redesign; running it on two checkouts
(for example `git worktree add /tmp/before <rev>`) gives both columns. It reads the
sources as text: a `use crate::a::b` or `crate::a::b::` path is an edge from the file
to the file that defines module `a::b` (or `a`), and a cycle is a strongly connected
set of two or more files.
"""
import os
import re
import sys

CRATES = {"reference": "reference/src", "harness": "harness/src", "tests": "tests", "fuzz": "fuzz"}


def rust_files(root):
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in ("target", "corpus", "artifacts", "snapshots")]
        for f in files:
            if f.endswith(".rs"):
                yield os.path.join(dirpath, f)


def code_lines(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return sum(1 for line in f if line.strip())


def module_of(src_root, path):
    rel = os.path.relpath(path, src_root)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return "::".join(rel)


def cycles(src_root):
    files = list(rust_files(src_root))
    mods = {module_of(src_root, p): p for p in files}
    edges = {p: set() for p in files}
    pat = re.compile(r"\bcrate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)")
    for p in files:
        with open(p, encoding="utf-8", errors="replace") as f:
            # Doc links name modules without importing them, so comments are left out.
            text = "\n".join(l for l in f if not l.lstrip().startswith("//"))
        # `use crate::{a::x, b}` groups: each name after the brace is a path too.
        for grp in re.findall(r"use crate::\{([^}]*)\}", text):
            for part in grp.split(","):
                name = part.strip().split(" as ")[0]
                if name:
                    text += f"\ncrate::{name}"
        for m in pat.findall(text):
            parts = m.split("::")
            for n in range(len(parts), 0, -1):
                target = mods.get("::".join(parts[:n]))
                if target:
                    if target != p:
                        edges[p].add(target)
                    break
    # Tarjan's strongly connected components, iterative.
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for start in files:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(edges[nxt]))))
                    advanced = True
                    break
                if nxt in on:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(os.path.relpath(c, src_root) for c in comp))
    return out


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
    print(f"| crate | non-blank lines | files | top-level pub items | import cycles (files) |")
    print("|---|---|---|---|---|")
    sizes = []
    for crate, rel in CRATES.items():
        src = os.path.join(root, rel)
        if not os.path.isdir(src):
            continue
        files = list(rust_files(src))
        lines = 0
        pubs = 0
        for p in files:
            n = code_lines(p)
            lines += n
            sizes.append((n, os.path.relpath(p, root)))
            with open(p, encoding="utf-8", errors="replace") as f:
                pubs += sum(1 for l in f if re.match(r"pub (fn|struct|enum|trait|type|const|static|mod|use|async fn)\b", l))
        cyc = cycles(src) if crate in ("reference", "harness") else []
        cyc_text = "; ".join(" ↔ ".join(c) for c in cyc) or "none"
        print(f"| {crate} | {lines} | {len(files)} | {pubs} | {len(cyc)}: {cyc_text} |")
    print()
    print("| largest files (non-blank lines) | |")
    print("|---|---|")
    for n, p in sorted(sizes, reverse=True)[:8]:
        print(f"| {p} | {n} |")


if __name__ == "__main__":
    main()
