#!/usr/bin/env bash
# Drives the bash completion the way bash does (COMP_WORDS, COMP_CWORD, the function that
# `complete -p scraperd` names) and checks what it offers against the binary: every command
# of `scraperd --help`, options each command accepts, job names from the job file (through
# --config), and the --kind and --format values the binary accepts; then that the zsh
# completion parses and offers the same.
# Usage: completion_test.sh SCRAPERD_BINARY BASH_COMPLETION ZSH_COMPLETION
set -uo pipefail
bin=$1 bash_file=$2 zsh_file=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
# The binary under test is the `scraperd` the completion runs (COMP_WORDS[0]).
mkdir "$tmp/bin" && ln -s "$bin" "$tmp/bin/scraperd"
export PATH="$tmp/bin:$PATH"

source "$bash_file"
spec=$(complete -p scraperd) || { echo "no completion for scraperd"; exit 1; }
[[ $spec == "complete -F _scraperd scraperd" ]] || { echo "unexpected spec: $spec"; fail=1; }
func=${spec#complete -F }
func=${func%% *}

# complete WORDS...: what the completion offers for the last word (sorted, one a line).
complete_words() {
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE="$*"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  "$func" scraperd "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
  printf '%s\n' "${COMPREPLY[@]}" | sort
}
expect() {  # expect "WHAT" "EXPECTED (sorted lines)" "ACTUAL"
  if [[ $2 != "$3" ]]; then
    echo "FAIL: $1"
    echo "  expected: $(echo $2)"
    echo "  got:      $(echo $3)"
    fail=1
  fi
}
contains() {  # contains "WHAT" WORD "ACTUAL"
  grep -qxF -- "$2" <<<"$3" || { echo "FAIL: $1: '$2' not offered (got: $(echo $3))"; fail=1; }
}

# Commands: every one of --help is offered; prefixes narrow.
offered=$(complete_words scraperd "")
for c in $("$bin" --help | sed -n '/^commands:/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p'); do
  contains "command" "$c" "$offered"
done
expect "commands starting with r" "$(printf 'results\nresume\nrun\nruns')" "$(complete_words scraperd r)"
expect "options before a command" "$(printf -- '--help\n--version')" "$(complete_words scraperd --)"

# Options: each one offered for a command is one the binary takes for it.
for command in run check try results errors runs jobs; do
  for option in $(complete_words scraperd "$command" --); do
    case $option in
      --help) continue ;;
      --config) args=(--config "$tmp/none.yaml") ;;
      --db) args=(--db "$tmp/none.db" --config "$tmp/none.yaml") ;;
      --log-level) args=(--log-level info --config "$tmp/none.yaml") ;;
      --since) args=(--since 1h --config "$tmp/none.yaml") ;;
      --limit) args=(--limit 1 --config "$tmp/none.yaml") ;;
      --kind) args=(--kind dns --config "$tmp/none.yaml") ;;
      --format) args=(--format csv --config "$tmp/none.yaml") ;;
      --url) args=(--url http://127.0.0.1:9/ --config "$tmp/none.yaml") ;;
      --html) args=(--html /dev/null --config "$tmp/none.yaml") ;;
      *) args=("$option" --config "$tmp/none.yaml") ;;
    esac
    [ "$command" = try ] && args=(job "${args[@]}")
    err=$(timeout 10 "$bin" "$command" "${args[@]}" 2>&1 >/dev/null)
    if grep -q "unknown option" <<<"$err"; then
      echo "FAIL: completion offers $option for $command, which rejects it: $err"
      fail=1
    fi
  done
done
expect "errors options starting with --k" "--kind" "$(complete_words scraperd errors --k)"
contains "results offers --changed" --changed "$(complete_words scraperd results --)"

# --kind and --format values: exactly what the binary accepts.
kinds=$("$bin" errors --kind zzz 2>&1 | sed -n "s/.*is not a kind: //p" | tr -d ' ' | tr ',' '\n' | sort)
[ -n "$kinds" ] || { echo "FAIL: no kind list from scraperd errors --kind zzz"; fail=1; }
expect "--kind values" "$kinds" "$(complete_words scraperd errors --kind "")"
expect "--kind=t values" "$(printf 'timeout\ntls\ntoo_large')" "$(complete_words scraperd errors --kind=t)"
formats=$("$bin" results --format zzz 2>&1 | sed -n 's/.*--format must be //p' | head -1 |
          sed 's/ or /, /' | tr -d ' ' | tr ',' '\n' | sort)
