#!/usr/bin/env bash
# Copies tests/interop/matrix.md (written by run.sh) into README.md, between the
# lines <!-- interop-matrix:start --> and <!-- interop-matrix:end -->. Everything else in
# README.md is left byte for byte. Fails when a marker is missing or out of order.
#   tests/interop/update-readme.sh [MATRIX.md [README.md]]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
matrix=${1:-$here/matrix.md}
readme=${2:-$here/../../README.md}

[[ -s $matrix ]] || { echo "update-readme.sh: $matrix is missing or empty; run tests/interop/run.sh first" >&2; exit 1; }
[[ -f $readme ]] || { echo "update-readme.sh: $readme not found" >&2; exit 1; }

timeout 30 python3 - "$matrix" "$readme" <<'EOF'
import sys
matrix_path, readme_path = sys.argv[1], sys.argv[2]
START, END = "<!-- interop-matrix:start -->", "<!-- interop-matrix:end -->"
with open(readme_path, encoding="utf-8") as f:
    lines = f.read().split("\n")
starts = [i for i, l in enumerate(lines) if l.strip() == START]
ends = [i for i, l in enumerate(lines) if l.strip() == END]
if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
    sys.exit(f"update-readme.sh: {readme_path} needs exactly one {START} line followed by one {END} line")
with open(matrix_path, encoding="utf-8") as f:
    block = f.read().rstrip("\n").split("\n")
new = lines[: starts[0] + 1] + block + lines[ends[0]:]
if new == lines:
    print(f"update-readme.sh: {readme_path} already up to date")
else:
    with open(readme_path, "w", encoding="utf-8") as f:
        f.write("\n".join(new))
    print(f"update-readme.sh: matrix copied into {readme_path}")
EOF
