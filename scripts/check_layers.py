#!/usr/bin/env python3
"""The layering rule of src/: folders in data-path order, each including only folders before it.

  python3 scripts/check_layers.py            # checks; exit 1 and one line per include that runs back up
  python3 scripts/check_layers.py --dot      # the include graph between folders (Graphviz dot) on stdout

A folder's ISA-specific subfolder (kernels/x86, moe/x86) and compiler/passes belong to their parent's
layer. Public headers (include/switchyard/) may be used by every layer. ctest runs this check.
"""
import collections
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Bottom first. Each layer may include itself and any layer before it, never one after it.
LAYERS = ["core", "io", "kernels", "graph", "onnx", "ops", "moe", "runtime", "compiler", "engine", "server"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(path):
    """'src/kernels/x86/a.cpp' -> 'kernels'; None outside src/."""
    parts = os.path.relpath(path, os.path.join(ROOT, "src")).split(os.sep)
    return parts[0] if len(parts) > 1 and parts[0] in LAYERS else None


def includes():
    """(file, line number, including layer, included layer) for every quoted include under src/."""
    src = os.path.join(ROOT, "src")
    for folder, _, names in os.walk(src):
        for name in sorted(names):
            if not name.endswith((".h", ".cpp")):
                continue
            path = os.path.join(folder, name)
            here = layer_of(path)
            if here is None:
                yield path, 0, None, None
                continue
            with open(path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m or m.group(1).startswith("switchyard/"):
                        continue
                    target = os.path.join(src, m.group(1))
                    if not os.path.exists(target):
                        target = os.path.join(folder, m.group(1))
                    yield path, number, here, layer_of(target)


def main():
    edges = collections.Counter()
    problems = []
    for path, number, here, there in includes():
        rel = os.path.relpath(path, ROOT)
        if here is None:
            problems.append(f"{rel}: not in a layer folder ({', '.join(LAYERS)})")
            continue
        if there is None or there == here:
            continue
        edges[(here, there)] += 1
        if LAYERS.index(there) > LAYERS.index(here):
            problems.append(f"{rel}:{number}: {here}/ includes {there}/, a layer above it")
    if "--dot" in sys.argv:
        print("digraph layers {\n  rankdir=BT;")
        for (a, b), n in sorted(edges.items()):
            bad = LAYERS.index(b) > LAYERS.index(a)
            print(f'  "{a}" -> "{b}" [label={n}{", color=red" if bad else ""}];')
        print("}")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"layering: {len(problems)} include(s) break the order {' < '.join(LAYERS)}", file=sys.stderr)
        return 1
    print(f"layering: {sum(edges.values())} includes between {len(LAYERS)} layers, all pointing down "
          f"({' < '.join(LAYERS)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
