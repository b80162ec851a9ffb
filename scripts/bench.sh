#!/usr/bin/env bash
# Runs Kaiwa's standard benchmarks on this machine and writes the results
# tables, the exact commands and the machine into docs/benchmarks.md, with
# each row's CPU compared with the previous recorded run, whose result
# lines docs/benchmarks.jsonl keeps (this run's replace them).
#
# Usage: scripts/bench.sh            the standard scenarios (a few minutes)
#        BENCH_SIZE=small scripts/bench.sh   a tenth of the size, to try it out
#
# It starts a self-contained stack on loopback, every part in its own
# process so that each is measured by PID: NATS (kaiwa nats), the tenant
# API with the log writer (kaiwa api --logwriter), two v1 UA processes and
# a v2 UA listening on TCP, and the bare reference server (kaiwa bench
# bare).
# MySQL comes from scripts/with-test-mysql.sh (KAIWA_TEST_MYSQL_DSN, or
# root at 127.0.0.1:3306, or a private MariaDB); the benchmark gets a fresh
# database, kaiwa_bench, on it. Everything is stopped at the end.
#
# Environment:
#   BENCH_SIZE=small          run a tenth of the standard size (not written
#                             to docs/benchmarks.md unless BENCH_WRITE=1)
#   BENCH_WRITE=0|1           write docs/benchmarks.md (default 1 at full size)
#   BENCH_PORT_BASE=18000     ports BASE+... are used for the stack
#   BENCH_OUT=DIR             where logs and results go (default var/bench)
#   BENCH_KAIWA=PATH          use this kaiwa binary instead of building bin/kaiwa
#   BENCH_REV=REV             build the committed revision REV (git archive)
#                             instead of the working tree
#   BENCH_ONLY=REGEX          run only the scenarios whose "NAME LABEL"
#                             matches REGEX, e.g. 'fanout ua$' (not written
#                             to docs/benchmarks.md unless BENCH_WRITE=1)
#   BENCH_PROFILE=SECONDS     take a CPU profile of the first UA, of the
#                             API process and of NATS for this long during
#                             each run, into $BENCH_OUT/run.N.ua.pprof,
#                             run.N.api.pprof and run.N.nats.pprof, starting
#   BENCH_PROFILE_AT=SECONDS  this long after the run starts (default 12)
#   BENCH_PLAN=standard|100k  the scenarios: the standard ones, or 100,000
#                             idle clients in one channel through nginx with
#                             a system message to all of them every 10 s
#                             (not written to docs/benchmarks.md; it wants
#                             about 12 GiB of memory)
#   BENCH_UAS=N               v1 UA processes behind nginx (default 2; the
#                             100k plan 6)
#   BENCH_NGINX_WORKERS=N     nginx workers per front (default 4; the 100k
#                             plan 14: each holds two open files per client)
set -euo pipefail

root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root_dir"
export PATH="$PATH:/usr/local/go/bin"

if [ -z "${KAIWA_TEST_MYSQL_DSN:-}" ]; then
	exec scripts/with-test-mysql.sh "$0" "$@"
fi

say() { echo "bench.sh: $*" >&2; }

size=${BENCH_SIZE:-standard}
case "$size" in
standard) scale=1 write=${BENCH_WRITE:-1} ;;
small) scale=10 write=${BENCH_WRITE:-0} ;;
*)
	say "BENCH_SIZE must be standard or small"
	exit 2
	;;
esac
only=${BENCH_ONLY:-}
[ -n "$only" ] && write=${BENCH_WRITE:-0}
plan=${BENCH_PLAN:-standard}
case "$plan" in
standard) uas=${BENCH_UAS:-2} nginx_workers=${BENCH_NGINX_WORKERS:-4} ;;
100k) uas=${BENCH_UAS:-6} nginx_workers=${BENCH_NGINX_WORKERS:-14} write=${BENCH_WRITE:-0} ;;
*)
	say "BENCH_PLAN must be standard or 100k"
	exit 2
	;;
