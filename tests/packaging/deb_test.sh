#!/usr/bin/env bash
# The .deb: lintian reports no error and no warning; it and `cmake --install` put every file
# docs/operations.md lists where it says; the maintainer scripts do what a systemd service
# package does (deb-systemd-helper / deb-systemd-invoke, run here against recording stubs).
# Usage: deb_test.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 source=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# Build the package into a scratch directory (the build's own package stays as it was).
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log"; exit 1; }
deb=$(ls "$tmp"/pkg/scraperd_*.deb)
echo "package: $(basename "$deb") ($(stat -c %s "$deb") bytes)"

# lintian: nothing at error or warning level (info and pedantic are shown, not failed).
lintian --fail-on error,warning --display-info "$deb" >"$tmp/lintian.log" 2>&1
status=$?
cat "$tmp/lintian.log"
[ $status -eq 0 ] || { echo "FAIL: lintian exit $status"; fail=1; }

echo "lintian: $(grep -c '^[EW]:' "$tmp/lintian.log") errors and warnings"

# Every file docs/operations.md lists in its "Files" table, in the package and in a
# `cmake --install` to a DESTDIR.
mapfile -t files < <(sed -n '/^## Files/,/^## /p' "$source/docs/operations.md" |
                     sed -n 's/^| `\(\/[^`]*\)`.*/\1/p')
