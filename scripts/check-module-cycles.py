#!/usr/bin/env python3
"""Module dependency graph of a crate's source folder: every `crate::x` path
(and, with a module name, its submodules' `super::x` paths), including
`use crate::{x::.., y}` groups and names re-exported by the root. Test
modules are left out. Prints the edges and exits 1 if any cycle exists.

Usage: check-module-cycles.py SRC_DIR [MODULE]"""
import os, re, sys
root = sys.argv[1]
depth_prefix = sys.argv[2] if len(sys.argv) > 2 else ""  # e.g. "rpc" for submodules of rpc
edges = {}
# names re-exported by the (sub)crate root, to find edges hidden behind `super::Name` / `crate::Name`
reexports = {}
root_file = os.path.join(root, depth_prefix, "mod.rs") if depth_prefix else os.path.join(root, "lib.rs")
if os.path.exists(root_file):
    rt = open(root_file).read()
    for mm in re.finditer(r'pub(?:\(crate\))? use ([a-z_]+)::(\{[^}]*\}|[A-Za-z_]+);', rt):
        for name in re.findall(r'[A-Za-z_]+', mm.group(2)):
            reexports[name] = mm.group(1)
def module_of(path):
    rel = os.path.relpath(path, root)
    parts = rel.split(os.sep)
    if depth_prefix:
        if parts[0] != depth_prefix: return None
        parts = parts[1:]
    if len(parts) == 1:
        name = parts[0][:-3]
        return None if name in ("lib", "main", "mod") else name
    return parts[0]
for dp, _, fs in os.walk(root):
    for f in fs:
        if not f.endswith(".rs"): continue
        p = os.path.join(dp, f)
        m = module_of(p)
        if m is None: continue
        text = open(p).read()
        # test modules sit at the end of a file by convention: what they use is not the module's layering
        cut = re.search(r'#\[cfg\(test\)\]\s*mod tests', text)
        if cut: text = text[:cut.start()]
        # strip comments
        text = re.sub(r'//[^\n]*', '', text)
        base = "crate::" + (depth_prefix + "::" if depth_prefix else "")
        targets = set()
        for mm in re.finditer(re.escape(base) + r'([a-z_]+)', text):
            targets.add(mm.group(1))
        for mm in re.finditer(re.escape(base) + r'\{([^}]*(?:\{[^}]*\}[^}]*)*)\}', text, re.S):
            for t in re.findall(r'(?:^|,)\s*([a-z_]+)', mm.group(1)):
                targets.add(t)
        if depth_prefix:
            for mm in re.finditer(r'super::([a-z_]+)', text):
                if os.path.dirname(os.path.relpath(p, root)) in (depth_prefix, os.path.join(depth_prefix, m)):
                    targets.add(mm.group(1))
        if depth_prefix:
            in_root = os.path.dirname(os.path.relpath(p, root)) == depth_prefix
            pat = r'(?:crate::' + depth_prefix + r'|' + (r'super' if in_root else r'crate::' + depth_prefix) + r')::\{?([^;]*)'
            for mm in re.finditer(pat, text):
                for name in re.findall(r'\b([A-Z][A-Za-z_]*)\b', mm.group(1).split(';')[0]):
                    if name in reexports: targets.add(reexports[name])
        else:
            for mm in re.finditer(r'crate::\{?([^;]*)', text):
                for name in re.findall(r'\b([A-Z][A-Za-z_]*)\b', mm.group(1)):
                    if name in reexports: targets.add(reexports[name])
        for t in targets:
            if t != m and t not in ("self",):
                edges.setdefault(m, set()).add(t)
mods = sorted(set(edges) | {t for v in edges.values() for t in v})
for m in mods:
    print(f"{m} -> {', '.join(sorted(edges.get(m, ())))}")
# cycles via Tarjan SCC
idx = {}; low = {}; st = []; on = set(); sccs = []; c = [0]
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(comp)
sys.setrecursionlimit(10000)
for m in mods:
    if m not in idx: sc(m)
print("CYCLES:", sccs if sccs else "none")
sys.exit(1 if sccs else 0)
