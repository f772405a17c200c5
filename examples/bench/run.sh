#!/usr/bin/env bash
# hfork vs nginx on this machine, in one run, on loopback.
#
#   examples/bench/run.sh                         # every case, 2 rounds of 5s
#   DURATION=10s ROUNDS=3 examples/bench/run.sh
#   CASES="respond proxy" examples/bench/run.sh   # a subset
#   CONNECTIONS="50 1000 5000" THREADS=2 CASES="respond static4k" examples/bench/run.sh
#   CASES=python examples/bench/run.sh            # Python apps vs gunicorn (python.sh)
#
# Knobs: DURATION (5s), ROUNDS (2), CASES (respond hosts static4k static100k
# gzip100k proxy proxyunix proxyrr leastconn accesslog tls tlsstatic4k tls_handshake h2 h2static4k
# idle reload), CONNECTIONS (50; a list runs every case at each), THREADS (1),
# WARMUP (1s), RELOADS (10), RELOAD_DURATION (12s), H2_STREAMS (10),
# IDLE_PER_WORKER (10000), HFORK_BIN (a built hfork to use instead of
# building ./cmd/hfork), KEEP_TMP=1 (keep the temp dir with configs, logs
# and wrk output),
# EVENT_LOOP=false (hfork's plain listener is served by net/http, not
# the event loop), HEAP_PROFILE=1 (hfork's master and workers write heap profiles after each
# memory report taken right after a run, and the top entries are printed), METRICS=1 (the hfork config gets a metrics block, and the run ends with a
# scrape, to measure what serving metrics costs), HFORK_BASE_BIN (another
# built hfork, run as the server "base" with the config without METRICS,
# loaded in each round between nginx and hfork: two builds in one run).
#
# See examples/bench/README.md for what each case compares.
set -euo pipefail

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-2}
CASES=${CASES:-respond hosts static4k static100k gzip100k proxy proxyunix proxyrr leastconn accesslog tls tlsstatic4k tls_handshake h2 h2static4k idle reload}
CONNECTIONS=${CONNECTIONS:-50}
CONNECTIONS=${CONNECTIONS//,/ }
H2_STREAMS=${H2_STREAMS:-10}
IDLE_PER_WORKER=${IDLE_PER_WORKER:-10000}
THREADS=${THREADS:-1}
WARMUP=${WARMUP:-1s}
RELOADS=${RELOADS:-10}
RELOAD_DURATION=${RELOAD_DURATION:-12s}
EVENT_LOOP=${EVENT_LOOP:-true}
case $EVENT_LOOP in true | false) ;; *) echo "run.sh: EVENT_LOOP must be true or false, got '$EVENT_LOOP'" >&2; exit 2 ;; esac

ALL_CASES="respond hosts static4k static100k gzip100k proxy proxyunix proxyrr leastconn accesslog tls tlsstatic4k tls_handshake h2 h2static4k idle reload python"
CASES=${CASES//,/ }
for c in $CASES; do
	case " $ALL_CASES " in
	*" $c "*) ;;
	*) echo "run.sh: unknown case '$c' (known: $ALL_CASES)" >&2; exit 2 ;;
	esac
done
if ! [[ $ROUNDS =~ ^[1-9][0-9]*$ ]]; then
	echo "run.sh: ROUNDS must be a positive integer, got '$ROUNDS'" >&2
	exit 2
fi
for n in $CONNECTIONS; do
	[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: CONNECTIONS must be positive integers, got '$n'" >&2; exit 2; }
done
want() { case " $CASES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
# Cases that wrk or h2load time in the table; idle and reload have their
# own sections.
is_load_case() { case $1 in idle | reload) return 1 ;; *) return 0 ;; esac; }

# A thousand connections need a thousand fds in wrk and in each server's
# workers, which inherit this limit: take the hard limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
max_conn=0
for n in $CONNECTIONS; do [ "$n" -gt "$max_conn" ] && max_conn=$n; done
# Both servers get room for every connection in one worker (balance is not
# guaranteed during a burst), and the same listen backlog.
WORKER_CONNECTIONS=$((max_conn + 256 > 4096 ? max_conn + 256 : 4096))
BACKLOG=$(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo 4096)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

# python compares hfork's Python workers with gunicorn, not nginx: python.sh.
if want python; then
	[ "$(echo $CASES)" = python ] && exec "$here/python.sh"
	echo "run.sh: run CASES=python on its own (it compares with gunicorn, not nginx)" >&2
	exit 2
fi

# ---------------------------------------------------------------- tools
GO=${GO:-$(command -v go || true)}
WRK=${WRK:-$(command -v wrk || true)}
NGINX=${NGINX:-$(command -v nginx || true)}
[ -n "$NGINX" ] || { [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx; } || true
missing=()
[ -n "$GO" ] && [ -x "$GO" ] || missing+=("go: Go 1.26 or newer, from https://go.dev/dl/")
[ -n "$WRK" ] && [ -x "$WRK" ] || missing+=("wrk: apt-get install wrk")
[ -n "$NGINX" ] && [ -x "$NGINX" ] || missing+=("nginx: apt-get install nginx   (nginx-light is enough)")
H2LOAD=${H2LOAD:-$(command -v h2load || true)}
OPENSSL=${OPENSSL:-$(command -v openssl || true)}
if want h2 || want h2static4k; then [ -n "$H2LOAD" ] && [ -x "$H2LOAD" ] || missing+=("h2load (the h2 case): apt-get install nghttp2-client"); fi
if want tls || want tlsstatic4k || want tls_handshake || want h2 || want h2static4k; then
	[ -n "$OPENSSL" ] && [ -x "$OPENSSL" ] || missing+=("openssl (a certificate for the TLS cases): apt-get install openssl")
fi
if want idle; then command -v python3 >/dev/null || missing+=("python3 (the idle case's client)"); fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "run.sh: missing tools:" >&2
	printf '  %s\n' "${missing[@]}" >&2
	echo "On Debian/Ubuntu: apt-get install nginx wrk" >&2
	exit 1
fi

# ---------------------------------------------------------------- processes
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hfork-bench.XXXXXX")
pids=() # every long-lived process this script started, masters first

# children_of PID: the pids whose parent is PID. The files go through cat:
# mawk, Debian's awk, stops at the first it cannot open, and a process
# that exits between the glob and the read is such a file.
children_of() {
	cat /proc/[0-9]*/status 2>/dev/null |
		awk -v pp="$1" '/^Name:/ { pid = "" } /^Pid:/ { pid = $2 } /^PPid:/ { if ($2 == pp) print pid }' || true
}
cmdline_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | sed 's/ *$//' || true; }
rss_kb() { awk '/^VmRSS:/ { print $2; exit }' "/proc/$1/status" 2>/dev/null || true; }
# anon_kb PID: the part of VmRSS that is the process's own memory (heap,
# stacks); the rest is mapped files (the binary, libraries), shared by
# every process that maps them.
anon_kb() { awk '/^RssAnon:/ { print $2; exit }' "/proc/$1/status" 2>/dev/null || true; }
# file_kb PID: the mapped files' part of VmRSS (RssFile), counted in full
# in each process that maps a page; pss_kb PID: the proportional set size,
# each shared page divided among the processes that map it ("-" where
# smaps_rollup is not readable: an hfork worker is not dumpable, so only
# root reads it).
file_kb() { awk '/^RssFile:/ { print $2; exit }' "/proc/$1/status" 2>/dev/null || true; }
pss_kb() { awk '/^Pss:/ { print $2; f = 1; exit } END { if (!f) print "-" }' "/proc/$1/smaps_rollup" 2>/dev/null || echo -; }
alive() { kill -0 "$1" 2>/dev/null; }

# stop PID: TERM, wait up to 5s, then KILL it and whatever children it left.
stop() {
	local pid=$1 kids i
	alive "$pid" || return 0
	kids=$(children_of "$pid")
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 50); do alive "$pid" || break; sleep 0.1; done
	alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	for k in $kids; do
		for i in $(seq 20); do alive "$k" || break; sleep 0.1; done
		alive "$k" && kill -KILL "$k" 2>/dev/null || true
	done
	return 0
}

cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in "${pids[@]}"; do stop "$p"; done
	if [ -n "${KEEP_TMP:-}" ]; then
		echo "kept $tmp"
	else
		rm -rf "$tmp"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port VAR: set VAR to a loopback port nobody listens on and not
# handed out before, below the usual ephemeral range (32768-).
used_ports=" "
free_port() {
	local p i
	for i in $(seq 200); do
		p=$((20000 + RANDOM % 12000))
		case "$used_ports" in *" $p "*) continue ;; esac
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			used_ports+="$p "
			printf -v "$1" '%s' "$p"
			return 0
		fi
	done
	echo "run.sh: no free port found" >&2
	exit 1
}

# http_get PORT PATH [HOST [ACCEPT_ENCODING]]: the response (headers and
# body) to one HTTP/1.0 GET (HTTP/1.1 with Connection: close when it asks
# for a coding: nginx compresses nothing for HTTP/1.0), in $tmp/response;
# it fails when nothing answers.
http_get() {
	: >"$tmp/response"
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		if [ -n "${4:-}" ]; then
			printf 'GET %s HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: %s\r\nConnection: close\r\n\r\n' "$2" "${3:-127.0.0.1}" "$4" >&3
		else
			printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "${3:-127.0.0.1}" >&3
		fi
		timeout 5 cat <&3 >"$tmp/response"
	) 2>/dev/null
}
# tls_get PORT PATH: as http_get, over TLS.
tls_get() {
	: >"$tmp/response"
	printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" |
		timeout 5 "$OPENSSL" s_client -quiet -connect "127.0.0.1:$1" -servername localhost 2>/dev/null >"$tmp/response" || true
}
http_status() { http_get "$@" || true; awk 'NR == 1 { print $2 }' "$tmp/response"; }
http_body() { http_get "$@" || true; sed '1,/^\r$/d' "$tmp/response"; }

# wait_up PORT PATH PID: until PORT answers 200 on PATH (10s), or PID died.
wait_up() {
	local i
	for i in $(seq 100); do
		[ "$(http_status "$1" "$2")" = 200 ] && return 0
		alive "$3" || return 1
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------- machine
echo "== machine"
echo "cpus:    $(nproc)  ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null))"
echo "kernel:  $(uname -sr)"
echo "go:      $("$GO" version)"
echo "nginx:   $("$NGINX" -v 2>&1)"
echo "wrk:     $("$WRK" -v 2>&1 | head -n1 | sed 's/ Copyright.*//')"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
echo "wrk -t$THREADS -c{$CONNECTIONS} -d$DURATION --latency, $ROUNDS rounds (nginx then hfork each round, base between them with HFORK_BASE_BIN), warm-up $WARMUP"
echo "fds:     $(ulimit -n) per process; worker_connections $WORKER_CONNECTIONS and listen backlog $BACKLOG on both servers"
echo "cases:   $CASES"
echo "Both servers and wrk share these cores; other load on the machine shows up as noise."
awk -v n="$(nproc)" '$1 > n / 2 { printf "NOTE: load average %s on %d cpus before starting: something else is running; req/s will be noisy, the cpu us/req columns less so.\n", $1, n }' /proc/loadavg
echo

# ---------------------------------------------------------------- build
echo "== build"
mkdir -p "$tmp/bin"
if [ -n "${HFORK_BIN:-}" ]; then
	cp "$HFORK_BIN" "$tmp/bin/hfork"
	echo "using HFORK_BIN=$HFORK_BIN instead of building"
else
	# Static, as the README recommends for production: no C library
	# mapped into every worker.
	(cd "$root" && CGO_ENABLED=0 "$GO" build -o "$tmp/bin/hfork" ./cmd/hfork)
fi
echo "built $("$tmp/bin/hfork" -v 2>&1 | head -n1)"
echo

# ---------------------------------------------------------------- content
body="hello, world!" # nginx adds nothing: the config says "hello, world!\n"
mkdir -p "$tmp/docroot/static" "$tmp/nginx/logs" "$tmp/nginx/temp" "$tmp/upstream/logs" "$tmp/upstream/temp" "$tmp/hfork/logs"
# 3 random bytes make 4 base64 characters: exactly 4096 and 102400 bytes.
head -c 3072 /dev/urandom | base64 -w 0 >"$tmp/docroot/static/4k.txt"
head -c 76800 /dev/urandom | base64 -w 0 >"$tmp/docroot/static/100k.txt"
# gzip100k: 100 KiB of English text (this checkout's README, repeated),
# which compresses about as a web page does.
mkdir -p "$tmp/docroot/gz"
while [ "$(cat "$tmp/docroot/gz/"*.txt 2>/dev/null | wc -c)" -lt 102400 ]; do cat "$root/README.md" >>"$tmp/docroot/gz/text.tmp.txt"; done
head -c 102400 "$tmp/docroot/gz/text.tmp.txt" >"$tmp/docroot/gz/100k.txt"
rm "$tmp/docroot/gz/text.tmp.txt"
chmod 755 "$tmp/docroot/gz"
# As root, nginx would run its workers as "nobody": run them as the
# invoking user instead, and make the files readable all the same.
chmod 755 "$tmp" "$tmp/docroot" "$tmp/docroot/static"
chmod 644 "$tmp/docroot/static/"*.txt "$tmp/docroot/gz/"*.txt
nginx_user=""
[ "$(id -u)" = 0 ] && nginx_user="user $(id -un) $(id -gn);"
# temp_paths PREFIX: every temp path this nginx has a module for, inside
# PREFIX, so it never needs the packaged /var/lib/nginx.
nginx_v=$("$NGINX" -V 2>&1)
# -e PREFIX/logs/error.log where nginx has -e (1.19.5+), so it never opens
# the packaged error log before it reads its config.
up_e=() ngx_e=()
case "$("$NGINX" -h 2>&1 || true)" in
*"-e filename"*) up_e=(-e "$tmp/upstream/logs/error.log") ngx_e=(-e "$tmp/nginx/logs/error.log") ;;
esac
temp_paths() {
	local t="client_body_temp_path $1/temp/body; proxy_temp_path $1/temp/proxy;" m
	for m in fastcgi uwsgi scgi; do
		case "$nginx_v" in *"--without-http_${m}_module"*) ;; *) t+=" ${m}_temp_path $1/temp/$m;" ;; esac
	done
	echo "$t"
}

free_port NGX_PORT
free_port NGX_LOG_PORT
free_port HF_PORT
free_port HF_LOG_PORT
free_port UP_PORT
free_port UP_PORT2
UP_SOCK=$tmp/upstream/up.sock
free_port NGX_TLS_PORT
free_port HF_TLS_PORT
free_port BASE_PORT
free_port BASE_LOG_PORT
free_port BASE_TLS_PORT
servers="nginx hfork"
[ -n "${HFORK_BASE_BIN:-}" ] && servers="nginx base hfork"
free_port NGX_HOSTS_PORT
free_port HF_HOSTS_PORT
free_port BASE_HOSTS_PORT

# hosts: 20 virtual hosts of 10 routes each, on a port of their own; the
# requests go to the last host's last route, so neither server finds it
# first by chance.
HOSTS=20 HOST_ROUTES=10
hosts_host=h$HOSTS.bench.test
hosts_path=/r$HOST_ROUTES/x
nginx_hosts() {
	local h r
	for h in $(seq "$HOSTS"); do
		echo "server {"
		# The backlog is the socket's: set once, on the first server.
		if [ "$h" = 1 ]; then echo "    listen 127.0.0.1:$NGX_HOSTS_PORT backlog=$BACKLOG;"; else echo "    listen 127.0.0.1:$NGX_HOSTS_PORT;"; fi
		echo "    server_name h$h.bench.test;"
		for r in $(seq "$HOST_ROUTES"); do
			echo "    location /r$r/ { return 200 \"hello, world!\\n\"; }"
		done
		echo "}"
	done
}
hfork_hosts() {
	local h r
	echo "listener \"hosts\" {"
	echo "  bind      = \"127.0.0.1:$HF_HOSTS_PORT\""
	echo "  workers   = 2"
	echo "  keepalive = \"65s\""
	echo "  worker_connections = $WORKER_CONNECTIONS"
	for h in $(seq "$HOSTS"); do
		echo "  host \"h$h\" {"
		echo "    names = [\"h$h.bench.test\"]"
		for r in $(seq "$HOST_ROUTES"); do
			echo "    route \"/r$r/\" {"
			echo "      respond {"
			echo "        body    = \"hello, world!\\n\""
			echo "        headers = { \"Content-Type\" = \"text/plain\" }"
			echo "      }"
			echo "    }"
		done
		echo "  }"
	done
	echo "}"
}