[ ${#files[@]} -ge 10 ] || { echo "FAIL: only ${#files[@]} paths in operations.md's Files"; fail=1; }
dpkg-deb -x "$deb" "$tmp/deb"
DESTDIR="$tmp/inst" cmake --install "$build" >/dev/null || { echo "FAIL: cmake --install"; fail=1; }
for f in "${files[@]}"; do
  [ -e "$tmp/deb$f" ] || { echo "FAIL: the .deb has no $f"; fail=1; }
  [ -e "$tmp/inst$f" ] || { echo "FAIL: cmake --install puts no $f"; fail=1; }
done
# ...and nothing the table does not list (directories aside).
while read -r f; do
  # grep reads all of it (not -q): an early exit would SIGPIPE printf, a failure under pipefail
  printf '%s\n' "${files[@]}" | grep -xF -- "$f" >/dev/null || { echo "FAIL: $f is not in operations.md"; fail=1; }
done < <(cd "$tmp/deb" && find . -type f -o -type l | sed 's/^\.//' | sort)
# The README's links resolve where it is installed.
doc=$tmp/deb/usr/share/doc/scraperd
links=$(grep -o '](\([^)#:]*\))' "$doc/README.md" | sed 's/^](\(.*\))$/\1/' | sort -u)
[ -n "$links" ] || { echo "FAIL: no relative links in the README"; fail=1; }
for link in $links; do
  [ -e "$doc/$link" ] || { echo "FAIL: README links $link, not installed beside it"; fail=1; }
done
# The shipped job file names the shipped schema for editors.
schema=$(sed -n 's/^# yaml-language-server: \$schema=//p' "$tmp/deb/etc/scraperd/jobs.yaml")
[ -n "$schema" ] && [ -s "$tmp/deb$schema" ] ||
  { echo "FAIL: /etc/scraperd/jobs.yaml names no schema of the package ('$schema')"; fail=1; }
echo "files: ${#files[@]} listed in operations.md, checked in the .deb and a cmake --install"
# The man pages are found by man under the installed tree.
MANPATH="$tmp/deb/usr/share/man" man -w scraperd.yaml >/dev/null 2>&1 ||
  { echo "FAIL: man -w scraperd.yaml"; fail=1; }

# Maintainer scripts, with deb-systemd-helper, deb-systemd-invoke and systemctl replaced by
# stubs that record their calls, and /run/systemd/system moved to a directory of the test.
dpkg-deb -e "$deb" "$tmp/control"
mkdir -p "$tmp/stub" "$tmp/run/systemd/system"
for tool in deb-systemd-helper deb-systemd-invoke systemctl systemd-sysusers; do
  cat > "$tmp/stub/$tool" <<STUB
#!/bin/sh
echo "$tool \$*" >> "$tmp/calls"
if [ "$tool \$1 \$2" = "deb-systemd-helper --quiet was-enabled" ]; then
  [ ! -e "$tmp/disabled" ]
fi
STUB
  chmod +x "$tmp/stub/$tool"
done
for s in postinst prerm postrm; do
  [ -x "$tmp/control/$s" ] || { echo "FAIL: no executable $s"; fail=1; continue; }
  sh -n "$tmp/control/$s" || { echo "FAIL: $s does not parse"; fail=1; }
  sed -e "s|/run/systemd/system|$tmp/run/systemd/system|g" \
      "$tmp/control/$s" > "$tmp/$s"
done
# script ARGS...: run one, return the calls it made (one a line).
script() {
  : > "$tmp/calls"
  PATH="$tmp/stub:$PATH" DPKG_ROOT="$tmp/root" sh "$tmp/$1" "${@:2}" ||
    { echo "FAIL: $* exited $?"; fail=1; }
  cat "$tmp/calls"
}
expect() {  # expect WHAT EXPECTED ACTUAL
  if [ "$2" != "$3" ]; then
    printf 'FAIL: %s\n  expected:\n%s\n  got:\n%s\n' "$1" "$2" "$3"
    fail=1
  fi
}
h=deb-systemd-helper i=deb-systemd-invoke u=scraperd.service
expect "install: user, enable and start" "$(printf '%s\n' "systemd-sysusers --root=$tmp/root scraperd.conf" "$h unmask $u" "$h --quiet was-enabled $u" \
  "$h enable $u" "systemctl --system daemon-reload" "$i start $u")" "$(script postinst configure)"
expect "upgrade: the old version is not stopped" "" "$(script prerm upgrade 0.1.0)"
expect "upgrade: try-restart, an enabled unit stays enabled" \
  "$(printf '%s\n' "systemd-sysusers --root=$tmp/root scraperd.conf" "$h unmask $u" "$h --quiet was-enabled $u" "$h enable $u" \
  "systemctl --system daemon-reload" "$i try-restart $u")" "$(script postinst configure 0.0.9)"
touch "$tmp/disabled"
expect "upgrade of a disabled unit: it stays disabled" \
  "$(printf '%s\n' "systemd-sysusers --root=$tmp/root scraperd.conf" "$h unmask $u" "$h --quiet was-enabled $u" "$h update-state $u" \
  "systemctl --system daemon-reload" "$i try-restart $u")" "$(script postinst configure 0.0.9)"
rm "$tmp/disabled"
mkdir -p "$tmp/root/var/lib/private/scraperd" && touch "$tmp/root/var/lib/private/scraperd/scraperd.db"
ln -s private/scraperd "$tmp/root/var/lib/scraperd"
expect "remove: stop" "$i stop $u" "$(script prerm remove)"
expect "remove: mask, keep the data" \
  "$(printf '%s\n' "systemctl --system daemon-reload" "$h mask $u")" "$(script postrm remove)"
[ -e "$tmp/root/var/lib/scraperd/scraperd.db" ] || { echo "FAIL: remove deleted the database"; fail=1; }
expect "purge: forget the unit" "$(printf '%s\n' "systemctl --system daemon-reload" "$h purge $u" \
  "$h unmask $u")" "$(script postrm purge)"
[ ! -e "$tmp/root/var/lib/scraperd" ] && [ ! -e "$tmp/root/var/lib/private/scraperd" ] ||
  { echo "FAIL: purge left /var/lib/scraperd"; fail=1; }
rmdir "$tmp/run/systemd/system"
expect "install without systemd running: user and enable only" "$(printf '%s\n' \
  "systemd-sysusers --root=$tmp/root scraperd.conf" "$h unmask $u" \
  "$h --quiet was-enabled $u" "$h enable $u")" "$(script postinst configure)"

[ $fail -eq 0 ] && echo "deb ok"
exit $fail
