#!/usr/bin/env bash
# Issue 18's hostile clients against hfork and nginx, in one run, on
# loopback: floods of silent and slowloris connections from 127.0.0.1
# (re-opened every 10s) with probes from 127.0.0.2, slow readers, and the
# framing rows that tell servers apart.
#
#   examples/bench/hostile.sh
#   HFORK_BEFORE=/path/to/older/hfork examples/bench/hostile.sh   # a third column
#
# Knobs: CLASSES ("async noloop sync thread": noloop is async with
# event_loop = false), FLOODS ("3000 19000"), MODES ("silent
# slowloris"), FLOOD_FOR (20s), SLOW_N (20), SLOW_AT (12s:
# past two SEND_TIMEOUTs, hfork's bound for a reader that stopped),
# SEND_TIMEOUT (5s: write_timeout and nginx's send_timeout, shorter than
# their 60s defaults so the slow readers are counted in seconds), HFORK_BIN
# (a built hfork instead of building ./cmd/hfork), FRAMING=0 (no framing
# rows; SLOW_N=0 skips the slow readers), KEEP_TMP=1.
set -euo pipefail

CLASSES=${CLASSES:-async noloop sync thread}
FLOODS=${FLOODS:-3000 19000}
MODES=${MODES:-silent slowloris}
FLOOD_FOR=${FLOOD_FOR:-20s}
SLOW_N=${SLOW_N:-20}
SLOW_AT=${SLOW_AT:-12s}
SEND_TIMEOUT=${SEND_TIMEOUT:-5s}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hfork-hostile.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	[ "${KEEP_TMP:-}" = 1 ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT

(cd "$root" && go build -o "$tmp/hostile" ./examples/bench/hostile)
HFORK_BIN=${HFORK_BIN:-}
if [ -z "$HFORK_BIN" ]; then
	(cd "$root" && go build -o "$tmp/hfork" ./cmd/hfork)
	HFORK_BIN=$tmp/hfork
fi
mkdir -p "$tmp/www/static" "$tmp/logs"
head -c $((64 << 20)) /dev/zero >"$tmp/www/static/big.bin"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_hfork() { # name binary port class [write_timeout line]
	local dir=$tmp/$1
	mkdir -p "$dir/logs"
	local class="class = \"$4\""
	[ "$4" = noloop ] && class='class = "async"
  event_loop = false'
	cat >"$dir/server.hcl" <<HCL
pidfile = "hfork.pid"
log {
  level = "warn"
  file  = "logs/hfork.log"
}
reload { watch = false }
listener "hostile" {
  bind               = "127.0.0.1:$3"
  $class
  workers            = 2
  worker_connections = 1000
  ${5:-}
  route "/" {
    respond {
      body = "hello\n"
    }
  }
  route "/static/" {
    static { root = "$tmp/www/static" }
  }
}
HCL
	"$2" -f "$dir/server.hcl" 2>"$dir/logs/stderr" &
	pids+=($!)
}

start_nginx() { # port
	local dir=$tmp/nginx
	mkdir -p "$dir/logs"
	local user=""
	[ "$(id -u)" = 0 ] && user="user root;"
	cat >"$dir/nginx.conf" <<NGX
$user
worker_processes 2;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log crit;
worker_rlimit_nofile 20000;
events { worker_connections 1000; }
http {
    access_log off;
    sendfile on;
    send_timeout $SEND_TIMEOUT;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$1;
        large_client_header_buffers 4 8k;
        location / { return 200 "hello\n"; }
        location /static/ { root $tmp/www; }
    }
}
NGX
	"$NGINX" -p "$dir" -c "$dir/nginx.conf" &
	pids+=($!)
}

wait_port() {
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "nothing listens on $1" >&2
	exit 1
}

declare -A port
servers=()
for class in $CLASSES; do
	port[$class]=$(free_port)
	start_hfork "$class" "$HFORK_BIN" "${port[$class]}" "$class" "write_timeout = \"$SEND_TIMEOUT\""
	servers+=("$class")
	if [ -n "${HFORK_BEFORE:-}" ]; then
		port[before-$class]=$(free_port)
		# the older hfork with its own defaults (write_timeout was off)
		start_hfork "before-$class" "$HFORK_BEFORE" "${port[before-$class]}" "$class"
		servers+=("before-$class")
	fi
done
port[nginx]=$(free_port)
start_nginx "${port[nginx]}"
servers+=(nginx)
for s in "${servers[@]}"; do wait_port "${port[$s]}"; done

for s in "${servers[@]}"; do
	echo "== $s"
	for n in $FLOODS; do
		for mode in $MODES; do
			"$tmp/hostile" flood -addr "127.0.0.1:${port[$s]}" -n "$n" -mode "$mode" -for "$FLOOD_FOR"
		done
	done
	[ "$SLOW_N" = 0 ] || "$tmp/hostile" slowread -addr "127.0.0.1:${port[$s]}" -path /static/big.bin -n "$SLOW_N" -at "$SLOW_AT"
	[ "${FRAMING:-1}" = 0 ] || "$tmp/hostile" framing -addr "127.0.0.1:${port[$s]}"
done
