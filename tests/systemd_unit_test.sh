#!/usr/bin/env bash
# The shipped unit passes `systemd-analyze verify` and rates ≤ 2.0 in `systemd-analyze security`.
# Usage: systemd_unit_test.sh UNIT_FILE SCRAPERD_BINARY
set -euo pipefail
unit=$1 bin=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# verify checks that ExecStart= binaries exist: point them at the build.
sed -e "s|/usr/bin/scraperd|$bin|g" "$unit" > "$tmp/scraperd.service"
out=$(systemd-analyze verify "$tmp/scraperd.service" 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then echo "systemd-analyze verify complained:"; echo "$out"; exit 1; fi
score=$(systemd-analyze security --offline=true "$tmp/scraperd.service" |
        sed -n 's/.*Overall exposure level for scraperd.service: \([0-9.]*\).*/\1/p')
echo "exposure: $score"
awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }' || { echo "exposure $score > 2.0"; exit 1; }
