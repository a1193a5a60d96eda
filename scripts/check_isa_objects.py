#!/usr/bin/env python3
"""The ISA-specific kernel files (src/*/x86/*.cpp, compiled with -mavx2 or -mavx512f) must not emit weak
functions outside namespace switchyard::x86: an inline function or template instance (std::vector's
members, ...) emitted there is a weak definition, and the linker keeps one copy for the whole program.
If it keeps the AVX-512 one, a CPU without AVX-512 runs AVX-512 instructions from baseline code.
Checked on optimised builds (ctest registers it for Release only): at -O0 even std::min is emitted out
of line, as scalar integer code.

Usage: check_isa_objects.py BUILD_DIR  (exit 1 and a list when such a symbol exists)."""
import pathlib
import subprocess
import sys


def main():
    build = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "build")
    objects = sorted(p for p in build.glob("CMakeFiles/switchyard_core.dir/src/**/x86/*.o"))
    if not objects:
        print(f"check_isa_objects: no x86 kernel objects under {build}")
        return 1
    bad = []
    for obj in objects:
        out = subprocess.run(["nm", "-C", str(obj)], check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split(maxsplit=2)
            # W: a weak function (V, weak data such as the typeinfo UBSan emits, runs no instructions).
            if len(parts) == 3 and parts[1] == "W" and not parts[2].startswith("switchyard::x86::"):
                bad.append(f"{obj.name}: {parts[1]} {parts[2]}")
    if bad:
        print("ISA-specific objects define shared weak functions (move the code to a baseline file):")
        print("\n".join("  " + b for b in bad))
        return 1
    print(f"check_isa_objects: {len(objects)} ISA-specific objects, no shared weak functions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
