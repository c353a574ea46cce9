# zsh completion for `batch` and `batchd`: `source scripts/completion.zsh` (in ~/.zshrc, say).
# It runs the bash completion through zsh's bashcompinit, so both shells offer the same words.
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
source "${0:A:h}/completion.bash"
