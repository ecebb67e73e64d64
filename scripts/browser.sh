#!/usr/bin/env bash
# Make sure Debian's chromium and chromium-driver are installed (for the
# headless checkout test). Installs them with apt-get when missing.
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  echo "chromium $(chromium --version 2>/dev/null | awk '{print $2}') and chromedriver present"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "chromium/chromedriver missing and apt-get is not available: install Debian's chromium + chromium-driver" >&2
  exit 1
fi
as_root=()
if [ "$(id -u)" != 0 ]; then
  as_root=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null; then
  "${as_root[@]}" apt-get update -q >/dev/null
  "${as_root[@]}" apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null
fi
echo "installed $(chromium --version 2>/dev/null)"
