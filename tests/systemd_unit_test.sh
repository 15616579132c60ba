#!/usr/bin/env bash
# The shipped unit passes `systemd-analyze verify` and rates ≤ 1.2 in `systemd-analyze
# security`, alone and with the API-token credential drop-in of docs/operations.md; it has
# the details operations.md relies on (reload checks the file first, man pages, group-readable
# state, private mounts).
# Usage: systemd_unit_test.sh UNIT_FILE SCRAPERD_BINARY MAN_DIR (the built pages, for the
# Documentation= check of verify)
set -euo pipefail
unit=$1 bin=$2
export MANPATH=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
# verify checks that ExecStart= binaries exist: point them at the build.
sed -e "s|/usr/bin/scraperd|$bin|g" "$unit" > "$tmp/scraperd.service"
check() {  # check UNIT_FILE
  local out score
  out=$(systemd-analyze verify "$1" 2>&1) || { echo "$out"; fail=1; }
  if [ -n "$out" ]; then echo "systemd-analyze verify complained:"; echo "$out"; fail=1; fi
  score=$(systemd-analyze security --offline=true "$1" |
          sed -n 's/.*Overall exposure level for scraperd.service: \([0-9.]*\).*/\1/p')
  echo "exposure: $score"
  awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 1.2) }' || { echo "exposure $score > 1.2"; fail=1; }
}
check "$tmp/scraperd.service"
mkdir -p "$tmp/with-token"
sed '/^\[Service\]/a LoadCredential=api-token:/etc/scraperd/api-token' "$tmp/scraperd.service" \
  > "$tmp/with-token/scraperd.service"
check "$tmp/with-token/scraperd.service"

has() { grep -qxF -- "$1" "$unit" || { echo "the unit lacks: $1"; fail=1; }; }
has "Documentation=man:scraperd(1) man:scraperd.yaml(5) file:///usr/share/doc/scraperd/docs/operations.md"
# Reload runs check first: a bad file makes `systemctl reload` fail.
[ "$(grep ^ExecReload= "$unit" | head -1)" = \
  "ExecReload=/usr/bin/scraperd check --config /etc/scraperd/jobs.yaml" ] ||
  { echo "the first ExecReload= is not scraperd check"; fail=1; }
has "ExecReload=/bin/kill -HUP \$MAINPID"
has "PrivateMounts=yes"
has "UMask=0027"
has "StateDirectoryMode=0750"
has "Group=scraperd"
exit $fail
