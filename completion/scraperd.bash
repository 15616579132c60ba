# bash completion for scraperd(1): commands, options, job names (read from the job file),
# --kind and --format values. Installed to /usr/share/bash-completion/completions/scraperd.

# The job names of the job file given by --config on the command line (default
# /etc/scraperd/jobs.yaml): from `scraperd check`, or, for a file with errors, from its
# `name:` lines.
_scraperd_jobs() {
  local config=/etc/scraperd/jobs.yaml i
  for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
    case ${COMP_WORDS[i]} in
      --config) config=${COMP_WORDS[i + 1]} ;;
      --config=*) config=${COMP_WORDS[i]#--config=} ;;
    esac
  done
  config=${config/#\~/$HOME}
  [[ -r $config ]] || return
  local out
  if out=$("${COMP_WORDS[0]}" check --config "$config" 2>/dev/null); then
    printf '%s\n' "$out" | sed -e '$d' -e 's/: \(every\|cron\) .*$//'
  else
    sed -n -e 's/^[[:space:]-]*name:[[:space:]]*//p' "$config" |
      sed -e 's/[[:space:]]*#.*$//' -e "s/^[\"']\(.*\)[\"']\$/\1/"
  fi
}

_scraperd() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  local commands="run check try results errors runs jobs status pause resume migrate schema version help"
  local kinds="dns connect timeout tls http too_large read redirect_loop robots cancelled parse"
  local formats="table json ndjson csv"
  local levels="trace debug info warn error"
  COMPREPLY=()

  if ((COMP_CWORD == 1)); then
    if [[ $cur == -* ]]; then
      mapfile -t COMPREPLY < <(compgen -W "--help --version" -- "$cur")
    else
      mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
    fi
    return
  fi

  local command=${COMP_WORDS[1]}
  # --option=value
  if [[ $cur == --*=* ]]; then
    prev=${cur%%=*}
    cur=${cur#*=}
  fi
  case $prev in
    --config | --db | --html | --save | --from)
      compopt -o filenames 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      return
      ;;
    --kind) mapfile -t COMPREPLY < <(compgen -W "$kinds" -- "$cur"); return ;;
    --format) mapfile -t COMPREPLY < <(compgen -W "$formats" -- "$cur"); return ;;
    --log-level) mapfile -t COMPREPLY < <(compgen -W "$levels" -- "$cur"); return ;;
    --since | --limit | --url | --debug-loop | --to | --node-id) return ;;
  esac

  local options="--config --log-level --help"
  case $command in
    run) options+=" --db --once --debug-loop --node-id" ;;
    check) ;;
    try) options+=" --url --html --save" ;;
    results) options+=" --db --since --limit --format --changed" ;;
    errors) options+=" --db --since --limit --format --kind" ;;
    runs) options+=" --db --since --limit --format" ;;
    jobs) options+=" --db --limit --format" ;;
    status) options+=" --db --format" ;;
    pause | resume) options+=" --db" ;;
    migrate) options="--from --to --log-level --help" ;;
    schema) options="--help" ;;
    *) return ;;
  esac

  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$options" -- "$cur")
    return
  fi
  # The job name: the one positional argument of try, results, errors, runs, pause and resume.
  case $command in
    try | results | errors | runs | pause | resume)
      local i n=0
      for ((i = 2; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
          --*=* | --once | --changed | --debug-loop) ;;
          -*) ((i++)) ;;
          *) ((n++)) ;;
        esac
      done
      if ((n == 0)); then
        local IFS=$'\n'
        mapfile -t COMPREPLY < <(compgen -W "$(_scraperd_jobs)" -- "$cur")
      fi
      ;;
  esac
}

complete -F _scraperd scraperd