# An ECDSA P-256 certificate both TLS servers serve. Made for every run:
# both configs have their TLS listener whatever CASES holds.
"$OPENSSL" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	-keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1

# nginx_conf PREFIX BODY: the nginx under test. BODY is the respond text
# without its newline; the reload test changes it.
nginx_conf() {
	sed -e "s|@PREFIX@|$1|g" -e "s|@BODY@|$2|g" -e "s|@USER@|$nginx_user|g" -e "s|@TEMP_PATHS@|$(temp_paths "$1")|g" \
		-e "s|@PORT@|$NGX_PORT|g" -e "s|@LOG_PORT@|$NGX_LOG_PORT|g" \
		-e "s|@UP_PORT@|$UP_PORT|g" -e "s|@UP_PORT2@|$UP_PORT2|g" -e "s|@UP_SOCK@|$UP_SOCK|g" \
		-e "s|@DOCROOT@|$tmp/docroot|g" \
		-e "s|@TLS_PORT@|$NGX_TLS_PORT|g" -e "s|@CERT@|$tmp/cert.pem|g" -e "s|@KEY@|$tmp/key.pem|g" \
		-e "s|@WORKER_CONNECTIONS@|$WORKER_CONNECTIONS|g" -e "s|@NOFILE@|$(ulimit -n)|g" -e "s|@BACKLOG@|$BACKLOG|g" \
		"$here/nginx.conf.in"
	nginx_hosts >"$1/hosts.conf"
}
free_port HF_METRICS_PORT
hfork_conf() {
	sed -e "s|@BODY@|$1|g" \
		-e "s|@PORT@|$HF_PORT|g" -e "s|@LOG_PORT@|$HF_LOG_PORT|g" \
		-e "s|@UP_PORT@|$UP_PORT|g" -e "s|@UP_PORT2@|$UP_PORT2|g" -e "s|@UP_SOCK@|$UP_SOCK|g" \
		-e "s|@DOCROOT@|$tmp/docroot|g" \
		-e "s|@TLS_PORT@|$HF_TLS_PORT|g" -e "s|@CERT@|$tmp/cert.pem|g" -e "s|@KEY@|$tmp/key.pem|g" \
		-e "s|@WORKER_CONNECTIONS@|$WORKER_CONNECTIONS|g" -e "s|@EVENT_LOOP@|$EVENT_LOOP|g" \
		"$here/hfork.hcl.in"
	echo
	hfork_hosts
	if [ -n "${METRICS:-}" ]; then
		printf '\nmetrics {\n  bind = "127.0.0.1:%s"\n}\n' "$HF_METRICS_PORT"
	fi
}

# ---------------------------------------------------------------- servers
# The upstream both proxies forward to: its own nginx, so reloading the
# nginx under test never touches it and its workers are not counted.
sed -e "s|@PREFIX@|$tmp/upstream|g" -e "s|@USER@|$nginx_user|g" -e "s|@UP_PORT@|$UP_PORT|g" \
	-e "s|@UP_PORT2@|$UP_PORT2|g" -e "s|@UP_SOCK@|$UP_SOCK|g" \
	-e "s|@TEMP_PATHS@|$(temp_paths "$tmp/upstream")|g" \
	"$here/upstream.conf.in" >"$tmp/upstream/nginx.conf"
nginx_conf "$tmp/nginx" "$body" >"$tmp/nginx/nginx.conf"
hfork_conf "$body" >"$tmp/hfork/hfork.hcl"
if [ -n "${HFORK_BASE_BIN:-}" ]; then
	mkdir -p "$tmp/base/logs"
	cp "$HFORK_BASE_BIN" "$tmp/bin/hfork-base"
	(HF_PORT=$BASE_PORT HF_LOG_PORT=$BASE_LOG_PORT HF_TLS_PORT=$BASE_TLS_PORT HF_HOSTS_PORT=$BASE_HOSTS_PORT METRICS="" &&
		hfork_conf "$body") >"$tmp/base/hfork.hcl"
fi

"$NGINX" -t -q -p "$tmp/upstream/" "${up_e[@]}" -c "$tmp/upstream/nginx.conf"
"$NGINX" -t -q -p "$tmp/nginx/" "${ngx_e[@]}" -c "$tmp/nginx/nginx.conf"
"$tmp/bin/hfork" -t -f "$tmp/hfork/hfork.hcl" >/dev/null 2>&1 || "$tmp/bin/hfork" -t -f "$tmp/hfork/hfork.hcl"

echo "== servers"
"$NGINX" -p "$tmp/upstream/" "${up_e[@]}" -c "$tmp/upstream/nginx.conf" \
	>"$tmp/upstream/logs/stdout.log" 2>&1 &
up_pid=$!
pids+=("$up_pid")
"$NGINX" -p "$tmp/nginx/" "${ngx_e[@]}" -c "$tmp/nginx/nginx.conf" \
	>"$tmp/nginx/logs/stdout.log" 2>&1 &
ngx_pid=$!
pids+=("$ngx_pid")
heap_env=()
if [ -n "${HEAP_PROFILE:-}" ]; then
	mkdir -p "$tmp/heap"
	# memprofilerate from the start, so that what package initialisation
	# allocated is in the profile too.
	heap_env=(HFORK_HEAP_PROFILE="$tmp/heap" GODEBUG=memprofilerate=16384)
fi
env "${heap_env[@]}" "$tmp/bin/hfork" -f "$tmp/hfork/hfork.hcl" >"$tmp/hfork/logs/stdout.log" 2>&1 &
hf_pid=$!
pids+=("$hf_pid")
base_pid=""
if [ -n "${HFORK_BASE_BIN:-}" ]; then
	"$tmp/bin/hfork-base" -f "$tmp/base/hfork.hcl" >"$tmp/base/logs/stdout.log" 2>&1 &
	base_pid=$!
	pids+=("$base_pid")
fi

fail_start() {
	echo "run.sh: $1 did not come up; its log:" >&2
	tail -n 30 "$2" >&2 || true
	exit 1
}
wait_up "$UP_PORT" / "$up_pid" || fail_start "upstream nginx" "$tmp/upstream/logs/error.log"
wait_up "$NGX_PORT" / "$ngx_pid" || fail_start nginx "$tmp/nginx/logs/error.log"
wait_up "$HF_PORT" / "$hf_pid" || fail_start hfork "$tmp/hfork/logs/hfork.log"
wait_up "$HF_LOG_PORT" / "$hf_pid" || fail_start hfork "$tmp/hfork/logs/hfork.log"
for i in $(seq 100); do
	[ "$(http_status "$HF_HOSTS_PORT" "$hosts_path" "$hosts_host")" = 200 ] && break
	alive "$hf_pid" || break
	sleep 0.1
done
if [ -n "$base_pid" ]; then
	wait_up "$BASE_PORT" / "$base_pid" || fail_start "hfork (base)" "$tmp/base/logs/hfork.log"
	for i in $(seq 100); do
		[ "$(http_status "$BASE_HOSTS_PORT" "$hosts_path" "$hosts_host")" = 200 ] && break
		alive "$base_pid" || break
		sleep 0.1
	done
	echo "base hfork ($HFORK_BASE_BIN) pid $base_pid on 127.0.0.1:$BASE_PORT (access log on :$BASE_LOG_PORT)"