[ -n "$formats" ] || { echo "FAIL: no format list from scraperd results --format zzz"; fail=1; }
expect "--format values" "$formats" "$(complete_words scraperd runs --format "")"

# Job names, from the file --config names (the binary's `check`), also for a file with errors.
cat > "$tmp/jobs.yaml" <<'YAML'
jobs:
  - name: prices
    url: http://127.0.0.1:9/p
    every: 15m
  - name: "price-history"
    url: http://127.0.0.1:9/h
    cron: "0 3 * * *"
  - name: nightly   # comment
    url: http://127.0.0.1:9/n
    every: 1d
YAML
expect "job names" "$(printf 'nightly\nprice-history\nprices')" \
  "$(complete_words scraperd results --config "$tmp/jobs.yaml" "")"
expect "job names starting with price" "$(printf 'price-history\nprices')" \
  "$(complete_words scraperd try --config="$tmp/jobs.yaml" price)"
expect "no second job name" "" "$(complete_words scraperd runs --config "$tmp/jobs.yaml" prices "")"
sed 's/every: 15m/every: 15 minutes/' "$tmp/jobs.yaml" > "$tmp/broken.yaml"
expect "job names of a file with errors" "$(printf 'nightly\nprice-history\nprices')" \
  "$(complete_words scraperd errors --config "$tmp/broken.yaml" "")"
expect "--log-level values" "$(printf 'debug\nerror\ninfo\ntrace\nwarn')" \
  "$(complete_words scraperd run --log-level "")"

# zsh: the completion function parses, and run with zsh's completion helpers replaced by
# functions that print what they are given, it offers the same commands, options, values and
# job names.
if ! command -v zsh >/dev/null; then
  echo "FAIL: zsh is not installed (scripts/install-deps)"
  exit 1
fi
zsh -n "$zsh_file" || { echo "FAIL: zsh -n $zsh_file"; fail=1; }
# zsh_complete WORDS...: what _scraperd hands _describe, _arguments or compadd for the last word.
zsh_complete() {
  zsh -f -c '
    _describe() { shift $(( $# - 1 )); print -rl -- ${(P)1} }
    _arguments() { print -rl -- "$@" }
    compadd() { shift; print -rl -- "$@" }
    _files() { }
    words=(scraperd) CURRENT=1
    source "$1"
    shift
    words=("$@") CURRENT=$#
    _scraperd' zsh "$zsh_file" "$@"
}
zsh_jobs() {  # zsh_jobs WORDS...: the job names _scraperd_jobs offers
  zsh -f -c '
    _describe() { shift $(( $# - 1 )); print -rl -- ${(P)1} }
    words=(scraperd) CURRENT=1
    source "$1"
    shift
    scraperd_bin=scraperd words=("$@") CURRENT=$#
    _scraperd_jobs' zsh "$zsh_file" "$@"
}
zsh_commands=$(zsh_complete scraperd "" | sed 's/:.*//' | sort)
for c in $("$bin" --help | sed -n '/^commands:/,/^$/p' | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p'); do
  contains "zsh command" "$c" "$zsh_commands"
done
expect "zsh: options before a command" "$(printf -- '--help\n--version')" \
  "$(zsh_complete scraperd -- | sort)"
for command in run check try results errors runs jobs; do
  bash_options=$(complete_words scraperd "$command" -- | tr '\n' ' ')
  zsh_options=$(zsh_complete scraperd "$command" -- | sed -n 's/^\(--[a-z-]*\).*/\1/p' | sort |
                tr '\n' ' ')
  expect "zsh options of $command (as bash)" "$bash_options" "$zsh_options"
done
zsh_kinds=$(zsh_complete scraperd errors --kind "" | sed -n 's/^--kind=.*:kind:(\(.*\))$/\1/p' |
            tr ' ' '\n' | sort)
expect "zsh --kind values" "$kinds" "$zsh_kinds"
zsh_formats=$(zsh_complete scraperd runs --format "" |
              sed -n 's/^--format=.*:format:(\(.*\))$/\1/p' | tr ' ' '\n' | sort)
expect "zsh --format values" "$formats" "$zsh_formats"
expect "zsh job names" "$(printf 'nightly\nprice-history\nprices')" \
  "$(zsh_jobs results --config "$tmp/jobs.yaml" "" | sort)"
expect "zsh job names of a file with errors" "$(printf 'nightly\nprice-history\nprices')" \
  "$(zsh_jobs errors --config="$tmp/broken.yaml" "" | sort)"
[ $fail -eq 0 ] && echo "completion ok"
exit $fail
