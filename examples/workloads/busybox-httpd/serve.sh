#!/bin/sh
# cinch example workload: busybox httpd in a container, run with --network host. It serves /www
# (mounted read-only, so nothing is written to the container's overlay) on 127.0.0.1:$PORT,
# dropping to nobody after binding, answers two requests (a page, and a missing page for a 404)
# made with busybox nc, and exits by itself: 0 when both answers were right.
#
#   docker run --rm --pull never --network host -e PORT=18080 \
#       -v "$PWD/www:/www:ro" -v "$PWD:/workload:ro" IMAGE sh /workload/serve.sh
#
# Written so that every run makes the same syscalls, whatever the timing: a profile recorded
# from one run must hold for the next. So: nc, not wget (wget polls only when its read would
# block, which depends on how fast httpd answers); no reading of /proc/net/tcp to see whether
# httpd listens (with --network host its length, and so libc's reads and seeks, depend on the
# host's sockets); a sleep that always happens once; no `wait` for httpd (the shell suspends in
# rt_sigsuspend only if httpd is still alive when it waits).
set -u
: "${PORT:?set PORT to a free port on 127.0.0.1}"

httpd -f -u nobody:nogroup -p "127.0.0.1:$PORT" -h /www &
server=$!
# If a request is never answered (httpd denied a syscall it needs), stop httpd after 10 s: its
# listening socket closes, and the waiting client gets an error instead of hanging.
(sleep 10; kill "$server" 2>/dev/null) &

get() {
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" | nc 127.0.0.1 "$PORT"
}

# The first request also waits for httpd to listen: a refused connection is retried for ~5 s
# (nc then fails at once, with the same syscalls it makes when it succeeds).
status=0
tries=0
sleep 0.1
until page=$(get /index.html 2>/dev/null) && [ -n "$page" ]; do
    tries=$((tries + 1))
    if [ "$tries" -ge 50 ]; then
        echo "GET /index.html: expected 200, got no answer" >&2
        exit 1
    fi
    sleep 0.1
done
case "$page" in
    "HTTP/1.1 200 OK"*) echo "GET /index.html: ${page##*
}" ;;
    *) echo "GET /index.html: expected 200, got: $page" >&2; status=1 ;;
esac
missing=$(get /missing)
case "$missing" in
    "HTTP/1.1 404"*) echo "GET /missing: 404" ;;
    *) echo "GET /missing: expected 404, got: ${missing:-no answer}" >&2; status=1 ;;
esac

# This shell is the container's init: when it exits, the kernel ends httpd and the watchdog.
kill "$server"
exit "$status"