fi
echo "upstream nginx pid $up_pid on 127.0.0.1:$UP_PORT"
echo "nginx pid $ngx_pid on 127.0.0.1:$NGX_PORT (access log on :$NGX_LOG_PORT)"
echo "hfork pid $hf_pid on 127.0.0.1:$HF_PORT (access log on :$HF_LOG_PORT)"
echo "TLS (tls, tlsstatic4k, tls_handshake, h2, h2static4k): nginx on :$NGX_TLS_PORT, hfork on :$HF_TLS_PORT"

# The cases: name, path, listener port per server, what a response must be.
case_path() {
	case $1 in
	respond | accesslog | tls | tls_handshake | h2) echo / ;;
	static4k | tlsstatic4k | h2static4k) echo /static/4k.txt ;;
	static100k) echo /static/100k.txt ;;
	gzip100k) echo /gz/100k.txt ;;
	hosts) echo "$hosts_path" ;;
	proxy) echo /proxy/ ;;
	proxyunix) echo /proxyunix/ ;;
	proxyrr) echo /proxyrr/ ;;
	leastconn) echo /leastconn/ ;;
	esac
}
case_host() {
	case $1 in
	hosts) echo "$hosts_host" ;;
	*) echo 127.0.0.1 ;;
	esac
}
case_ae() { [ "$1" = gzip100k ] && echo gzip || true; }
case_port() { # CASE SERVER
	case $1/$2 in
	accesslog/nginx) echo "$NGX_LOG_PORT" ;;
	accesslog/hfork) echo "$HF_LOG_PORT" ;;
	accesslog/base) echo "$BASE_LOG_PORT" ;;
	tls*/nginx | h2*/nginx) echo "$NGX_TLS_PORT" ;;
	tls*/hfork | h2*/hfork) echo "$HF_TLS_PORT" ;;
	tls*/base | h2*/base) echo "$BASE_TLS_PORT" ;;
	hosts/nginx) echo "$NGX_HOSTS_PORT" ;;
	hosts/base) echo "$BASE_HOSTS_PORT" ;;
	hosts/hfork) echo "$HF_HOSTS_PORT" ;;
	*/nginx) echo "$NGX_PORT" ;;
	*/base) echo "$BASE_PORT" ;;
	*/hfork) echo "$HF_PORT" ;;
	esac
}
case_bytes() {
	case $1 in
	static4k | tlsstatic4k | h2static4k) echo 4096 ;;
	static100k) echo 102400 ;;
	*) echo 14 ;;
	esac
}

# Check both servers give the same answer before timing anything.
for c in $CASES; do
	is_load_case "$c" || continue
	for s in $servers; do
		port=$(case_port "$c" "$s")
		path=$(case_path "$c")
		case $c in
		tls* | h2*)
			tls_get "$port" "$path"
			st=$(awk 'NR == 1 { print $2 }' "$tmp/response")
			n=$(sed '1,/^\r$/d' "$tmp/response" | wc -c)
			;;
		*)
			host=$(case_host "$c")
			ae=$(case_ae "$c")
			st=$(http_status "$port" "$path" "$host" "$ae")
			n=$(http_body "$port" "$path" "$host" "$ae" | wc -c)
			if [ -n "$ae" ]; then
				# The compressed length is each server's own: check the coding.
				if [ "$st" != 200 ] || ! grep -qai "^content-encoding: $ae" "$tmp/response"; then
					echo "run.sh: $s $c: GET $path with Accept-Encoding: $ae gave status '$st' without Content-Encoding: $ae" >&2
					head -c 600 "$tmp/response" >&2
					exit 1
				fi
				echo "$s $c: $(grep -ai '^content-encoding' "$tmp/response" | tr -d '\r'), $n bytes on the wire (chunk framing included)"
				continue
			fi
			;;
		esac
		if [ "$st" != 200 ] || [ "$n" != "$(case_bytes "$c")" ]; then
			echo "run.sh: $s $c: GET $path gave status '$st' and $n body bytes, want 200 and $(case_bytes "$c")" >&2
			head -c 2000 "$tmp/response" >&2
			exit 1
		fi
	done
done
echo "every case answers 200 with the same body length on both servers"
echo

# ---------------------------------------------------------------- load
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) n /= 1000
		else if (v ~ /ms$/) n = n
		else if (v ~ /s$/) n *= 1000
		else if (v ~ /m$/) n *= 60000
		printf "%.2f", n }'
}
# parse_wrk FILE: "rps p50ms p99ms transfer non2xx connect read write timeout"
parse_wrk() {
	local f=$1 rps p50 p99 xfer non2xx se
	rps=$(awk '/^Requests\/sec:/ { print $2 }' "$f")
	p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$f")")
	p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$f")")
	xfer=$(awk '/^Transfer\/sec:/ { print $2 }' "$f")
	non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$f")
	se=$(awk '/Socket errors:/ { gsub(",", ""); print $4, $6, $8, $10 }' "$f")
	echo "${rps:-0} $p50 $p99 ${xfer:-?} ${non2xx:-0} ${se:-0 0 0 0}"
}

# CPU time of the workers serving a case, from /proc/PID/stat: a measure
# of cost per request that other load on the machine disturbs less than
# req/s does.
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
workers_of() { # SERVER CASE
	local master pat k
	if [ "$1" = nginx ]; then
		master=$ngx_pid pat="nginx: worker process"
	else
		master=$hf_pid pat="hfork: worker bench"
		[ "$1" = base ] && master=$base_pid
		case $2 in
		accesslog) pat="hfork: worker logged" ;;
		hosts) pat="hfork: worker hosts" ;;
		tls* | h2*) pat="hfork: worker tls" ;;
		esac
	fi
	for k in $(children_of "$master"); do
		[ "$(cmdline_of "$k")" = "$pat" ] && echo "$k"
	done
	return 0
}
ticks_of() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }
now_ns() { date +%s%N; }

