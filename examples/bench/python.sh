#!/usr/bin/env bash
# hfork's Python workers vs gunicorn on this machine, in one run, on
# loopback: the same Flask app (examples/apps/flask_app.py), the same
# interpreter and the same number of workers, for the classes sync, thread
# (gunicorn's gthread) and gevent.
#
#   examples/bench/python.sh
#   CASES=python examples/bench/run.sh      # the same, through run.sh
#   PY_CLASSES="thread gevent" DURATION=10s examples/bench/python.sh
#
# Knobs: DURATION (5s), ROUNDS (2), CONNECTIONS (50), THREADS (1, wrk's),
# WARMUP (1s), WORKERS (2), PY_THREADS (8: threads per worker for thread /
# gthread), HUPS (10), HUP_DURATION (12s), PY_CLASSES (sync thread gevent),
# PYTHON (/usr/bin/python3), HFORK_BIN, KEEP_TMP=1.
#
# Per class and server (both running, rounds alternating): req/s (mean over
# ROUNDS), p99 of the last round, RSS
# per worker after the load, and the requests that failed (wrk's socket
# errors plus non-2xx) during HUPS HUPs under load, one per second, each
# after the app's code changed; then whether the last code is served.
set -euo pipefail

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-2}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-1}
WARMUP=${WARMUP:-1s}
WORKERS=${WORKERS:-2}
PY_THREADS=${PY_THREADS:-8}
HUPS=${HUPS:-10}
HUP_DURATION=${HUP_DURATION:-12s}
PY_CLASSES=${PY_CLASSES:-sync thread gevent}
PYTHON=${PYTHON:-/usr/bin/python3}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
WRK=${WRK:-$(command -v wrk || true)}
missing=()
[ -n "$WRK" ] || missing+=("wrk: apt-get install wrk")
for m in flask gevent gunicorn; do
	"$PYTHON" -c "import $m" 2>/dev/null || missing+=("$m for $PYTHON: apt-get install python3-$m")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "python.sh: missing:" >&2
	printf '  %s\n' "${missing[@]}" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hfork-pybench.XXXXXX")
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	[ "${KEEP_TMP:-}" = 1 ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT

if [ -n "${HFORK_BIN:-}" ]; then
	hfork=$HFORK_BIN
else
	hfork=$tmp/hfork
	(cd "$root" && CGO_ENABLED=0 go build -o "$hfork" ./cmd/hfork)
fi

# The app, copied so that a HUP can change its code.
app=$tmp/app
mkdir -p "$app"
set_version() { # VERSION: the body the app answers
	sed "s/ from flask/ from flask $1/" "$root/examples/apps/flask_app.py" >"$app/flask_app.py.new"
	mv "$app/flask_app.py.new" "$app/flask_app.py"
	# Two edits of the same size in the same second look alike to Python's
	# bytecode cache (it checks mtime seconds and size): drop it.
	rm -rf "$app/__pycache__"
}

port_hf=18201
port_gu=18202

children_of() { cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . || true; }
rss_per_worker() { # MASTER: mean RSS of its children, in MiB
	local k total=0 n=0 r
	for k in $(children_of "$1"); do
		r=$(awk '/^VmRSS:/ { print $2 }' /proc/"$k"/status 2>/dev/null || echo 0)
		total=$((total + r)) n=$((n + 1))
	done
	[ "$n" -gt 0 ] && awk -v t="$total" -v n="$n" 'BEGIN { printf "%.1f", t / n / 1024 }' || echo "?"
}
wait_up() { # PORT PID
	local i
	for i in $(seq 200); do
		curl -sf "http://127.0.0.1:$1/" >/dev/null 2>&1 && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
to_ms() {
	awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}
wrk_rps() { awk '/^Requests\/sec:/ { print $2 }' "$1"; }
wrk_p99() { to_ms "$(awk '$1 == "99%" { print $2 }' "$1")"; }
wrk_failed() { # socket errors + non-2xx
	awk '/Socket errors:/ { gsub(",", ""); s += $4 + $6 + $8 + $10 } /Non-2xx or 3xx responses:/ { s += $NF } END { print s + 0 }' "$1"
}

start_hfork() { # CLASS
	local extra=""
	case $1 in
	thread) extra="threads = $PY_THREADS" ;;
	esac
	cat >"$tmp/hfork.hcl" <<EOF
pidfile = "$tmp/hfork.pid"
log {
  format = "json"
  file   = "$tmp/hfork.$1.log"
}
reload { watch = false }
listener "py" {
  bind    = "127.0.0.1:$port_hf"
  app     = "flask_app:app"
  class   = "$1"
  python  = "$PYTHON"
  dir     = "$app"
  workers = $WORKERS
  $extra
}
EOF
	"$hfork" -f "$tmp/hfork.hcl" &
	srv_pid=$!
	pids+=("$srv_pid")
	wait_up "$port_hf" "$srv_pid" || { echo "hfork did not start; log:" >&2; cat "$tmp/hfork.$1.log" >&2; exit 1; }
}

start_gunicorn() { # CLASS
	local k=$1 extra=()
	case $1 in
	thread) k=gthread extra=(--threads "$PY_THREADS") ;;
	esac
	"$PYTHON" -m gunicorn -w "$WORKERS" -k "$k" "${extra[@]}" -b "127.0.0.1:$port_gu" --chdir "$app" \
		--log-level warning --error-logfile "$tmp/gunicorn.$1.log" flask_app:app &
	srv_pid=$!
	pids+=("$srv_pid")
	wait_up "$port_gu" "$srv_pid" || { echo "gunicorn did not start; log:" >&2; cat "$tmp/gunicorn.$1.log" >&2; exit 1; }
}