esac
profile=${BENCH_PROFILE:-}
base=${BENCH_PORT_BASE:-18000}
nats_port=$((base + 222)) ua1_port=$((base + 90)) bare_port=$((base + 99))
api_metrics_port=$((base + 91)) nats_prof_port=$((base + 92))
nginx_http=$((base + 80)) nginx_https=$((base + 443)) bare_http=$((base + 79)) bare_https=$((base + 444))
out=${BENCH_OUT:-var/bench}
rm -rf "$out"
mkdir -p "$out"
abs_out=$(cd "$out" && pwd) # BENCH_OUT may be relative or absolute
results="$out/results.jsonl"
commands="$out/commands.txt"
: >"$results"
: >"$commands"

tcp_answers() { timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
for p in $nats_port $ua1_port $bare_port $nginx_http $nginx_https $bare_http $bare_https; do
	if tcp_answers 127.0.0.1 "$p"; then
		say "port $p is taken; set BENCH_PORT_BASE to a free range"
		exit 1
	fi
done

kaiwa=${BENCH_KAIWA:-}
rev=${BENCH_REV:-}
commit="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' with local changes')"
if [ -n "$rev" ]; then
	# A committed revision, built apart from the working tree.
	say "building kaiwa at $rev"
	commit=$(git rev-parse --short "$rev")
	mkdir -p "$out/src"
	git archive "$rev" | tar -x -C "$out/src"
	(cd "$out/src" && go build -o ../kaiwa ./cmd/kaiwa)
	kaiwa="$out/kaiwa"
elif [ -z "$kaiwa" ]; then
	say "building bin/kaiwa"
	go build -o bin/kaiwa ./cmd/kaiwa
	kaiwa=bin/kaiwa
fi

# --- MySQL: a fresh database ------------------------------------------------
server_dsn=$KAIWA_TEST_MYSQL_DSN
if [[ ! $server_dsn =~ ^([^:@]+)(:([^@]*))?@tcp\(([^:\)]+):([0-9]+)\)/ ]]; then
	say "cannot read user, host and port from KAIWA_TEST_MYSQL_DSN=$server_dsn"
	exit 1
fi
db_user=${BASH_REMATCH[1]} db_pass=${BASH_REMATCH[3]} db_host=${BASH_REMATCH[4]} db_port=${BASH_REMATCH[5]}
mysql_bin=$(command -v mariadb || command -v mysql) || {
	say "the mariadb (or mysql) client is needed: scripts/deps.sh test"
	exit 1
}
mysql_cli=("$mysql_bin" --no-defaults --protocol=tcp -h "$db_host" -P "$db_port" -u "$db_user")
[ -n "$db_pass" ] && mysql_cli+=("-p$db_pass")
"${mysql_cli[@]}" -e "DROP DATABASE IF EXISTS kaiwa_bench; CREATE DATABASE kaiwa_bench CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
dsn="${server_dsn%%/*}/kaiwa_bench"
$kaiwa migrate up --mysql-dsn "$dsn" >/dev/null

