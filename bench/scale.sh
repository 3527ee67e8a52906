#!/bin/sh
# `cargo xtask bench`, scale: run under `cinch record --new-containers`.
#
#   scale.sh N READY_FILE COMMAND [ARG...]
#
# Starts N idle processes, each in a new mount namespace and forking once there (a fork in a
# mount namespace that is new since cinch started makes it a target), waits until all N have
# forked, then runs COMMAND in one more new mount namespace (forked, so it is a target too),
# stops the idle ones, and exits with COMMAND's status.
set -u
n=$1
ready=$2
shift 2
: > "$ready"
pids=""
i=0
while [ "$i" -lt "$n" ]; do
    # The trap stops the background sleep too, so nothing outlives the run.
    unshare -m sh -c 'trap "kill \$! 2>/dev/null; exit 0" TERM; sleep 600 & echo up >> "$1"; wait' idle "$ready" &
    pids="$pids $!"
    i=$((i + 1))
done
tries=0
while [ "$(wc -l < "$ready")" -lt "$n" ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 400 ]; then
        echo "scale.sh: only $(wc -l < "$ready") of $n idle targets started" >&2
        kill $pids 2>/dev/null
        exit 1
    fi
    sleep 0.05
done
unshare -m sh -c '"$@"; exit $?' measured "$@"
rc=$?
if [ -n "$pids" ]; then
    kill $pids 2>/dev/null
fi
wait
exit $rc
