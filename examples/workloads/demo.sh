#!/bin/sh
# The full loop on the shipped workloads: record -> generate -> enforce -> verify.
#
#   sudo CINCH=target/debug/cinch examples/workloads/demo.sh [nginx] [python-http] [busybox-httpd]
#
# With no argument: nginx and python-http (processes, under `cinch run`), and busybox-httpd (a
# Docker container) when the test image cinch-test/busybox:latest exists (`cargo xtask test`
# builds it). Needs root, curl, and for each workload its program: nginx (Debian's nginx-light),
# python3 with iproute2 and util-linux (its server gets a network namespace of its own), docker.
# Everything stays on loopback; files go to $OUT (default: a new temporary directory).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cinch=${CINCH:-cinch}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"

say() { printf '\n== %s\n' "$*"; }
fail() { echo "demo: $*" >&2; exit 1; }

# wait_listening PID PORT: until 127.0.0.1:PORT listens in the network namespace of PID.
wait_listening() {
    hex=$(printf '0100007F:%04X' "$2")
    i=0
    until grep -q "$hex 00000000:0000 0A" "/proc/$1/net/tcp" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -lt 100 ] || fail "nothing listens on 127.0.0.1:$2"
        sleep 0.1
    done
}

# expect CODE URL [nsenter args...]: GET URL and check the HTTP status.
expect() {
    code=$1 url=$2
    shift 2
    got=$("$@" curl -s -o /dev/null --max-time 3 -w '%{http_code}' "$url" || true)
    [ "$got" = "$code" ] || fail "GET $url: expected $code, got $got"
    echo "GET $url -> $got"
}

# Runs nginx's session under `$1` (record | run | verify): the server in the background, a
# page, a 404, a reload and a graceful quit, each control command under the same mode.
nginx_session() {
    mode=$1 prefix=$out/nginx port=${NGINX_PORT:-18080}
    under() { # under NAME CMD...
        name=$1
        shift
        case $mode in
            record) "$cinch" record -q -o "$out/nginx-$name.json" -- "$@" ;;
            run) "$cinch" run --profile "$out/nginx.seccomp.json" --caps "$out/nginx.caps.json" -- "$@" ;;
            verify) "$cinch" verify -q --profile "$out/nginx.seccomp.json" --caps "$out/nginx.caps.json" \
                -o "$out/nginx-$name.verdict" -- "$@" ;;
        esac
    }
    nginx_args="-p $prefix -e $prefix/error.log -c $prefix/nginx.conf"
    # shellcheck disable=SC2086 # the prefix has no spaces (mktemp)
    under server nginx $nginx_args &
    server=$!
    wait_listening $$ "$port"
    sleep 0.5
    expect 200 "http://127.0.0.1:$port/index.html"
    expect 404 "http://127.0.0.1:$port/missing"
    # shellcheck disable=SC2086
    under reload nginx $nginx_args -s reload
    sleep 0.5
    expect 200 "http://127.0.0.1:$port/index.html"
    # shellcheck disable=SC2086
    under quit nginx $nginx_args -s quit
    wait "$server" || fail "nginx ($mode) exited with $?"
    if [ "$mode" = verify ]; then
        for v in server reload quit; do cat "$out/nginx-$v.verdict"; done
    fi
}

nginx_demo() {
    command -v nginx >/dev/null || fail "nginx is not installed (apt-get install nginx-light)"
    prefix=$out/nginx
    mkdir -p "$prefix/www" "$prefix/tmp"
    chmod 755 "$out" "$prefix" "$prefix/www"
    cp "$here/nginx/www/index.html" "$prefix/www/"
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@PORT@|${NGINX_PORT:-18080}|g" \
        "$here/nginx/nginx.conf.in" >"$prefix/nginx.conf"
    say "nginx: record the server, a reload and a quit"
    nginx_session record
    say "nginx: generate"
    "$cinch" generate -o "$out/nginx.seccomp.json" --caps-out "$out/nginx.caps.json" \
        "$out/nginx-server.json" "$out/nginx-reload.json" "$out/nginx-quit.json"
    say "nginx: enforce with cinch run (master as root, workers as www-data)"
    nginx_session run
    say "nginx: verify"
    nginx_session verify
}