# ---------------------------------------------------------------- memory
# report_rss LABEL MASTER PATTERN: VmRSS of MASTER's children whose command
# line matches PATTERN (grouped by command line), and of the master; each
# with its anonymous part (RssAnon: what is not the binary's and the
# libraries' pages), its mapped files' part (RssFile) and its Pss.
report_rss() {
	local label=$1 master=$2 pat=$3 k name kb
	echo "$label master pid $master: $(rss_kb "$master") kB (anon $(anon_kb "$master"), file $(file_kb "$master"), pss $(pss_kb "$master") kB)"
	for k in $(children_of "$master"); do
		name=$(cmdline_of "$k")
		[[ $name == $pat ]] || continue
		kb=$(rss_kb "$k")
		[ -n "$kb" ] && printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$k" "$kb" "$(anon_kb "$k")" "$(file_kb "$k")" "$(pss_kb "$k")"
	done | sort | awk -F'\t' -v label="$label" '
		{ sum[$1] += $3; anon[$1] += $4; file[$1] += $5; pss[$1] += $6; cnt[$1]++; list[$1] = list[$1] sprintf("  pid %s %d kB (anon %d, file %d, pss %s)", $2, $3, $4, $5, $6) }
		END {
			for (n in sum) printf "%s %-24s %d workers, sum %6d kB (%.1f MB, anon %.1f MB, file %.1f MB, pss %.1f MB):%s\n", label, "\"" n "\"", cnt[n], sum[n], sum[n] / 1024, anon[n] / 1024, file[n] / 1024, pss[n] / 1024, list[n]
		}'
}
# worker_pids: every worker of the three servers under test (nginx's,
# base's, hfork's), for settle_wait.
worker_pids() {
	local m k
	for m in "$ngx_pid" $base_pid "$hf_pid"; do
		for k in $(children_of "$m"); do
			case $(cmdline_of "$k") in "nginx: worker process"* | "hfork: worker "*) echo "$k" ;; esac
		done
	done
}
# settle_wait PID...: waits until the processes' memory has settled after
# a run, and prints how long that took: until no PID's VmRSS moved by
# more than 128 kB between two looks a second apart, the first look 2 s
# after the call (an older hfork's memtrim trims up to 2 s after a burst:
# a look to see allocation stop, then a quiet second), at most 10 s.
# nginx's workers do not change; hfork's give back their free heap and
# the executable's pages a burst mapped (memtrim), and fault some of
# those back as they run on.
SETTLE_MOVE_KB=128 SETTLE_MAX_S=10
settle_wait() {
	local t=2 prev now k
	sleep 2
	prev=$(for k in "$@"; do rss_kb "$k"; done)
	while [ "$t" -lt "$SETTLE_MAX_S" ]; do
		sleep 1
		t=$((t + 1))
		now=$(for k in "$@"; do rss_kb "$k"; done)
		if paste <(echo "$prev") <(echo "$now") | awk -v mv="$SETTLE_MOVE_KB" '{ d = $2 - $1; if (d < 0) d = -d; if (d > mv) bad = 1 } END { exit bad }'; then
			echo "settled in ${t}s: no worker's VmRSS moved more than $SETTLE_MOVE_KB kB in the last second"
			return 0
		fi
		prev=$now
	done
	echo "NOT settled in ${SETTLE_MAX_S}s: a worker's VmRSS still moved more than $SETTLE_MOVE_KB kB in the last second"
}
# rss_reports WHAT: the workers' memory WHAT (after the N-connection
# runs, after load), twice: right after the last run, and settled.
# With HEAP_PROFILE=1 the profiles (a collection in every hfork process)
# come after the first report, so the settled one follows a collection.
rss_reports() {
	local before="nginx's ended one run before"
	[ -n "$base_pid" ] && before="base's and nginx's ended one and two runs before"
	echo "-- worker RSS $1, right after the last run (hfork's was the last run; $before)"
	report_rss nginx "$ngx_pid" "nginx: worker process*"
	[ -n "$base_pid" ] && report_rss base "$base_pid" "hfork: worker *"
	report_rss hfork "$hf_pid" "hfork: worker *"
	heap_profiles "$1, right after the last run"
	# shellcheck disable=SC2046 # one pid a word
	echo "-- worker RSS $1, settled ($(settle_wait $(worker_pids)))"
	report_rss nginx "$ngx_pid" "nginx: worker process*"
	[ -n "$base_pid" ] && report_rss base "$base_pid" "hfork: worker *"
	report_rss hfork "$hf_pid" "hfork: worker *"
}
# heap_profiles WHEN: with HEAP_PROFILE=1, USR1 makes hfork's master and
# workers write heap profiles (HFORK_HEAP_PROFILE); the top in-use
# entries of the master's and of one "bench" worker's are printed.
heap_profiles() {
	[ -n "${HEAP_PROFILE:-}" ] || return 0
	local want i
	want=$(($(grep -c 'heap profile written' "$tmp/hfork/logs/hfork.log" 2>/dev/null || true) + 1 + $(children_of "$hf_pid" | wc -l)))
	kill -USR1 "$hf_pid"
	for i in $(seq 100); do
		[ "$(grep -c 'heap profile written' "$tmp/hfork/logs/hfork.log" 2>/dev/null || true)" -ge "$want" ] && break
		sleep 0.1
	done
	local m w
	m=$(ls -t "$tmp/heap"/heap-master-*.pprof 2>/dev/null | head -n1)
	w=$(ls -t "$tmp/heap"/heap-bench-*.pprof 2>/dev/null | head -n1)
	for f in $m $w; do
		echo "-- heap in use $1: $(basename "$f")"
		"$GO" tool pprof -top -nodecount=12 -sample_index=inuse_space "$f" 2>/dev/null | sed -n '/^Showing\|flat%/,$p' | head -n 15
	done
}
# parse_h2load FILE: parse_wrk's fields from h2load's output. h2load gives
# no percentiles: p50 is its mean request time, p99 its max.
parse_h2load() {
	awk '
	/^finished in/ { rps = $4 }
	/^requests:/ { ok = $8; failed = $10; errored = $12; timeout = $14 }
	/^status codes:/ { non2xx = $5 + $7 + $9 }
	/^time for request:/ { mx = $5; mean = $6 }
	/^traffic:/ { xfer = $2 }
	function ms(v) { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; return n }
	END { printf "%s %.2f %.2f %s %d 0 %d 0 %d\n", rps + 0, ms(mean), ms(mx), xfer, non2xx, failed + errored, timeout }' "$1"
}

# client_of CASE CONNECTIONS: the load client, wrk or h2load. wrk
# retries every handshake in flight each time round its event loop (it
# waits for them as writable), so past a thousand new TLS connections at
# once its own handshakes take the run: above 1000, tls and tlsstatic4k
# are h2load's HTTP/1.1 (--h1, one request at a time per connection, as
# wrk).
client_of() {
	case $1 in
	h2 | h2static4k) echo h2load ;;
	tls | tlsstatic4k) if [ "$2" -gt 1000 ]; then echo h2load; else echo wrk; fi ;;
	*) echo wrk ;;
	esac
}
# warmup_of CASE CONNECTIONS: seconds of h2load's own warm-up
# (--warm-up-time) before its measured run, 0 for wrk: the connections
# open and make their handshakes in it, and stay open for the measured
# run. A second per 400 connections (a one-thread client on this kind of
# machine made about 1000 handshakes a second against either server),
# and no less than WARMUP.
warmup_of() {
	[ "$(client_of "$1" "$2")" = h2load ] || { echo 0; return; }
	local w=$((($2 + 399) / 400)) base
	base=$(($(to_ms "$WARMUP" | cut -d. -f1) / 1000))
	[ "$w" -ge "$base" ] || w=$base
	[ "$w" -gt 0 ] || w=1
	echo "$w"
}
# load CASE SERVER CONNECTIONS DURATION OUT: one timed run of the case's
# client against SERVER; OUT gets the client's output.
load() {
	local c=$1 s=$2 n=$3 d=$4 out=$5 port path
	port=$(case_port "$c" "$s")
	path=$(case_path "$c")
	if [ "$(client_of "$c" "$n")" = h2load ]; then
		# h2load wants a whole number of seconds, and waits for every
		# client it could not connect: timeout bounds it.
		local secs=$(($(to_ms "$d" | cut -d. -f1) / 1000)) w m=$H2_STREAMS h1=()
		[ "$secs" -gt 0 ] || secs=1
		w=$(warmup_of "$c" "$n")
		case $c in tls*) m=1 h1=(--h1) ;; esac
		timeout "$((secs + w + 30))" "$H2LOAD" "${h1[@]}" -c"$n" -m"$m" -t"$THREADS" --warm-up-time="$w" -D"$secs" \
			"https://127.0.0.1:$port$path" >"$out" 2>&1
		return
	fi
	case $c in
	tls_handshake)
		"$WRK" -t"$THREADS" -c"$n" -d"$d" --latency -H "Connection: close" "https://127.0.0.1:$port$path" >"$out" 2>&1
		;;
	tls | tlsstatic4k)
		"$WRK" -t"$THREADS" -c"$n" -d"$d" --latency "https://127.0.0.1:$port$path" >"$out" 2>&1
		;;
	*)
		local hdrs=(-H "Host: $(case_host "$c")")
		[ -n "$(case_ae "$c")" ] && hdrs+=(-H "Accept-Encoding: $(case_ae "$c")")
		"$WRK" -t"$THREADS" -c"$n" -d"$d" --latency "${hdrs[@]}" "http://127.0.0.1:$port$path" >"$out" 2>&1
		;;
	esac
}
requests_of() { # CASE CONNECTIONS OUT: how many requests the measured run completed
	case $(client_of "$1" "$2") in
	h2load) awk '/^requests:/ { print $8 }' "$3" ;;
	*) awk '/requests in/ { print $1 }' "$3" ;;
	esac
}

