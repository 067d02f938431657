#!/bin/sh
# dmux tmux plugin: prefix key bindings for dmux, and a watcher for this tmux server.
#
# TPM runs it through dmux.tmux at the repository root; by hand, from tmux.conf:
#     run-shell /path/to/dmux/contrib/dmux.tmux
# Options, set before it loads [default]:
#     @dmux-bin         the dmux command [dmux, on tmux's PATH]
#     @dmux-key-init    prefix key: new container in a pane beside [N]
#     @dmux-key-stop    prefix key: freeze the container of this pane [S]
#     @dmux-key-start   prefix key: menu of the containers with no pane [R]
#     @dmux-key-delete  prefix key: remove the container of this pane, after y/n [X]
#     @dmux-image       image the init key runs [dmux init's default]
#     @dmux-watch       start a watcher for this server if none runs: on or off [on]
#     @dmux-watch-log   the watcher's log [$XDG_STATE_HOME/dmux/watch-SERVER.log]
# A key option set to "none" binds nothing. Key presses run scripts/run, which shows
# dmux's error, if any, in the status line.
set -u

if [ -z "${TMUX:-}" ]; then
    echo "dmux.tmux: load it from tmux: run-shell $0" >&2
    exit 1
fi

here=$(cd "$(dirname "$0")" && pwd)
socket=${TMUX%,*,*}  # $TMUX is SOCKET,PID,SESSION and the socket path may hold commas

tm() {
    tmux -S "$socket" "$@"
}

option() {  # option NAME DEFAULT
    value=$(tm show-option -gqv "$1")
    printf '%s' "${value:-$2}"
}

sh_word() {  # one sh word, safe from run-shell's format expansion
    printf "'%s'" "$(printf '%s' "$1" | sed -e "s/'/'\\\\''/g" -e 's/#/##/g')"
}

tmux_string() {  # a tmux double-quoted string
    printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\$/\\$/g')"
}

bind() {  # bind ACTION DEFAULT-KEY TMUX-COMMAND
    key=$(option "@dmux-key-$1" "$2")

    if [ "$key" != none ]; then
        printf 'bind-key -T prefix %s %s\n' "$(tmux_string "$key")" "$3"
    fi
}

bindings() {
    runner=$(sh_word "$here/scripts/run")
    run="$runner #{q:socket_path} #{q:client_name}"
    image=$(option @dmux-image "")
    init_args=${image:+ -i $(sh_word "$image")}

    bind init N "run-shell -b $(tmux_string "$run init -t #{q:pane_id}$init_args")"
    bind stop S "run-shell -b $(tmux_string "$run stop -t #{q:pane_id}")"
    bind start R "run-shell -b $(tmux_string \
        "$run menu -t #{q:pane_id} -c #{q:client_name} --runner $runner")"
    bind delete X "if-shell -F '#{@dmux-container}' {
        confirm-before -p 'dmux: delete #{@dmux-name}? (y/n)' {
            run-shell -b $(tmux_string "$run delete -t #{q:pane_id}")
        }
    } {
        display-message 'dmux: this pane shows no container'
    }"
}

start_watcher() {
    bin=$(option @dmux-bin dmux)

    if ! command -v "$bin" >/dev/null 2>&1; then
        tm display-message "dmux: $(printf '%s' "$bin" | sed 's/#/##/g') not found: set @dmux-bin"
        return 1
    fi

    if "$bin" -S "$socket" doctor --only watcher --quiet >/dev/null 2>&1; then
        return 0
    fi

    state=${XDG_STATE_HOME:-${HOME:-/tmp}/.local/state}/dmux
    log=$(option @dmux-watch-log "$state/watch-$(basename "$socket").log")
    mkdir -p "$(dirname "$log")"
    nohup "$bin" -S "$socket" watch --log-format json >>"$log" 2>&1 </dev/null &
}

bindings | tm source-file -

if [ "$(option @dmux-watch on)" = on ]; then
    start_watcher
fi
