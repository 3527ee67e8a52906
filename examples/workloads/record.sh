#!/bin/sh
# Records one run of a shipped workload, for the profiles kept in profiles/ (`cargo xtask
# profiles` runs this several times per workload and generates from the union):
#
#   sudo CINCH=target/debug/cinch PORT=18080 examples/workloads/record.sh WORKLOAD DIR
#
# WORKLOAD is busybox-httpd, nginx, redis-server or python-http-server. The recordings go to DIR
# (created; one file per recorded command, named after it). Only the server is recorded: this
# script is the client, and its own syscalls (curl, redis-cli, the port checks) are not in the
# recording. Everything stays on 127.0.0.1:$PORT (default 18080); each step is bounded in time.
#
# A profile recorded from one run must hold for the next, so each run does the same things in
# the same order, whatever the timing: a fixed set of requests, each made once the server
# listens (a connection made before the server accepts waits in the listen backlog, so it is
# answered the same way), no polling of the server with requests, no sleeps the server could
# notice, and a stop the server handles the same way every time.
set -eu

# What to undo on the way out, also after a failure or when stopped from outside: the recorded
# server if it still runs (cinch then stops it and writes its recording), the container, the
# temporary directory.
server= container= tmp=
cleanup() {
    [ -z "$server" ] || kill "$server" 2>/dev/null || true
    [ -z "$container" ] || docker rm -f "$container" >/dev/null 2>&1 || true
    [ -z "$tmp" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' INT TERM

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cinch=${CINCH:-cinch}
case $cinch in
    */*) [ -x "$cinch" ] && cinch=$(cd "$(dirname "$cinch")" && pwd)/${cinch##*/} ;;
esac
command -v "$cinch" >/dev/null || {
    echo "record.sh: $cinch is not an executable: build cinch and set CINCH" >&2
    exit 2
}
port=${PORT:-18080}

fail() {
    echo "record.sh: $*" >&2
    exit 1
}

[ "$#" -eq 2 ] || fail "usage: record.sh busybox-httpd|nginx|redis-server|python-http-server DIR"
workload=$1
out=$2
mkdir -p "$out"
out=$(cd "$out" && pwd)

# wait_listening PORT: until 127.0.0.1:PORT listens (this network namespace), at most 10 s.
wait_listening() {
    hex=$(printf '0100007F:%04X' "$1")
    i=0
    until grep -q "$hex 00000000:0000 0A" /proc/self/net/tcp 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -lt 100 ] || fail "$workload: nothing listens on 127.0.0.1:$1 after 10 s"
        sleep 0.1
    done
}

# expect CODE URL: GET URL and check the HTTP status.
expect() {
    got=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$2" || true)
    [ "$got" = "$1" ] || fail "$workload: GET $2: expected $1, got $got"
    echo "$workload: GET $2 -> $got"
}

# finish PID WHAT: wait (at most 20 s) for a recorded server to exit; fail unless it exited 0.
finish() {
    # Without this script's traps: stopping the watchdog must not run the clean-up.
    (trap - EXIT INT TERM && sleep 20 && kill "$1" 2>/dev/null) >/dev/null 2>&1 &
    watchdog=$!
    status=0
    wait "$1" || status=$?
    server=
    kill "$watchdog" 2>/dev/null || true
    [ "$status" -eq 0 ] || fail "$workload: $2 exited with status $status"
}

# A fresh scratch directory for WORKLOAD in $tmp, at the same path on every machine and run:
# the paths a workload writes are evidence in its settings (filesystem), which must not change
# from run to run. Under /run, which only root can write, so the fixed name is safe.
scratch() {
    tmp=/run/cinch-workloads/$1
    rm -rf "$tmp"
    mkdir -p "$tmp"
}

# nginx (Debian's nginx-light) as a process: the master as root, two workers as www-data. A
# page, a 404, `nginx -s reload` (new workers, the old ones quit), the page again, `nginx -s
# quit`. The control commands are recorded too: they are part of running nginx.
nginx_run() {
    command -v nginx >/dev/null || fail "nginx is not installed (apt-get install nginx-light)"
    scratch nginx
    prefix=$tmp
    mkdir -p "$prefix/www" "$prefix/tmp"
    chmod 755 "$prefix" "$prefix/www"
    cp "$here/nginx/www/index.html" "$prefix/www/"
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|$port|g" \
        "$here/nginx/nginx.conf.in" >"$prefix/nginx.conf"
    set -- nginx -p "$prefix" -e "$prefix/error.log" -c "$prefix/nginx.conf"
    "$cinch" record -q -o "$out/server.json" -- "$@" &
    server=$!
    wait_listening "$port"
    expect 200 "http://127.0.0.1:$port/index.html"
    expect 404 "http://127.0.0.1:$port/missing"
    "$cinch" record -q -o "$out/reload.json" -- "$@" -s reload
    # The reload is done when the new workers are up: the master logs it after starting them.
    i=0
    until grep -q 'start worker processes' "$prefix/error.log" &&
        [ "$(grep -c 'start worker process ' "$prefix/error.log")" -ge 4 ]; do
        i=$((i + 1))
        [ "$i" -lt 100 ] || fail "nginx: the reload did not start new workers within 10 s"
        sleep 0.1
    done
    expect 200 "http://127.0.0.1:$port/index.html"
    "$cinch" record -q -o "$out/quit.json" -- "$@" -s quit
    finish "$server" "nginx"
}

