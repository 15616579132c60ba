#!/usr/bin/env bash
# The generated man pages render without a warning at 80 columns, have the NAME line mandb
# indexes, and scraperd(1) describes every command `scraperd --help` lists.
# Usage: man_test.sh SCRAPERD_BINARY PAGE...
set -euo pipefail
bin=$1
shift
fail=0
for page in "$@"; do
  warnings=$(MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)
  if [ -n "$warnings" ]; then
    echo "$page: man --warnings:"
    echo "$warnings"
    fail=1
  fi
  whatis=$(lexgrog "$page" 2>&1) || { echo "$page: lexgrog finds no NAME line: $whatis"; fail=1; }
  echo "$whatis"
done
page1=$1
text=$(MANWIDTH=80 man -l "$page1" 2>/dev/null)
commands=$("$bin" --help | sed -n '/^commands:/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p')
[ -n "$commands" ] || { echo "no commands in scraperd --help"; exit 1; }
for c in $commands; do
  if ! grep -Eq "^       $c( |$)" <<<"$text"; then
    echo "scraperd(1) does not describe the command '$c' (in scraperd --help)"
    fail=1
  fi
done
exit $fail
