#!/usr/bin/env bash
# Build every Lambda binary that infra/template.yaml ships, with cargo-lambda, into
# target/lambda/<binary>/bootstrap.zip (the template's CodeUri of each function), and
# print each zip's size.
#
#   scripts/package.sh            x86_64 (the default: what this machine can build)
#   scripts/package.sh --x86-64   the same
#   scripts/package.sh --arm64    aarch64, the template's Architectures (needs the
#                                 aarch64-unknown-linux-gnu Rust target installed)
#
# cargo-lambda and zig (its cross-linker) come from PyPI into .venv-infra when missing.
# The binaries are the template's CodeUris, so a function added there is built here.
# Release builds are slow (lto, codegen-units = 1): the build runs under nice.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

arch=x86-64
case "${1:-}" in
  "" | --x86-64) ;;
  --arm64) arch=arm64 ;;
  *) echo "usage: scripts/package.sh [--x86-64 | --arm64]" >&2; exit 2 ;;
esac

VENV=.venv-infra
TEMPLATE=infra/template.yaml
REQUIREMENTS=('cargo-lambda>=1.6,<2' 'ziglang>=0.13,<0.16')
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1

if ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
fi
if [ ! -x "$VENV/bin/cargo-lambda" ] || ! "$VENV/bin/python" -c 'import ziglang' 2>/dev/null; then
  "$VENV/bin/python" -m pip install -q "${REQUIREMENTS[@]}"
fi
# `cargo lambda` is found on PATH; it finds zig as `python3 -m ziglang` of this venv.
export PATH="$PWD/$VENV/bin:$PATH"

mapfile -t bins < <(sed -n 's#^ *CodeUri: \.\./target/lambda/\([A-Za-z0-9_-]*\)/bootstrap\.zip *$#\1#p' "$TEMPLATE" | sort -u)
if [ "${#bins[@]}" -eq 0 ]; then
  echo "package: no CodeUri ../target/lambda/<binary>/bootstrap.zip in $TEMPLATE" >&2
  exit 1
fi
bin_args=()
for b in "${bins[@]}"; do bin_args+=(--bin "$b"); done

echo "== cargo lambda build --release --$arch --output-format zip (${bins[*]})"
start=$SECONDS
nice -n "${PACKAGE_NICE:-10}" cargo lambda build --release "--$arch" --output-format zip "${bin_args[@]}"
echo "== built in $((SECONDS - start)) s"

python3 - "${CARGO_TARGET_DIR:-target}" "$arch" "${bins[@]}" <<'EOF'
import os
import sys
import zipfile

target, arch, bins = sys.argv[1], sys.argv[2], sys.argv[3:]
for b in bins:
    path = os.path.join(target, "lambda", b, "bootstrap.zip")
    with zipfile.ZipFile(path) as z:
        unpacked = sum(i.file_size for i in z.infolist())
    print(f"   {path}: {os.path.getsize(path) / 1e6:.2f} MB zipped, "
          f"{unpacked / 1e6:.2f} MB unpacked")
if arch != "arm64":
    print("   note: x86_64 zips; the template deploys arm64 (Architectures), so "
          "deploy a `scripts/package.sh --arm64` build")
EOF