# Every case at every concurrency: labels are "case" for one concurrency,
# "case@N" for a sweep.
n_conns=$(echo "$CONNECTIONS" | wc -w)
label_of() { if [ "$n_conns" -gt 1 ]; then echo "$1@$2"; else echo "$1"; fi; }
order=""
results=$tmp/results.txt
: >"$results"
for conn in $CONNECTIONS; do
	for c in $CASES; do
		is_load_case "$c" || continue
		label=$(label_of "$c" "$conn")
		order+="$label "
		path=$(case_path "$c")
		echo "== $label: GET $path (Host: $(case_host "$c")$([ -n "$(case_ae "$c")" ] && echo ", Accept-Encoding: $(case_ae "$c")")), $conn connections, $(client_of "$c" "$conn")$([ "$(warmup_of "$c" "$conn")" -gt 0 ] && echo " after a $(warmup_of "$c" "$conn")s warm-up")"
		# h2load warms up inside its measured run (warmup_of).
		if [ "$(client_of "$c" "$conn")" = wrk ]; then
			for s in $servers; do
				load "$c" "$s" "$conn" "$WARMUP" /dev/null || true
			done
		fi
		wu=$(warmup_of "$c" "$conn")
		for r in $(seq "$ROUNDS"); do
			for s in $servers; do
				out=$tmp/load.$label.$s.$r.txt
				wk=$(workers_of "$s" "$c")
				# A client that fails (h2load gives up on clients it could not
				# connect, wrk on a server that never answered) is reported,
				# and its row counts what it did; the other cases still run.
				load "$c" "$s" "$conn" "$DURATION" "$out" &
				lpid=$!
				pids+=("$lpid")
				# The CPU counted is the measured run's, after h2load's warm-up.
				[ "$wu" -gt 0 ] && sleep "$wu"
				before=$(for k in $wk; do ticks_of "$k"; done)
				t0=$(now_ns)
				wait "$lpid" || {
					echo "  run.sh: $s $label: the load client exited with status $?; its last lines:" >&2
					grep -v -e '^progress:' -e 'clients for thread' -e '^spawning' "$out" | tail -n 4 | sed 's/^/    /' >&2
				}
				unset 'pids[-1]' # ended: its pid may be another process's by the cleanup
				t1=$(now_ns)
				after=$(for k in $wk; do ticks_of "$k"; done)
				if [ "$(client_of "$c" "$conn")" = h2load ]; then
					read -r rps p50 p99 xfer non2xx sc sr sw st < <(parse_h2load "$out")
				else
					read -r rps p50 p99 xfer non2xx sc sr sw st < <(parse_wrk "$out")
				fi
				nreq=$(requests_of "$c" "$conn" "$out")
				# cpu: microseconds of worker CPU per request; split: each
				# worker's CPU in % of one core, busiest first.
				read -r cpu split < <(paste <(echo "$before") <(echo "$after") | awk -v tck="$CLK_TCK" -v ns=$((t1 - t0)) -v n="${nreq:-0}" '
					{ d = $2 - $1; t += d; sp[NR] = d / tck / (ns / 1e9) * 100 }
					END {
						m = NR; for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (sp[j] > sp[i]) { x = sp[i]; sp[i] = sp[j]; sp[j] = x }
						for (i = 1; i <= m; i++) o = o (i > 1 ? "+" : "") sprintf("%.0f", sp[i])
						printf "%.1f %s\n", n ? t / tck * 1e6 / n : 0, o == "" ? "-" : o }')
				echo "$label $s $r $rps $p50 $p99 $xfer $non2xx $sc $sr $sw $st $cpu $split" >>"$results"
				printf '  round %d  %-5s %10s req/s  p50 %7s ms  p99 %7s ms  %9s/s  %6s us cpu/req  workers %s%% cpu' "$r" "$s" "$rps" "$p50" "$p99" "$xfer" "$cpu" "$split"
				[ "$non2xx" = 0 ] || printf '  non-2xx %s' "$non2xx"
				[ "$sc $sr $sw $st" = "0 0 0 0" ] || printf '  socket errors: connect %s read %s write %s timeout %s' "$sc" "$sr" "$sw" "$st"
				echo
			done
		done
	done
	if [ "$n_conns" -gt 1 ]; then
		rss_reports "after the $conn-connection runs"
	fi
done

if [ -s "$results" ]; then
	echo
	echo "== results (mean over $ROUNDS rounds of $DURATION; -t$THREADS; ratio = hfork/nginx)"
	awk -v order="$order" '
	{
		k = $1 SUBSEP $2
		n[k]++; rps[k] += $4; p50[k] += $5; p99[k] += $6; err[k] += $8 + $9 + $10 + $11 + $12; cpu[k] += $13
		each[k] = each[k] (each[k] == "" ? "" : " ") sprintf("%.0f", $4)
		split_[k] = split_[k] (split_[k] == "" ? "" : " ") $14
	}
	END {
		printf "%-18s %-6s %9s %8s %8s %6s %9s %9s %10s  %s\n", "case", "server", "req/s", "p50 ms", "p99 ms", "ratio", "p99 ratio", "cpu us/req", "cpu ratio", "req/s per round | worker cpu % per round | errors"
		m = split(order, cs, " ")
		for (i = 1; i <= m; i++) {
			c = cs[i]
			kn = c SUBSEP "nginx"; kh = c SUBSEP "hfork"; kb = c SUBSEP "base"
			if (!(kn in n)) continue
			rn = rps[kn] / n[kn]; rh = rps[kh] / n[kh]; cn = cpu[kn] / n[kn]; ch = cpu[kh] / n[kh]
			qn = p99[kn] / n[kn]; qh = p99[kh] / n[kh]
			printf "%-18s %-6s %9.0f %8.2f %8.2f %6s %9s %9.1f %10s  %s | %s%s\n", c, "nginx", rn, p50[kn] / n[kn], qn, "1", "1", cn, "1", each[kn], split_[kn], err[kn] ? " | errors " err[kn] : ""
			if (kb in n) {
				rb = rps[kb] / n[kb]; cb = cpu[kb] / n[kb]; qb = p99[kb] / n[kb]
				printf "%-18s %-6s %9.0f %8.2f %8.2f %6.2f %9.2f %9.1f %10.2f  %s | %s%s\n", c, "base", rb, p50[kb] / n[kb], qb, rn ? rb / rn : 0, qn ? qb / qn : 0, cb, cn ? cb / cn : 0, each[kb], split_[kb], err[kb] ? " | errors " err[kb] : ""
			}
			printf "%-18s %-6s %9.0f %8.2f %8.2f %6.2f %9.2f %9.1f %10.2f  %s | %s%s\n", c, "hfork", rh, p50[kh] / n[kh], qh, rn ? rh / rn : 0, qn ? qh / qn : 0, ch, cn ? ch / cn : 0, each[kh], split_[kh], err[kh] ? " | errors " err[kh] : ""
		}
	}' "$results"
	[ -n "$base_pid" ] && echo "base: HFORK_BASE_BIN on the same config (without METRICS), loaded between nginx and hfork in each round."
	echo "ratio: hfork req/s / nginx req/s (above 1: hfork served more).  p99 ratio: hfork p99 / nginx p99 (below 1: hfork's tail is shorter)."
	echo "cpu ratio: hfork worker CPU per request / nginx's (above 1: hfork spends more).  errors: wrk's socket errors (timeouts: no answer in 2 s) and non-2xx."
	echo "worker cpu %: each worker's CPU over the run in % of one core, busiest first (100+0 means one worker held every connection)."
	echo "h2 and h2static4k rows (h2load -m$H2_STREAMS), and tls and tlsstatic4k above 1000 connections (h2load --h1): h2load gives no percentiles, so p50 is its mean request time and p99 its max."
	echo "h2load runs open their connections in a warm-up of their own (a second per 400 connections, at least WARMUP) and keep them for the measured run."
	# least_conn against round robin over the same two upstreams, per server
	# and concurrency.
	for conn in $CONNECTIONS; do
		awk -v rr="$(label_of proxyrr "$conn")" -v lc="$(label_of leastconn "$conn")" -v at="$([ "$n_conns" -gt 1 ] && echo " at $conn connections")" '
			$1 == rr || $1 == lc { r[$1 SUBSEP $2] += $4; n[$1 SUBSEP $2]++ }
			END { m = split("nginx base hfork", sv, " ")
				for (i = 1; i <= m; i++) { a = lc SUBSEP sv[i]; b = rr SUBSEP sv[i]
					if ((a in n) && (b in n) && r[b] > 0) printf "least_conn / round robin req/s%s, %s: %.3f\n", at, sv[i], (r[a] / n[a]) / (r[b] / n[b]) } }' "$results"
	done
	echo "load now: $(cut -d' ' -f1-3 /proc/loadavg)"
fi

if [ -n "${METRICS:-}" ]; then
	echo
	echo "== metrics (METRICS=1): hfork's request counters after the load"
	http_body "$HF_METRICS_PORT" /metrics | grep '^hfork_http_requests_total' | grep -v ' 0$' || true
fi

echo
echo "== worker RSS after load (VmRSS)"
if [ "$n_conns" -gt 1 ]; then
	# Each concurrency's reports came after its runs, the last one's
	# settled one just now: the same again would say nothing new.
	echo "(after each concurrency above: right after its last run, and settled)"
else
	rss_reports "after load"
fi
echo "(hfork runs four listeners, the plain one, the access-logged one, the hosts one and the TLS one, two workers each; nginx serves every port from the same two workers)"

# ---------------------------------------------------------------- idle
# The idle case: IDLE_PER_WORKER keep-alive connections per worker, each
# served once and then left idle; the RSS the workers add, per connection.
# They come in two halves, and the second half's cost is printed too:
# what a server touches once (hfork's first garbage collection maps 2 MB
# of the executable's tables that a worker which never collected has not
# mapped yet) falls in the first half, so the second is the cost of a
# connection alone. Each line also gives the anonymous part (RssAnon), the
# server's own memory without the executable's pages, and the mapped
# files' (RssFile).
# Each server is measured twice with its connections open: when the
# clients report ready, and settled (settle_wait: hfork's workers give
# back their free heap and the executable's pages the ramp mapped once it
# has passed).
# It runs on a second nginx and hfork (and base) of their own, configured
# with room for them: worker_connections sized for 10,000 connections
# makes nginx allocate and touch its connection array up front, which
# would weigh on every other case's worker RSS.
idle_pat() { if [ "$1" = nginx ]; then echo "nginx: worker process"; else echo "hfork: worker bench"; fi; }
idle_pids() { # SERVER MASTER: the workers the case loads
	local k pat
	pat=$(idle_pat "$1")
	for k in $(children_of "$2"); do
		[ "$(cmdline_of "$k")" = "$pat" ] && echo "$k"
	done
	return 0
}
idle_rss() { # SERVER MASTER: "VmRSS RssAnon RssFile", summed in kB over the workers the case loads
	local k rss=0 anon=0 file=0
	for k in $(idle_pids "$1" "$2"); do
		rss=$((rss + $(rss_kb "$k"))) anon=$((anon + $(anon_kb "$k"))) file=$((file + $(file_kb "$k")))
	done
	echo "$rss $anon $file"
}
# idle_clients SERVER PORT HALF: starts two clients of IDLE_PER_WORKER/2
# connections (HALF names their files) and waits until both are ready;
# they hold their connections until fd 7 closes.
idle_clients() {
	local s=$1 port=$2 half=$3 i line
	local out=$tmp/idle.$s.out.$half
	for i in 1 2; do
		# Not holding fd 7 themselves: its close is their end of input.
		python3 "$here/idle.py" "$port" "$((IDLE_PER_WORKER / 2))" <"$tmp/idle.$s.in" >"$out.$i" 2>&1 7>&- &
		cpids+=($!)
		pids+=($!)
	done
	for i in 1 2; do
		for line in $(seq 600); do
			grep -q '^ready' "$out.$i" && break
			alive "${cpids[$((${#cpids[@]} - 3 + i))]}" || break
			sleep 0.1
		done
	done
}
idle_test() {
	local total=$((IDLE_PER_WORKER * 2)) wc=$((IDLE_PER_WORKER * 3 / 2 + 256)) s master port before mid after settled settled_in i cpids=() readies servers_idle="nginx hfork"
	[ "$wc" -lt "$(($(ulimit -n) - 64))" ] || wc=$(($(ulimit -n) - 64))
	[ -n "${HFORK_BASE_BIN:-}" ] && servers_idle="nginx base hfork"
	mkdir -p "$tmp/idle-nginx/logs" "$tmp/idle-nginx/temp" "$tmp/idle-hfork/logs" "$tmp/idle-base/logs"
	free_port I_NGX_PORT
	free_port I_NGX_LOG_PORT
	free_port I_NGX_TLS_PORT
	free_port I_HF_PORT
	free_port I_HF_LOG_PORT
	free_port I_HF_TLS_PORT
	free_port I_NGX_HOSTS_PORT
	free_port I_HF_HOSTS_PORT
	free_port I_BASE_PORT
	free_port I_BASE_LOG_PORT
	free_port I_BASE_TLS_PORT
	free_port I_BASE_HOSTS_PORT
	(NGX_PORT=$I_NGX_PORT NGX_LOG_PORT=$I_NGX_LOG_PORT NGX_TLS_PORT=$I_NGX_TLS_PORT NGX_HOSTS_PORT=$I_NGX_HOSTS_PORT WORKER_CONNECTIONS=$wc &&
		nginx_conf "$tmp/idle-nginx" "$body") >"$tmp/idle-nginx/nginx.conf"
	(HF_PORT=$I_HF_PORT HF_LOG_PORT=$I_HF_LOG_PORT HF_TLS_PORT=$I_HF_TLS_PORT HF_HOSTS_PORT=$I_HF_HOSTS_PORT WORKER_CONNECTIONS=$wc &&
		hfork_conf "$body") >"$tmp/idle-hfork/hfork.hcl"
	(HF_PORT=$I_BASE_PORT HF_LOG_PORT=$I_BASE_LOG_PORT HF_TLS_PORT=$I_BASE_TLS_PORT HF_HOSTS_PORT=$I_BASE_HOSTS_PORT WORKER_CONNECTIONS=$wc METRICS="" &&
		hfork_conf "$body") >"$tmp/idle-base/hfork.hcl"
	local ngx_e2=()
	[ ${#ngx_e[@]} -gt 0 ] && ngx_e2=(-e "$tmp/idle-nginx/logs/error.log")
	"$NGINX" -p "$tmp/idle-nginx/" "${ngx_e2[@]}" -c "$tmp/idle-nginx/nginx.conf" >"$tmp/idle-nginx/logs/stdout.log" 2>&1 &
	local i_ngx=$!
	pids+=("$i_ngx")
	"$tmp/bin/hfork" -f "$tmp/idle-hfork/hfork.hcl" >"$tmp/idle-hfork/logs/stdout.log" 2>&1 &
	local i_hf=$!
	pids+=("$i_hf")
	local i_base=""
	if [ -n "${HFORK_BASE_BIN:-}" ]; then
		"$tmp/bin/hfork-base" -f "$tmp/idle-base/hfork.hcl" >"$tmp/idle-base/logs/stdout.log" 2>&1 &
		i_base=$!
		pids+=("$i_base")
	fi
	wait_up "$I_NGX_PORT" / "$i_ngx" || fail_start "idle nginx" "$tmp/idle-nginx/logs/error.log"
	wait_up "$I_HF_PORT" / "$i_hf" || fail_start "idle hfork" "$tmp/idle-hfork/logs/hfork.log"
	[ -z "$i_base" ] || wait_up "$I_BASE_PORT" / "$i_base" || fail_start "idle hfork (base)" "$tmp/idle-base/logs/hfork.log"
	echo
	echo "== idle: $IDLE_PER_WORKER idle keep-alive connections per worker ($total in all, each served once, in two halves), worker_connections $wc"
	echo "-- the idle servers' workers before any connection (just started: an hfork worker has not collected garbage yet)"
	report_rss nginx "$i_ngx" "nginx: worker process*"
	[ -z "$i_base" ] || report_rss base "$i_base" "hfork: worker bench"
	report_rss hfork "$i_hf" "hfork: worker bench"
	echo "-- each server with its connections open: \"at ready\" when its clients report every connection answered, \"settled\" once its workers' RSS stopped moving (settle_wait), with the same connections open"
	for s in $servers_idle; do
		case $s in
		nginx) master=$i_ngx port=$I_NGX_PORT ;;
		base) master=$i_base port=$I_BASE_PORT ;;
		*) master=$i_hf port=$I_HF_PORT ;;
		esac
		before=$(idle_rss "$s" "$master")
		cpids=()
		mkfifo "$tmp/idle.$s.in"
		# The clients hold their connections until it closes; read-write,
		# the open does not wait for a reader (Linux).
		exec 7<>"$tmp/idle.$s.in"
		idle_clients "$s" "$port" 1
		mid=$(idle_rss "$s" "$master")
		idle_clients "$s" "$port" 2
		after=$(idle_rss "$s" "$master")
		readies=$(cat "$tmp/idle.$s.out".* | awk '/^ready/ { n += $2 } END { print n + 0 }')
		# shellcheck disable=SC2046 # one pid a word
		settled_in=$(settle_wait $(idle_pids "$s" "$master"))
		settled=$(idle_rss "$s" "$master")
		# Per server, two lines (at ready, settled) and the figures for the
		# ratios in idle.results: SERVER PHASE KB_PER_CONN KB_PER_CONN_SECOND_HALF ANON_PER_CONN ANON_SECOND_HALF.
		awk -v s="$s" -v b="$before" -v m="$mid" -v a="$after" -v z="$settled" -v zin="$settled_in" -v n="$readies" -v want="$total" -v res="$tmp/idle.results" 'BEGIN {
			split(b, B, " "); split(m, M, " "); split(a, A, " "); split(z, Z, " "); h = n / 2
			printf "%-5s at ready: workers %6d kB before, %7d kB with %d idle connections%s: %+6d kB, %.2f kB per connection; second half %.2f kB per connection; anon %+6d kB, %.2f (second half %.2f) kB per connection; file %+d kB\n",
				s, B[1], A[1], n, n == want ? "" : " (WANTED " want ")", A[1] - B[1], n ? (A[1] - B[1]) / n : 0, h ? (A[1] - M[1]) / h : 0,
				A[2] - B[2], n ? (A[2] - B[2]) / n : 0, h ? (A[2] - M[2]) / h : 0, A[3] - B[3]
			printf "%-5s settled:  workers %6d kB before, %7d kB with the same connections open: %+6d kB, %.2f kB per connection; anon %+6d kB, %.2f kB per connection; file %+d kB (%s)\n",
				s, B[1], Z[1], Z[1] - B[1], n ? (Z[1] - B[1]) / n : 0, Z[2] - B[2], n ? (Z[2] - B[2]) / n : 0, Z[3] - B[3], zin
			printf "%s ready %f %f %f %f\n", s, n ? (A[1] - B[1]) / n : 0, h ? (A[1] - M[1]) / h : 0, n ? (A[2] - B[2]) / n : 0, h ? (A[2] - M[2]) / h : 0 >>res
			printf "%s settled %f 0 %f 0\n", s, n ? (Z[1] - B[1]) / n : 0, n ? (Z[2] - B[2]) / n : 0 >>res }'
		exec 7>&-
		for i in "${cpids[@]}"; do wait "$i" 2>/dev/null || true; done
		cat "$tmp/idle.$s.out".* | grep -v '^ready' | head -n 5 || true
	done
	awk '{ k = $1 SUBSEP $2; kb[k] = $3; half[k] = $4; anon[k] = $5; anon2[k] = $6; seen[$1] = 1 }
		function r(a, b) { return b > 0 ? a / b : 0 }
		END { m = split("base hfork", sv, " ")
			for (i = 1; i <= m; i++) { s = sv[i]; if (!(s in seen) || !(("nginx" SUBSEP "ready") in kb)) continue
				a = s SUBSEP "ready"; n = "nginx" SUBSEP "ready"
				printf "per-connection ratio %s/nginx at ready: %.2f (second half %.2f; anon %.2f, second half %.2f)\n", s, r(kb[a], kb[n]), r(half[a], half[n]), r(anon[a], anon[n]), r(anon2[a], anon2[n])
				a = s SUBSEP "settled"; n = "nginx" SUBSEP "settled"
				printf "per-connection ratio %s/nginx settled: %.2f (anon %.2f)\n", s, r(kb[a], kb[n]), r(anon[a], anon[n]) } }' "$tmp/idle.results"
	[ -z "$i_base" ] || stop "$i_base"
	stop "$i_hf"
	stop "$i_ngx"
}
if want idle; then
	idle_test