# The MySQL server's PID, measured like the rest of the stack when it can
# be found (the process listening on its port).
mysql_pid=$(ss -Hltnp "sport = :$db_port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2 || true)
mysql_arg=""
[ -n "$mysql_pid" ] && mysql_arg="--pid mysql=$mysql_pid"

# --- the stack ----------------------------------------------------------------
pids=()
stop_all() {
	local p
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	pids=()
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME CMD...: runs CMD in the background, logging to $out/NAME.log,
# and sets $started to its PID.
start() {
	local name=$1
	shift
	"$@" >"$out/$name.log" 2>&1 &
	started=$!
	pids+=("$started")
}

# wait_until NAME PID WHAT CMD...: polls CMD until it succeeds; fails when
# process PID exits first, or after 30 s (NAME did not WHAT).
wait_until() {
	local name=$1 pid=$2 what=$3 i
	shift 3
	for i in $(seq 1 300); do
		if ! kill -0 "$pid" 2>/dev/null; then
			say "$name exited while starting:"
			tail -n 20 "$out/$name.log" >&2
			exit 1
		fi
		"$@" && return 0
		sleep 0.1
	done
	say "$name did not $what within 30 s"
	exit 1
}

# wait_port NAME PORT PID: polls until the port answers.
wait_port() { wait_until "$1" "$3" "answer on port $2" tcp_answers 127.0.0.1 "$2"; }

# wait_socket NAME PATH PID: polls until the unix socket exists.
wait_socket() { wait_until "$1" "$3" "listen on $2" test -S "$2"; }

nats_url="nats://127.0.0.1:$nats_port"
nats_profiling=()
[ -n "$profile" ] && nats_profiling=(--prof-port "$nats_prof_port")
start nats $kaiwa nats --listen "127.0.0.1:$nats_port" --store "$out/nats" "${nats_profiling[@]}"
nats_pid=$started
wait_port nats "$nats_port" "$nats_pid"

# The real path: the UAs and the API on unix sockets behind nginx with
# TLS, as kaiwa dev and a deployment run them; the bare server behind a
# second nginx rendered the same way. Every version's route gets $uas UA
# sockets (v2's and the bare front's all name their one process), so that
# both fronts have the same upgrade rate and upstream lists.
run="$abs_out/run" run_bare="$abs_out/run-bare"
mkdir -p "$run" "$run_bare" "$out/tls"
api_profiling=()
[ -n "$profile" ] && api_profiling=(--metrics-listen "127.0.0.1:$api_metrics_port")
start api $kaiwa api --listen "unix:$run/api-v1.sock" --mysql-dsn "$dsn" --nats-url "$nats_url" --logwriter --log-level warn "${api_profiling[@]}"
api_pid=$started
ua_pids=()
for ((i = 0; i < uas; i++)); do
	start "ua$((i + 1))" $kaiwa ua --listen "unix:$run/ua-v1-$i.sock" --nats-url "$nats_url" --log-level warn
	ua_pids+=("$started")
done
start v2 $kaiwa ua --version v2 --listen "unix:$run/ua-v2-0.sock" --nats-url "$nats_url" --log-level warn
v2_pid=$started
start bare $kaiwa bench bare --listen "unix:$run_bare/ua-v1-0.sock"
bare_pid=$started
ln -sf api-v1.sock "$run/api-v2.sock"
for ((i = 1; i < uas; i++)); do
	ln -sf ua-v2-0.sock "$run/ua-v2-$i.sock"
	ln -sf ua-v1-0.sock "$run_bare/ua-v1-$i.sock"
done
# Reached directly over TCP, for diagnosis: a third v1 UA and a second
# bare server.
start uad $kaiwa ua --listen "127.0.0.1:$ua1_port" --nats-url "$nats_url" --log-level warn
uad_pid=$started
start bared $kaiwa bench bare --listen "127.0.0.1:$bare_port"
bared_pid=$started

wait_socket api "$run/api-v1.sock" "$api_pid"
for ((i = 0; i < uas; i++)); do
	wait_socket "ua$((i + 1))" "$run/ua-v1-$i.sock" "${ua_pids[$i]}"
done
wait_socket v2 "$run/ua-v2-0.sock" "$v2_pid"
wait_socket bare "$run_bare/ua-v1-0.sock" "$bare_pid"
wait_port uad "$ua1_port" "$uad_pid"
wait_port bared "$bare_port" "$bared_pid"

# nginx: the configuration kaiwa nginx-config renders for a host, with a
# self-signed certificate like kaiwa dev's (ECDSA P-256, made by
# kaiwa nginx-config --self-signed and shared by both fronts), the per-address
# limits off (the load tool's clients share a few loopback addresses) and
# four workers (each holds two open files per proxied WebSocket).
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx_bin" ] || {
	say "nginx is needed: scripts/deps.sh run"
	exit 1
}
nginx_user=()
[ "$(id -u)" = 0 ] && nginx_user=(--user root)
# front NAME SOCKETS HTTP_PORT HTTPS_PORT: renders and starts one nginx,
# setting $started to its master's PID.
front() {
	local prefix="$abs_out/$1"
	mkdir -p "$prefix"
	$kaiwa nginx-config --prefix "$prefix" --sockets "$2" --http "127.0.0.1:$3" --https "127.0.0.1:$4" \
		--self-signed "$abs_out/tls" "${nginx_user[@]}" \
		--ua-per-version "$uas" --workers "$nginx_workers" --per-ip-conns -1 --per-ip-upgrade-rate -1 --out "$prefix/nginx.conf"
	start "$1" "$nginx_bin" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" -g 'daemon off;'
}
# nginx_pids MASTER: "--pid nginx=PID" for the master and each worker.
nginx_pids() {
	local p args="--pid nginx=$1" i
	for i in $(seq 1 100); do
		[ "$(pgrep -P "$1" | wc -l)" -ge "$nginx_workers" ] && break
		sleep 0.1
	done
	for p in $(pgrep -P "$1"); do args+=" --pid nginx=$p"; done
	echo "$args"
}
front nginx "$run" "$nginx_http" "$nginx_https"
nginx_pid=$started
front nginx-bare "$run_bare" "$bare_http" "$bare_https"
nginx_bare_pid=$started
wait_port nginx "$nginx_https" "$nginx_pid"
wait_port nginx-bare "$bare_https" "$nginx_bare_pid"
kaiwa_front=$(nginx_pids "$nginx_pid")
bare_front=$(nginx_pids "$nginx_bare_pid")

# --- the machine ----------------------------------------------------------------
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
machine=$(
	echo "- CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "- memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "- kernel: $(uname -sr)"
	echo "- $(go version | sed 's/^go version //; s/^/Go /')"
	echo "- open files per process: $(ulimit -Hn); ephemeral ports $(tr '\t' '-' </proc/sys/net/ipv4/ip_local_port_range)"
	echo "- MySQL: $("${mysql_cli[@]}" -N -e 'SELECT VERSION()')"
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit"
	echo "- load average before the run: $load_before"
)
if awk -v l="${load_before%% *}" 'BEGIN { exit !(l > 0.5) }'; then
	say "warning: load average $load_before: other work on this machine skews the figures"
fi

# --- the scenarios ----------------------------------------------------------------
ws() { echo "ws://127.0.0.1:$1/v1/ws"; }
wss() { echo "wss://127.0.0.1:$1/$2/ws"; }
n() { echo $(($1 / scale)); }

# wait_quiet: waits (at most two minutes) while another kaiwa bench run
# is loading this machine: two benchmarks at once measure nothing.
wait_quiet() {
	local i others
	for i in $(seq 1 120); do
		others=$(pgrep -f 'kaiwa bench (idle|fanout|room|dm|storm|mixed|worker)' || true)
		[ -z "$others" ] && return 0
		[ "$i" = 1 ] && say "waiting for another kaiwa bench run to finish (pids $(echo $others))"
		sleep 1
	done
	say "warning: another kaiwa bench run is still going; the figures will be skewed"
}

# bench ARGS...: one kaiwa bench run; its summary goes to the terminal and
# $out/summary.txt, its JSON lines (one per window) to $results, its
# command to $commands.
bench() {
	local label="" i
	for ((i = 1; i <= $#; i++)); do
		[ "${!i}" = --label ] && { j=$((i + 1)); label=${!j}; }
	done
	if [ -n "$only" ] && [[ ! "$1 $label" =~ $only ]]; then
		return 0
	fi
	local setup=(--mysql-dsn "$dsn")
	[[ " $* " == *" --pid bare="* ]] && setup=() # the bare server needs no tokens
	local rec="bin/kaiwa bench" a
	for a in "$@"; do
		if [[ $a =~ ^[A-Za-z0-9_./:=,@+-]+$ ]]; then rec+=" $a"; else rec+=" '$a'"; fi
	done
	rec+=" "
	[ ${#setup[@]} -gt 0 ] && rec+='--mysql-dsn "$DSN"'
	echo "$rec" | sed "s|$uas_pids|\$UA_PIDS|g; s|=$v2_pid\b|=\$V2_PID|g;
		s|=$nats_pid\b|=\$NATS_PID|g; s|=$api_pid\b|=\$API_PID|g; s|=${mysql_pid:-none}\b|=\$MYSQL_PID|g;
		s|=$bare_pid\b|=\$BARE_PID|g; s|=$uad_pid\b|=\$UAD_PID|g; s|=$bared_pid\b|=\$BARED_PID|g;
		s|$kaiwa_front|\$KAIWA_NGINX|g; s|$bare_front|\$BARE_NGINX|g; s| *$||" >>"$commands"
	wait_quiet
	say "kaiwa bench $1 ${*:2}"
	local log="$out/run.$(wc -l <"$commands").log"
	local prof_pid=""
	if [ -n "$profile" ] && [[ " $* " == *" --pid ua="* ]]; then
		(
			sleep "${BENCH_PROFILE_AT:-12}"
			curl -s -o "${log%.log}.api.pprof" "http://127.0.0.1:$api_metrics_port/debug/pprof/profile?seconds=$profile" &
			curl -s -o "${log%.log}.nats.pprof" "http://127.0.0.1:$nats_prof_port/debug/pprof/profile?seconds=$profile" &
			curl -s --unix-socket "$run/ua-v1-0.sock" -o "${log%.log}.ua.pprof" "http://ua/debug/pprof/profile?seconds=$profile"
			wait
		) &
		prof_pid=$!
	fi
	if ! $kaiwa bench "$@" "${setup[@]}" >"$log" 2>"$log.progress"; then
		say "run failed:"
		tail -n 30 "$log.progress" "$log" >&2
		exit 1
	fi
	[ -n "$prof_pid" ] && wait "$prof_pid"
	grep -v '^{' "$log" | tee -a "$out/summary.txt" >&2
	grep '^{' "$log" >>"$results"
}

# The real path: clients through nginx over TLS.
uas_pids=""
for p in "${ua_pids[@]}"; do uas_pids+="${uas_pids:+ }--pid ua=$p"; done
real="--url $(wss $nginx_https v1) --insecure $uas_pids $kaiwa_front --pid nats=$nats_pid --pid api=$api_pid $mysql_arg"
bare="--url $(wss $bare_https v1) --insecure --pid bare=$bare_pid $bare_front"
v2="--url $(wss $nginx_https v2) --insecure --pid ua=$v2_pid $kaiwa_front --pid nats=$nats_pid --pid api=$api_pid $mysql_arg"
mixed="--url $(wss $nginx_https v1),$(wss $nginx_https v2) --insecure $uas_pids --pid ua=$v2_pid $kaiwa_front --pid nats=$nats_pid --pid api=$api_pid $mysql_arg"
# Straight to one UA and to the bare server over ws://, for diagnosis.
direct="--url $(ws $ua1_port) --pid ua=$uad_pid --pid nats=$nats_pid --pid api=$api_pid $mysql_arg"
bare_direct="--url $(ws $bare_port) --pid bare=$bared_pid"

# Idle first, while the servers' heaps are fresh: RSS per connection.
# Fanout sweeps up from the 40,000 deliveries/s target, one window per rate
# on the same clients, until p99 passes 100 ms or a message is lost. Steps
# of 5,000 from 60,000, where both servers' highest rates fall, so that the
# highest-rate ratio is read to within about 0.07 (with steps of 10,000 a
# server that holds 79,000 deliveries/s is read as holding 70,000).
sweep="$(n 40000),$(n 50000),$(n 60000),$(n 65000),$(n 70000),$(n 75000),$(n 80000),$(n 85000),$(n 90000),$(n 100000)"
# shellcheck disable=SC2086
if [ "$plan" = 100k ]; then
	# 100,000 clients in one open channel over six UAs, a system message
	# to all of them every 10 s through nginx and the API.
	bench room $real --label "kaiwa, 100k" --open --conns "$(n 100000)" --rate 0.1 --publish-via api \
		--api "https://127.0.0.1:$nginx_https/v1/api" --payload 100 --duration 30s --drain 20s \
		--connect-concurrency 256 --deadline 15m
else
	bench idle $real --label kaiwa --conns "$(n 10000)" --duration 5s --connect-concurrency 128
	# The same with signed tokens the benchmark mints (no token lookup).
	bench idle $real --label "kaiwa, signed" --signed --conns "$(n 10000)" --duration 5s --connect-concurrency 128
	bench idle $bare --label bare --conns "$(n 10000)" --duration 5s --connect-concurrency 128
	bench fanout $real --label kaiwa --conns "$(n 5000)" --channels 50 --deliveries "$sweep" --sweep-max-p99 100ms --payload 100 --duration 5s
	# The same with the game server publishing: system messages through
	# nginx and the tenant API.
	bench fanout $real --label kaiwa --publish-via api --api "https://127.0.0.1:$nginx_https/v1/api" --conns "$(n 5000)" --channels 50 --deliveries "$(n 40000)" --payload 100 --duration 5s
	bench fanout $bare --label bare --conns "$(n 5000)" --channels 50 --deliveries "$sweep" --sweep-max-p99 100ms --payload 100 --duration 5s
	# The game server's system messages alone: 5,000 posts/s through nginx
	# and one API process, one client per channel, every post in the log;
	# then the same gathered into batches of up to 50 (POST /messages/batch).
	# The tenant "bench-system" has its API rate lifted (the default, 2,000
	# calls/s, would refuse the posts one by one): what is measured is the
	# path's capacity and cost.
	if [ -z "$only" ] || [[ "fanout kaiwa, system" =~ $only ]]; then
		$kaiwa tenant create bench-system --mysql-dsn "$dsn" >/dev/null 2>&1 || true
		$kaiwa tenant settings bench-system --set '{"api_rate":100000,"api_burst":100000}' --mysql-dsn "$dsn" --nats-url "$nats_url" >/dev/null
	fi
	bench fanout $real --label "kaiwa, system" --tenant bench-system --publish-via api --api "https://127.0.0.1:$nginx_https/v1/api" --conns "$(n 50)" --channels "$(n 50)" --rate "$(n 5000)" --payload 100 --duration 8s --check-log
	bench fanout $real --label "kaiwa, system" --tenant bench-system --publish-via api --api "https://127.0.0.1:$nginx_https/v1/api" --api-batch 50 --conns "$(n 50)" --channels "$(n 50)" --rate "$(n 5000)" --payload 100 --duration 8s --check-log
	bench room $real --label kaiwa --open --conns "$(n 2000)" --rate 10 --payload 100 --duration 10s
	bench room $bare --label bare --conns "$(n 2000)" --rate 10 --payload 100 --duration 10s
	bench room $real --label "kaiwa ×2" --open --conns "$(n 20000)" --rate 1 --payload 100 --duration 10s --connect-concurrency 128
	bench room $bare --label "bare ×2" --conns "$(n 20000)" --rate 1 --payload 100 --duration 10s --connect-concurrency 128
	bench dm $real --label kaiwa --conns "$(n 2000)" --rate "$(n 1000)" --payload 100 --duration 5s
	# The log path: 10,000 chat messages/s, each into MySQL.
	bench fanout $real --label "kaiwa, log" --conns "$(n 2500)" --channels "$(n 1250)" --rate "$(n 10000)" --payload 100 --duration 8s --check-log
	bench mixed $mixed --label "kaiwa v1+v2" --conns "$(n 5000)" --channels 50 --deliveries "$(n 40000)" --payload 100 --duration 5s
	# 10,000 clients cut at once: all back through nginx, TLS, the token
	# lookup and resume.
	bench storm $real --label kaiwa --conns "$(n 10000)" --channels 100 --duration 60s --connect-concurrency 256
	# Storms with talk going on: v1 clients lose what is said while they
	# are away, v2 clients resume it.
	bench storm $real --label "kaiwa v1, talking" --conns "$(n 2000)" --channels 20 --rate 100 --duration 9s --drain 3s --connect-concurrency 256
	bench storm $v2 --label "kaiwa v2, talking" --conns "$(n 2000)" --channels 20 --rate 100 --duration 9s --connect-concurrency 256
	# The same servers reached directly, without nginx and TLS.
	bench idle $direct --label "kaiwa direct" --conns "$(n 19000)" --duration 5s --connect-concurrency 128
	bench idle $bare_direct --label "bare direct" --conns "$(n 19000)" --duration 5s --connect-concurrency 128
	bench fanout $direct --label "kaiwa direct" --conns "$(n 5000)" --channels 50 --deliveries "$sweep" --sweep-max-p99 100ms --payload 100 --duration 5s
	bench fanout $bare_direct --label "bare direct" --conns "$(n 5000)" --channels 50 --deliveries "$sweep" --sweep-max-p99 100ms --payload 100 --duration 5s
	bench room $direct --label "kaiwa direct" --open --conns "$(n 2000)" --rate 10 --payload 100 --duration 10s
	bench room $bare_direct --label "bare direct" --conns "$(n 2000)" --rate 10 --payload 100 --duration 10s
fi

stop_all
say "results in $results"
{
	$kaiwa bench table --results "$results" --targets
	echo
	$kaiwa bench table --results "$results"
} >"$out/tables.md"
cat "$out/tables.md"

if [ "$write" = 1 ]; then
	doc=docs/benchmarks.md
	tmp="$out/benchmarks.md"
	cp "$doc" "$tmp"
	$kaiwa bench table --results "$results" --doc "$tmp"
	$kaiwa bench table --results "$results" --doc "$tmp" --section targets --targets
	# Against the previous recorded run, then this run becomes the one recorded.
	$kaiwa bench table --results "$results" --doc "$tmp" --section previous --previous docs/benchmarks.jsonl
	grep '^{' "$results" >"$out/benchmarks.jsonl"
	$kaiwa bench table --doc "$tmp" --section machine --text <(echo "$machine")
	$kaiwa bench table --doc "$tmp" --section commands --text <(
		echo '```sh'
		echo "# The stack, each in its own process (DSN=root@tcp(127.0.0.1:3306)/kaiwa_bench, migrated; RUN=var/bench/run):"
		echo "bin/kaiwa nats --listen 127.0.0.1:$nats_port --store var/bench/nats              # NATS_PID"
		echo "bin/kaiwa api --listen unix:\$RUN/api-v1.sock --mysql-dsn \$DSN --nats-url $nats_url --logwriter --log-level warn   # API_PID"
		echo "bin/kaiwa ua --listen unix:\$RUN/ua-v1-\$I.sock --nats-url $nats_url --log-level warn   # for I in 0..$((uas - 1)); UA_PIDS: --pid ua=PID for each"
		echo "bin/kaiwa ua --version v2 --listen unix:\$RUN/ua-v2-0.sock --nats-url $nats_url --log-level warn   # V2_PID"
		echo "bin/kaiwa bench bare --listen unix:var/bench/run-bare/ua-v1-0.sock              # BARE_PID"
		echo "bin/kaiwa ua --listen 127.0.0.1:$ua1_port --nats-url $nats_url --log-level warn   # UAD_PID (direct)"
		echo "bin/kaiwa bench bare --listen 127.0.0.1:$bare_port                               # BARED_PID (direct)"
		echo "# nginx in front of each (api-v2.sock and ua-v2-1.sock link to v2's one API and UA; run-bare/ua-v1-1.sock to the bare server):"
		echo "bin/kaiwa nginx-config --prefix var/bench/nginx --sockets \$RUN --http 127.0.0.1:$nginx_http --https 127.0.0.1:$nginx_https --self-signed var/bench/tls --ua-per-version $uas --workers $nginx_workers --per-ip-conns -1 --per-ip-upgrade-rate -1 --out nginx.conf"
		echo "bin/kaiwa nginx-config --prefix var/bench/nginx-bare --sockets var/bench/run-bare --http 127.0.0.1:$bare_http --https 127.0.0.1:$bare_https --self-signed var/bench/tls --ua-per-version $uas --workers $nginx_workers --per-ip-conns -1 --per-ip-upgrade-rate -1 --out nginx.conf"
		echo "# KAIWA_NGINX and BARE_NGINX: --pid nginx=PID for each nginx's master and workers."
		echo "# Before the 'kaiwa, system' rows, their tenant's API rate is lifted:"
		echo "bin/kaiwa tenant create bench-system --mysql-dsn \$DSN; bin/kaiwa tenant settings bench-system --set '{\"api_rate\":100000,\"api_burst\":100000}' --mysql-dsn \$DSN --nats-url $nats_url"
		echo "# The runs, in this order:"
		cat "$commands"
		echo '```'
	)
	cp "$tmp" "$doc"
	cp "$out/benchmarks.jsonl" docs/benchmarks.jsonl
	say "wrote $doc and docs/benchmarks.jsonl"
fi
