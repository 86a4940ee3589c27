#!/usr/bin/env bash
# Debian packages the service and its tests need; installs only what is missing (needs root).
#   fonts-arphic-uming  CJK font for seal impressions, the impression form and invoices
#   softhsm2, opensc    a real PKCS#11 token and pkcs11-tool for the UKey bridge tests
#   chromium            headless browser tests of the web chat, pay page and console
#   poppler-utils       pdftotext, to read generated PDFs back in tests
#   valgrind            callgrind, for bench.instructions (instructions per message) and its test
set -euo pipefail
want=("$@")
missing=()
for pkg in "${want[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "please install: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