# Python's http.server on port 80 of its own network namespace (so it needs NET_BIND_SERVICE).
python_session() {
    mode=$1
    set -- /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$here/python-http/www" 80
    case $mode in
        record) set -- "$cinch" record -q -o "$out/python-http.json" -- "$@" ;;
        run) set -- "$cinch" run --profile "$out/python-http.seccomp.json" \
            --caps "$out/python-http.caps.json" -- "$@" ;;
        verify) set -- "$cinch" verify -q --profile "$out/python-http.seccomp.json" \
            --caps "$out/python-http.caps.json" -o "$out/python-http.verdict" -- "$@" ;;
    esac
    unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh "$@" &
    server=$!
    wait_listening "$server" 80
    expect 200 http://127.0.0.1/index.html nsenter -t "$server" -n
    expect 404 http://127.0.0.1/missing nsenter -t "$server" -n
    # SIGTERM, not SIGINT: sh starts background jobs with SIGINT ignored, and `cinch run` keeps
    # dispositions as it finds them (as any exec wrapper does), so python would not see it.
    kill -TERM "$server"
    status=0
    wait "$server" || status=$?
    case $mode:$status in
        verify:0 | *:0 | *:143) ;;
        *) fail "http.server ($mode) exited with $status" ;;
    esac
    [ "$mode" != verify ] || cat "$out/python-http.verdict"
}

python_demo() {
    [ -x /usr/bin/python3 ] || fail "/usr/bin/python3 is not installed"
    say "python-http: record"
    python_session record
    say "python-http: generate"
    "$cinch" generate -o "$out/python-http.seccomp.json" --caps-out "$out/python-http.caps.json" \
        "$out/python-http.json"
    say "python-http: enforce with cinch run"
    python_session run
    say "python-http: verify"
    python_session verify
}

httpd_demo() {
    image=cinch-test/busybox:latest
    if ! docker image inspect "$image" >/dev/null 2>&1; then
        echo "busybox-httpd: skipped, no image $image (cargo xtask test builds it)"
        return 0
    fi
    port=${HTTPD_PORT:-18081}
    run_httpd() { # run_httpd SECURITY-OPTIONS...
        docker run --rm --pull never --network host "$@" -e "PORT=$port" \
            -v "$here/busybox-httpd/www:/www:ro" -v "$here/busybox-httpd:/workload:ro" \
            "$image" sh /workload/serve.sh
    }
    permissive="seccomp=$root/profiles/recording-profile.json"
    say "busybox-httpd: record the container"
    "$cinch" record -q --new-containers -o "$out/httpd" -- \
        docker run --rm --pull never --network host --name cinch-demo-httpd \
        --security-opt "$permissive" -e "PORT=$port" \
        -v "$here/busybox-httpd/www:/www:ro" -v "$here/busybox-httpd:/workload:ro" \
        "$image" sh /workload/serve.sh
    say "busybox-httpd: generate (with runc's baseline: runc's Go runtime is not deterministic)"
    "$cinch" generate --runtime-baseline runc -o "$out/httpd.seccomp.json" \
        --caps-out "$out/httpd.caps.json" "$out/httpd/cinch-demo-httpd.json"
    say "busybox-httpd: enforce with docker run --cap-drop ALL"
    caps=$(sed -n '/"cap_add"/,/]/p' "$out/httpd.caps.json" | grep -o '"[A-Z_]*"' | tr -d '"')
    set -- --security-opt "seccomp=$out/httpd.seccomp.json" --cap-drop ALL
    for c in $caps; do set -- "$@" --cap-add "$c"; done
    run_httpd "$@"
    say "busybox-httpd: verify"
    "$cinch" verify -q --profile "$out/httpd.seccomp.json" --caps "$out/httpd.caps.json" \
        -o "$out/httpd.verdict" --new-containers -- \
        docker run --rm --pull never --network host --security-opt "$permissive" \
        -e "PORT=$port" -v "$here/busybox-httpd/www:/www:ro" \
        -v "$here/busybox-httpd:/workload:ro" "$image" sh /workload/serve.sh
    cat "$out/httpd.verdict"
}

[ "$#" -gt 0 ] || set -- nginx python-http busybox-httpd
for workload in "$@"; do
    case $workload in
        nginx) nginx_demo ;;
        python-http) python_demo ;;
        busybox-httpd) httpd_demo ;;
        *) fail "unknown workload $workload (nginx, python-http, busybox-httpd)" ;;
    esac
done
say "files in $out"