# redis-server (Debian's) as a process, no persistence: a few commands with redis-cli, then
# `shutdown nosave`.
redis_run() {
    command -v redis-server >/dev/null ||
        fail "redis-server is not installed (apt-get install redis-server redis-tools)"
    scratch redis
    dir=$tmp
    # The working directory is where redis would write a dump: a private, empty one.
    (cd "$dir" && exec "$cinch" record -q -o "$out/redis-server.json" -- \
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --logfile "$dir/redis.log") &
    server=$!
    wait_listening "$port"
    cli() {
        got=$(redis-cli -p "$port" "$@") || fail "redis: redis-cli $* failed"
        echo "redis: $* -> $got"
    }
    cli set cinch:a 1
    cli get cinch:a
    cli incr cinch:a
    cli rpush cinch:list x y z
    cli lrange cinch:list 0 -1
    cli del cinch:a cinch:list
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    finish "$server" "redis-server"
}

# Python's http.server (Debian's /usr/bin/python3, not a shim) as a process: a page and a 404,
# then SIGINT, which it handles by closing its socket and exiting 0.
python_run() {
    [ -x /usr/bin/python3 ] || fail "/usr/bin/python3 is not installed (apt-get install python3)"
    # sh starts background jobs with SIGINT ignored, and the recorded command inherits that (as
    # it would without cinch): give both the default, so that SIGINT stops the server.
    env --default-signal=INT "$cinch" record -q -o "$out/http-server.json" -- \
        /usr/bin/python3 -m http.server --bind 127.0.0.1 \
        --directory "$here/python-http/www" "$port" >/dev/null &
    server=$!
    wait_listening "$port"
    expect 200 "http://127.0.0.1:$port/index.html"
    expect 404 "http://127.0.0.1:$port/missing"
    kill -INT "$server"
    finish "$server" "http.server"
}

# busybox httpd in a container (the test image, built here when missing), recorded from its
# seccomp install on under the permissive recording profile; examples/workloads/busybox-httpd/
# serve.sh is the container's entrypoint and makes its own requests.
busybox_image() {
    image=cinch-test/busybox:latest
    docker image inspect "$image" >/dev/null 2>&1 && return 0
    # As the test harness builds it (tests/src/docker.rs): Debian's static busybox, every applet
    # linked into /bin, a minimal /etc/passwd and /etc/group.
    [ -x /bin/busybox ] || fail "/bin/busybox is missing (apt-get install busybox-static)"
    tmp=$(mktemp -d /tmp/cinch-busybox.XXXXXX)
    rootfs=$tmp
    mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root" "$rootfs/proc" \
        "$rootfs/sys" "$rootfs/dev"
    chmod 1777 "$rootfs/tmp"
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
    tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -cf - . |
        docker import - "$image" >/dev/null
    docker image inspect "$image" >/dev/null 2>&1 || fail "docker import of $image failed"
    rm -rf "$rootfs"
    tmp=
}

httpd_run() {
    command -v docker >/dev/null || fail "docker is not installed (apt-get install docker.io)"
    busybox_image
    name=cinch-profile-httpd-$$
    container=$name
    tmp=$(mktemp -d /tmp/cinch-httpd.XXXXXX)
    recs=$tmp
    "$cinch" record -q --new-containers -o "$recs" -- \
        docker run --rm --pull never --network host --name "$name" \
        --security-opt "seccomp=$root/profiles/recording-profile.json" -e "PORT=$port" \
        -v "$here/busybox-httpd/www:/www:ro" -v "$here/busybox-httpd:/workload:ro" \
        cinch-test/busybox:latest sh /workload/serve.sh
    # Other containers may have started meanwhile (each has its own recording): keep ours.
    [ -f "$recs/$name.json" ] || fail "busybox-httpd: no recording for container $name"
    mv "$recs/$name.json" "$out/httpd.json"
}

case $workload in
    busybox-httpd) httpd_run ;;
    nginx) nginx_run ;;
    redis-server) redis_run ;;
    python-http-server) python_run ;;
    *) fail "unknown workload $workload (busybox-httpd, nginx, redis-server, python-http-server)" ;;
esac