echo "python:  $("$PYTHON" -V 2>&1), flask $("$PYTHON" -c 'import flask; print(flask.__version__)' 2>/dev/null || echo '?'), gunicorn $("$PYTHON" -c 'import gunicorn; print(gunicorn.__version__)'), gevent $("$PYTHON" -c 'import gevent; print(gevent.__version__)')"
echo "cpus:    $(nproc)   workers: $WORKERS per server   threads (thread/gthread): $PY_THREADS"
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, $ROUNDS rounds, warm-up $WARMUP; HUP test: $HUPS HUPs, one a second, under wrk -d$HUP_DURATION"
echo "Both servers and wrk share these cores; other load on the machine shows up as noise."
echo

# hup_test SERVER PORT PID: HUPS HUPs under load, each after a code change;
# prints "failed served".
hup_test() {
	local s=$1 port=$2 pid=$3 hout wpid i got served=no
	hout=$tmp/wrk.$class.$s.hup.txt
	"$WRK" -t"$THREADS" -c"$CONNECTIONS" -d"$HUP_DURATION" "http://127.0.0.1:$port/" >"$hout" 2>&1 &
	wpid=$!
	pids+=("$wpid")
	sleep 1
	for i in $(seq "$HUPS"); do
		set_version "v$i"
		kill -HUP "$pid"
		sleep 1
	done
	wait "$wpid" || true
	# A reload that came in while one was running follows it: give the
	# last HUP up to 20s to be served.
	for i in $(seq 200); do
		got=$(curl -s "http://127.0.0.1:$port/" | tr -d '\n')
		if [ "$got" = "hello from flask v$HUPS" ]; then
			served=yes
			break
		fi
		sleep 0.1
	done
	echo "$(wrk_failed "$hout") $served"
}

rows=()
for class in $PY_CLASSES; do
	set_version "v0"
	start_gunicorn "$class"
	gu_pid=$srv_pid
	start_hfork "$class"
	hf_pid=$srv_pid
	declare -A sum=([gunicorn]=0 [hfork]=0) p99=() fl=()
	for s in gunicorn hfork; do
		port=$port_hf
		[ $s = gunicorn ] && port=$port_gu
		"$WRK" -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
	done
	# Rounds alternate between the servers, so that other load on the
	# machine falls on both alike.
	for r in $(seq "$ROUNDS"); do
		for s in gunicorn hfork; do
			port=$port_hf
			[ $s = gunicorn ] && port=$port_gu
			out=$tmp/wrk.$class.$s.$r.txt
			"$WRK" -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$port/" >"$out" 2>&1
			sum[$s]=$(awk -v a="${sum[$s]}" -v b="$(wrk_rps "$out")" 'BEGIN { print a + b }')
			p99[$s]=$(wrk_p99 "$out")
			fl[$s]=$(( ${fl[$s]:-0} + $(wrk_failed "$out") ))
		done
	done
	for s in gunicorn hfork; do
		pid=$hf_pid port=$port_hf
		[ $s = gunicorn ] && pid=$gu_pid port=$port_gu
		rss=$(rss_per_worker "$pid")
		rps=$(awk -v t="${sum[$s]}" -v n="$ROUNDS" 'BEGIN { printf "%.0f", t / n }')
		read -r fh served < <(hup_test "$s" "$port" "$pid")
		set_version "v0"
		rows+=("$class $s $rps ${p99[$s]} $rss ${fl[$s]} $fh $served")
		echo "done: $class $s"
	done
	for pid in "$gu_pid" "$hf_pid"; do
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	unset sum p99 fl
done

echo
echo "== Flask app, $WORKERS workers each: hfork's Python workers vs gunicorn (mean req/s over $ROUNDS rounds; ratio = hfork/gunicorn)"
printf '%-7s %-9s %9s %7s %9s %14s %12s %11s %9s\n' class server "req/s" ratio "p99 ms" "RSS/worker MiB" "failed/load" "failed/HUPs" "new code"
for row in "${rows[@]}"; do
	read -r class server rps p99 rss fl fh served <<<"$row"
	ratio=""
	if [ "$server" = hfork ]; then
		for o in "${rows[@]}"; do
			read -r c2 s2 r2 _ <<<"$o"
			[ "$c2" = "$class" ] && [ "$s2" = gunicorn ] && ratio=$(awk -v a="$rps" -v b="$r2" 'BEGIN { if (b > 0) printf "%.2fx", a / b }')
		done
	fi
	printf '%-7s %-9s %9s %7s %9s %14s %12s %11s %9s\n' "$class" "$server" "$rps" "${ratio:--}" "$p99" "$rss" "$fl" "$fh" "$served"
done
echo "failed = wrk's socket errors (connect, read, write, timeout) plus non-2xx answers; 'new code' = the last HUP's code answers within 20s after the load."
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cpus"
