# bash completion for `batch` and `batchd`: `source scripts/completion.bash` (in ~/.bashrc, say).
# Verbs and options are read from the commands' own --help, once per verb and shell, so they never
# drift from the installed version.

_batchd_help_words() {
  # $1: the command, then its verb (if any); prints the verbs (top level) or options of that help.
  local key="$*"
  local cache="_batchd_cache_${key//[^A-Za-z0-9]/_}"
  if [[ -z ${!cache+set} ]]; then
    local help
    help=$("$@" --help 2>/dev/null)
    local words
    if [[ $# -eq 1 ]]; then
      # Verbs: the lines under "Commands:", first word each.
      words=$(printf '%s\n' "$help" | awk '/^Commands:/{on=1; next} on && /^  [a-z]/{sub(/\|.*/, "", $1); print $1} on && /^$/{on=0}')
      words+=$'\n'$(printf '%s\n' "$help" | grep -o -- '--[a-z][a-z-]*' | sort -u)
    else
      words=$(printf '%s\n' "$help" | grep -o -- ' -[a-zA-Z]\b\| --[a-z][a-z-]*' | tr -d ' ' | sort -u)
    fi
    printf -v "$cache" '%s' "$words"
  fi
  printf '%s\n' "${!cache}"
}

_batchd_complete() {
  local cmd=${COMP_WORDS[0]##*/} cur=${COMP_WORDS[COMP_CWORD]} verb="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    if [[ ${COMP_WORDS[i]} != -* ]]; then
      verb=${COMP_WORDS[i]}
      break
    fi
  done
  local words
  if [[ -z $verb ]]; then
    words=$(_batchd_help_words "$cmd")
  else
    words=$(_batchd_help_words "$cmd" "$verb")
  fi
  mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
  # File names where no word fits (-f FILE, --each FILE, job files).
  if [[ ${#COMPREPLY[@]} -eq 0 ]]; then mapfile -t COMPREPLY < <(compgen -f -- "$cur"); fi
}

complete -F _batchd_complete batch batchd