fi

# ---------------------------------------------------------------- reloads
# reload_test SERVER: wrk for RELOAD_DURATION with RELOADS reloads, one per
# second, each changing the respond body; then check the last body is served.
reload_test() {
	local s=$1 port out wpid i want got said
	port=$(case_port respond "$s")
	out=$tmp/wrk.reload.$s.txt
	"$WRK" -t"$THREADS" -c"${CONNECTIONS%% *}" -d"$RELOAD_DURATION" --latency "http://127.0.0.1:$port/" >"$out" 2>&1 &
	wpid=$!
	pids+=("$wpid")
	sleep 1
	for i in $(seq "$RELOADS"); do
		if [ "$s" = nginx ]; then
			nginx_conf "$tmp/nginx" "$body reload $i" >"$tmp/nginx/nginx.conf.new"
			mv "$tmp/nginx/nginx.conf.new" "$tmp/nginx/nginx.conf"
			kill -HUP "$ngx_pid"
		else
			hfork_conf "$body reload $i" >"$tmp/hfork/hfork.hcl.new"
			mv "$tmp/hfork/hfork.hcl.new" "$tmp/hfork/hfork.hcl"
			kill -HUP "$hf_pid"
		fi
		sleep 1
	done
	wait "$wpid" || true
	sleep 1
	want="$body reload $RELOADS"
	got=$(http_body "$port" / | tr -d '\n')
	read -r rps p50 p99 xfer non2xx sc sr sw st < <(parse_wrk "$out")
	local total
	total=$(awk '/requests in/ { print $1 }' "$out")
	printf '%-5s %9s requests  %8s req/s  p99 %7s ms  non-2xx %s  socket errors: connect %s, read %s, write %s, timeout %s  last body %s\n' \
		"$s" "$total" "$rps" "$p99" "$non2xx" "$sc" "$sr" "$sw" "$st" \
		"$([ "$got" = "$want" ] && echo "ok ('$got')" || echo "WRONG: got '$got', want '$want'")"
	said=$(grep -E 'Socket errors|Non-2xx' "$out" | sed 's/^ *//' | paste -sd';' - | sed 's/;/; /g' || true)
	echo "      wrk's own lines: ${said:-(no "Socket errors" line and no "Non-2xx" line: zero of each)}"
}

if want reload; then
	echo
	echo "== $RELOADS reloads under load: wrk -t$THREADS -c${CONNECTIONS%% *} -d$RELOAD_DURATION, one reload per second (nginx HUP, hfork HUP), body changed each time"
	echo "A 'read' socket error is a connection the server closed after wrk sent a request on it (wrk 4.x counts it; not every version does)."
	reload_test nginx
	reload_test hfork
	# How many HUPs each server acted on, from their own logs.
	echo "nginx: $(grep -c ': reconfiguring$' "$tmp/nginx/logs/error.log" || true) of $RELOADS HUPs logged as \"reconfiguring\""
	awk '/msg="reload complete"/ { n++; if (match($0, /ms=[0-9]+/)) { v = substr($0, RSTART + 3, RLENGTH - 3) + 0; t += v; if (v > mx) mx = v } }
		END { printf "hfork: %d of %d reloads logged \"reload complete\"", n, want; if (n) printf ", apply time mean %.0f ms, max %d ms", t / n, mx; print "" }' \
		want="$RELOADS" "$tmp/hfork/logs/hfork.log"
fi

echo
echo "done; load now: $(cut -d' ' -f1-3 /proc/loadavg)"
