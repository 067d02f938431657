#!/bin/sh
# TPM runs the *.tmux files at a plugin's top: the plugin itself is contrib/dmux.tmux.
exec "$(cd "$(dirname "$0")" && pwd)/contrib/dmux.tmux" "$@"
