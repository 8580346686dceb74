#!/usr/bin/env bash
# bench/compare.sh — `make bench-compare`: Switchboard against Debian's
# Prosody and ejabberd on this machine, with cmd/xmppbench as the load.
#
#   1. installs prosody and ejabberd (apt) if missing and stops the system
#      instances the packages may have started;
#   2. builds switchboard, xmppbench and the report, while step 1 runs;
#   3. per seed (the Switchboard configurations share one), once, all
#      side by side: a fresh instance, the chat accounts registered
#      in-band, the others too or (Prosody, ejabberd) copied from the
#      first, the presence contacts subscribed (Prosody: its rosters
#      written), stopped; its data directory is the seed every measured
#      run starts from;
#   4. per group of scenarios × run × server (the server order rotates run
#      by run; main and idle run back to back per server, see stages): a
#      fresh process on a copy of the seed, its own config and loopback
#      port, xmppbench --pid against it, the process stopped;
#   5. one more chat run per Switchboard config with a CPU profile
#      (SWITCHBOARD_CPUPROFILE), outside the measured runs;
#   6. bench/report: medians of the runs, written to docs/performance.md
#      with the machine it ran on and the profiles' top functions.
#
# Every server, every xmppbench call and every ejabberdctl dump or load is
# started by this script (while seeding, by one of its subshells, whose
# trap stops it) and is stopped by PID when the script ends, however it
# ends. Only loopback. Needs bash 5.1
# or later (wait -n -p).
#
# Knobs (environment), defaults in brackets:
#   BENCH_RUNS [3]        runs per scenario and server (the table: medians)
#   BENCH_SERVERS         [switchboard switchboard-archive prosody ejabberd]
#   BENCH_GROUPS          [main idle presence idle100k] (see group_scenarios)
#   BENCH_DURATION [3s], BENCH_WARMUP [1s]   chat and MUC windows
#   BENCH_IDLE_SESSIONS [10000], BENCH_IDLE_MANY [100000] (sessions of the
#   idle100k group: the idle accounts, up to 10 resources each),
#   BENCH_LOGINS [2000], BENCH_TLS_LOGINS [500],
#   BENCH_LOGIN_CONCURRENCY [200]
#   BENCH_OUT [docs/performance.md]
#   BENCH_WORK            scratch directory [a new mktemp -d under /tmp]
#   BENCH_KEEP=1          keep it (raw JSON per run, server logs)
#   BENCH_PORT_BASE [27000]   first loopback port tried (each seed picks
#                             from a range of 100 of its own from there,
#                             the measured runs after those ranges)
#   BENCH_SCENARIO_TIMEOUT [180]  seconds per xmppbench call outside seeding
#   BENCH_SEED_TIMEOUT [600]      seconds per xmppbench call while seeding
#
# The defaults finish in about 16 minutes on 2 cores as on a fresh machine
# (14 min 36 s to 15 min 58 s in the last tables; the breakdown below was
# measured at 16 min 33 s to 16 min 57 s): the peers' installation (apt) and
# the first build (module downloads) at the same time, about a minute;
# seeding 1.5, the servers side by side, most of it ejabberd's
# subscriptions; each of the 3 runs ~4.3; the idle100k group's single run,
# 14 to 54 s with the 19,000 sessions a 20,000-descriptor hard limit
# allows, an estimated 2 minutes with 100,000. BENCH_RUNS=1 takes about 7.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

RUNS=${BENCH_RUNS:-3}
SERVERS=${BENCH_SERVERS:-"switchboard switchboard-archive prosody ejabberd"}
GROUPS_=${BENCH_GROUPS:-"main idle presence idle100k"}
DURATION=${BENCH_DURATION:-3s}
WARMUP=${BENCH_WARMUP:-1s}
IDLE_SESSIONS=${BENCH_IDLE_SESSIONS:-10000}
IDLE_MANY=${BENCH_IDLE_MANY:-100000}
# Local addresses the idle100k sessions connect from: one loopback address
# has ~28,000 ephemeral ports (ip_local_port_range); all of 127/8 is on lo.
IDLE_MANY_SOURCES=127.0.0.1-127.0.0.8
LOGINS=${BENCH_LOGINS:-2000}
TLS_LOGINS=${BENCH_TLS_LOGINS:-500}
OUT=${BENCH_OUT:-docs/performance.md}
DOMAIN=localhost
CHAT_USERS=200       # the target scenario: 200 users in pairs
PRESENCE_USERS=1000  # the target scenario: 1,000 users with 20 mutual contacts
PRESENCE_CONTACTS=20
MUC_SENDERS=10
STEADY_RATE=5000     # msgs/s for the latency row
# Parallel logins. xmppbench counts a login cycle until the server has
# closed the stream, and ejabberd takes ~100 ms to close an authenticated
# one: with few workers its rate would measure that wait, not the CPU.
LOGIN_CONCURRENCY=${BENCH_LOGIN_CONCURRENCY:-200}
SCENARIO_TIMEOUT=${BENCH_SCENARIO_TIMEOUT:-180}  # seconds, per xmppbench call
# Seeds run side by side (seed_all) and share the CPU: their calls get longer.
SEED_TIMEOUT=${BENCH_SEED_TIMEOUT:-600}

T0=$(date +%s)
log() { printf '[%4ds] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# has_group NAME: whether NAME is among the groups to run.
has_group() { [[ " $GROUPS_ " == *" $1 "* ]]; }

# ---------------------------------------------------------------- cleanup

SB_PROFILE=""   # set while starting a Switchboard that writes a CPU profile
SB_SOURCE=""    # the commit built
SERVER_PID=""   # the server process being measured (beam.smp for ejabberd)
RUNNER_PID=""   # what we started (ejabberdctl's shell for ejabberd)
LOAD_PID=""     # the xmppbench (or ejabberdctl) call in progress
SEED_PIDS=""    # the subshells seeding servers side by side (seed_all)
BUILD_PID=""    # the build running while the peers install
WORK=""

# tree PID: PID and its descendants, parents first.
tree() {
	local kid
	echo "$1"
	for kid in $(pgrep -P "$1" 2>/dev/null || true); do tree "$kid"; done
}

# stop_server: SIGTERM to the server (Prosody and Switchboard shut down
# cleanly on it, and so does the Erlang VM), SIGKILL after 10 s; then the
# same for whatever is left of what we started.
stop_server() {
	local pid=$SERVER_PID runner=$RUNNER_PID p
	[[ -n $runner ]] || return 0
	local pids
	pids=$(tree "$runner")
	[[ -n $pid ]] || pid=$runner
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 100); do
		alive "$pid" || break
		sleep 0.1
	done
	for p in $pids; do
		alive "$p" || continue
		kill -TERM "$p" 2>/dev/null || true
		for _ in $(seq 50); do
			alive "$p" || break
			sleep 0.1
		done
		if alive "$p"; then
			log "pid $p did not stop within 5 s of SIGTERM; killing it"
			kill -KILL "$p" 2>/dev/null || true
		fi
	done
	wait "$runner" 2>/dev/null || true
	# Forgotten only now: a stop cut short by a signal is done again by
	# the trap that signal runs.
	SERVER_PID="" RUNNER_PID=""
}

# alive PID: the process exists and is not a zombie.
alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z ]]
}

# stop_load_and_server: stops the xmppbench call and the server in
# progress, if any.
stop_load_and_server() {
	if [[ -n $LOAD_PID ]]; then
		# Its whole tree: a function run in the background is a
		# subshell around the command, and timeout's child runs in a
		# process group of its own.
		local p
		for p in $(tree "$LOAD_PID"); do kill -TERM "$p" 2>/dev/null || true; done
		wait "$LOAD_PID" 2>/dev/null || true
	fi
	stop_server
}

cleanup() {
	local rc=$?
	# Ignored, not reset: a second Ctrl-C or TERM must not cut short the
	# stops below and leave a server or the load running.
	trap '' INT TERM
	local p
	# The build's go commands too, not only its subshell.
	for p in $SEED_PIDS ${BUILD_PID:+$(tree "$BUILD_PID")}; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $SEED_PIDS $BUILD_PID; do wait "$p" 2>/dev/null || true; done
	stop_load_and_server
	if [[ -n $WORK && -d $WORK ]]; then
		if [[ ${BENCH_KEEP:-0} == 1 || $rc != 0 ]]; then
			log "scratch directory kept: $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- install

install_peers() {
	local need=()
	command -v prosody >/dev/null || need+=(prosody)
	command -v ejabberdctl >/dev/null || need+=(ejabberd)
	if ((${#need[@]})); then
		[[ $(id -u) == 0 ]] || die "need root to install ${need[*]} (apt-get)"
		log "installing ${need[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
		local svc
		for svc in "${need[@]}"; do stop_system_instance "$svc"; done
	fi
	command -v setpriv >/dev/null || die "setpriv (util-linux) is missing"
	local svc
	for svc in prosody ejabberd; do
		if is_system_instance_running "$svc"; then
			log "warning: Debian's own $svc instance is running and will compete for the CPU"
		fi
	done
}

is_system_instance_running() {
	case $1 in
	prosody) pgrep -u prosody -f '/usr/bin/prosody' >/dev/null 2>&1 && ! pgrep -u prosody -f -- '--config /tmp/' >/dev/null 2>&1 ;;
	ejabberd) pgrep -u ejabberd -f 'ejabberd@' >/dev/null 2>&1 && ! pgrep -u ejabberd -f 'benchejd' >/dev/null 2>&1 ;;
	esac
}

# The packages' postinst may start (and enable) the system daemons: stop
# and disable them; this script runs its own instances.
stop_system_instance() {
	local svc=$1
	if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
		systemctl disable --now "$svc" >/dev/null 2>&1 || true
	else
		[[ -x /etc/init.d/$svc ]] && /etc/init.d/"$svc" stop >/dev/null 2>&1 || true
		command -v update-rc.d >/dev/null && update-rc.d "$svc" disable >/dev/null 2>&1 || true
	fi
	local pidfile pid
	case $svc in
	prosody) pidfile=/run/prosody/prosody.pid ;;
	ejabberd) pidfile=/run/ejabberd/ejabberd.pid ;;
	esac
	if [[ -s $pidfile ]]; then
		pid=$(cat "$pidfile")
		kill -TERM "$pid" 2>/dev/null || true
	fi
	# Debian's ejabberd registers with an epmd it starts as its user.
	if [[ $svc == ejabberd ]]; then
		for pid in $(pgrep -u ejabberd -x epmd 2>/dev/null || true); do kill -TERM "$pid" 2>/dev/null || true; done
	fi
}

# ---------------------------------------------------------------- servers

# port_free PORT: nothing accepts on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# port_unused PORT: no socket of any state (TIME_WAIT included: ejabberd
# binds without SO_REUSEADDR) uses PORT.
port_unused() {
	port_free "$1" || return 1
	if command -v ss >/dev/null; then
		[[ -z $(ss -Htan "( sport = :$1 )" 2>/dev/null) ]]
	fi
}

# pick_port: sets PICKED to the next unused port after the last one
# picked. Every instance gets a port of its own, below the ephemeral range
# (/proc/sys/net/ipv4/ip_local_port_range) so that no client socket holds it.
PORT_BASE=${BENCH_PORT_BASE:-27000}
NEXT_PORT=$PORT_BASE
pick_port() {
	while ! port_unused "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
	# A seed stays in its range (PORT_LIMIT): the seeds pick side by side.
	((NEXT_PORT < ${PORT_LIMIT:-65536})) || die "no free port below ${PORT_LIMIT:-65536}"
	PICKED=$NEXT_PORT
	NEXT_PORT=$((NEXT_PORT + 1))
}

# ejabberd_vm RUNNER: the PID of ejabberd's Erlang VM among RUNNER's
# descendants (ejabberdctl also runs a short-lived VM of its own first).
ejabberd_vm() {
	local p
	for p in $(tree "$1"); do
		[[ $(cat "/proc/$p/comm" 2>/dev/null) == beam.smp ]] || continue
		if [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") == *" -s ejabberd"* ]]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# prepare_instance SERVER DIR: config files for SERVER in DIR, from the
# templates in bench/; sets PORT.
prepare_instance() {
	local server=$1 dir=$2
	rm -rf "$dir"
	mkdir -p "$dir"
	chmod 755 "$dir"
	case $server in
	switchboard | switchboard-archive)
		pick_port
		PORT=$PICKED
		local archive=never
		[[ $server == switchboard-archive ]] && archive=always
		mkdir -p "$dir/data"
		sed -e "s|@DIR@|$dir|g; s|@C2S_PORT@|$PORT|g; s|@DOMAIN@|$DOMAIN|g; s|@ARCHIVE@|$archive|g" \
			bench/switchboard.toml >"$dir/switchboard.toml"
		;;
	prosody)
		pick_port
		PORT=$PICKED
		mkdir -p "$dir/data" "$dir/certs"
		sed -e "s|@DIR@|$dir|g; s|@C2S_PORT@|$PORT|g; s|@DOMAIN@|$DOMAIN|g; s|@CERT@|$WORK/tls/cert.pem|g; s|@KEY@|$WORK/tls/key.pem|g" \
			bench/prosody.cfg.lua >"$dir/prosody.cfg.lua"
		chown -R prosody:prosody "$dir"
		;;
	ejabberd)
		pick_port
		PORT=$PICKED
		pick_port
		local dist=$PICKED
		mkdir -p "$dir/spool" "$dir/logs"
		cat "$WORK/tls/cert.pem" "$WORK/tls/key.pem" >"$dir/cert.pem"
		chmod 600 "$dir/cert.pem"
		sed -e "s|@DIR@|$dir|g; s|@C2S_PORT@|$PORT|g; s|@DOMAIN@|$DOMAIN|g; s|@CERTFILE@|$dir/cert.pem|g" \
			bench/ejabberd.yml >"$dir/ejabberd.yml"
		# ejabberdctl reads this instead of /etc/ejabberd/ejabberdctl.cfg.
		# A fixed distribution port means no epmd is started.
		cat >"$dir/ejabberdctl.cfg" <<-EOF
			ERLANG_NODE=benchejd@localhost
			ERL_DIST_PORT=$dist
			INET_DIST_INTERFACE=127.0.0.1
			ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"
			EJABBERD_PID_PATH=$dir/ejabberd.pid
			EJABBERD_BYPASS_WARNINGS=true
		EOF
		cp /etc/ejabberd/inetrc "$dir/inetrc" 2>/dev/null || echo '{lookup,["file","native"]}.' >"$dir/inetrc"
		chown -R ejabberd:ejabberd "$dir"
		;;
	*) die "unknown server $server" ;;
	esac
}

# data_dir SERVER DIR: the directory holding SERVER's accounts.
data_dir() {
	case $1 in
	ejabberd) echo "$2/spool" ;;
	*) echo "$2/data" ;;
	esac
}

# start_server SERVER DIR: starts SERVER on the instance in DIR, waits
# until its c2s port accepts; sets SERVER_PID and RUNNER_PID. Fails (and
# leaves nothing running) if the server exits or does not listen.
start_server() {
	local server=$1 dir=$2
	case $server in
	switchboard | switchboard-archive)
		env ${SB_PROFILE:+SWITCHBOARD_CPUPROFILE="$SB_PROFILE"} \
			"$WORK/bin/switchboard" --config "$dir/switchboard.toml" serve >>"$dir/server.log" 2>&1 &
		RUNNER_PID=$!
		SERVER_PID=$RUNNER_PID
		;;
	prosody)
		# setpriv, not runuser/su: PAM would reset the descriptor limit.
		(cd "$dir" && exec setpriv --reuid=prosody --regid=prosody --init-groups \
			env HOME="$dir" prosody -F --config "$dir/prosody.cfg.lua") >>"$dir/server.log" 2>&1 &
		RUNNER_PID=$!
		SERVER_PID=$RUNNER_PID
		;;
	ejabberd)
		ejabberdctl_in 0 "$dir" foreground >>"$dir/server.log" 2>&1 &
		RUNNER_PID=$!
		SERVER_PID=""
		;;
	esac
	local i
	for i in $(seq 600); do
		if ! alive "$RUNNER_PID"; then
			tail -5 "$dir/server.log" >&2 || true
			log "$server exited while starting (log: $dir/server.log)"
			stop_server
			return 1
		fi
		if [[ $server == ejabberd && -z $SERVER_PID ]]; then
			SERVER_PID=$(ejabberd_vm "$RUNNER_PID" || true)
		fi
		if [[ -n $SERVER_PID ]] && ! port_free "$PORT"; then
			return 0
		fi
		sleep 0.1
	done
	log "$server did not listen on 127.0.0.1:$PORT within 60 s (log: $dir/server.log)"
	stop_server
	return 1
}

# ---------------------------------------------------------------- load

# The scenarios: xmppbench arguments per scenario key. The keys are the
# file names bench/report reads; the metric names are xmppbench's.
scenario_args() {
	local common=(--duration "$DURATION" --warmup "$WARMUP")
	case $1 in
	chat_sat) echo "${common[*]} --users $CHAT_USERS --prefix c chat --rate 0 --window 8 --size 32" ;;
	chat_steady) echo "${common[*]} --users $CHAT_USERS --prefix c chat --rate $STEADY_RATE --window 8 --size 32" ;;
	# Clients with stream management, as mobile and desktop clients
	# run: each asks for an acknowledgement every 5 stanzas (slixmpp's
	# default) and answers the server's requests.
	# bench/report/main.go's method text says "every fifth stanza": change both.
	chat_sm) echo "${common[*]} --users $CHAT_USERS --prefix c --sm --sm-request 5 chat --rate 0 --window 8 --size 32" ;;
	login_tcp) echo "--users $CHAT_USERS --prefix c --concurrency $LOGIN_CONCURRENCY login --logins $LOGINS" ;;
	# X25519 only: the key exchange the peers' OpenSSL 3.0 negotiates.
	# Go's default offer puts the ML-KEM hybrid first, which Switchboard
	# alone would then pay for (and the client for every server).
	login_starttls) echo "--tls starttls --tls-curves x25519 --users $CHAT_USERS --prefix c --concurrency $LOGIN_CONCURRENCY login --logins $TLS_LOGINS" ;;
	muc_50) echo "${common[*]} --users 50 --prefix c muc --occupants 50 --senders $MUC_SENDERS --room bench50 --window 4 --size 32" ;;
	muc_200) echo "${common[*]} --users 200 --prefix c muc --occupants 200 --senders $MUC_SENDERS --room bench200 --window 4 --size 32" ;;
	idle) echo "--duration 2s --users $IDLE_SESSIONS --prefix i idle --sessions $IDLE_SESSIONS --keepalive 0s" ;;
	idle_many) echo "--duration 2s --users $IDLE_SESSIONS --prefix i --source $IDLE_MANY_SOURCES --concurrency 64 idle --sessions $IDLE_MANY --keepalive 0s" ;;
	chat_churn) scenario_args chat_sat ;;
	# The seed's rosters hold the contacts (set up and checked while
	# seeding): a run measures the storm alone, on an idle server.
	presence) echo "--users $PRESENCE_USERS --prefix p presence --contacts $PRESENCE_CONTACTS --setup=false --presence-timeout 2m" ;;
	*) die "unknown scenario $1" ;;
	esac
}

# Groups: each is one fresh server process; its scenarios run in order.
# main: the fresh-process rows. idle: RSS per idle session, then — the
# same process, after those sessions logged in and out — chat again, for
# the churn row (compared with chat_sat of a fresh process). presence: the
# login storm on its own fresh process. idle100k: 100,000 idle sessions
# (the idle accounts with several resources each), Switchboard as shipped
# only and once (group_servers, group_runs): the target is absolute and
# the peers have no figure for it.
group_scenarios() {
	case $1 in
	main) echo "chat_sat chat_steady chat_sm login_tcp login_starttls muc_50 muc_200" ;;
	idle) echo "idle chat_churn" ;;
	presence) echo "presence" ;;
	idle100k) echo "idle_many" ;;
	*) die "unknown group $1" ;;
	esac
}

# stages GROUPS...: the order groups run in. main and idle, when both
# run, form one stage "main+idle": each server's two groups run back to
# back, so that the churn row's two chats (chat_sat of main, chat_churn of
# idle) are measured close together: adjacent when idle goes first (even
# runs), with the rest of main and the idle logins between them when main
# goes first (odd runs; ~30 s for Switchboard, ~70 s for Prosody). This
# machine's speed drifts by several percent over minutes (the same work,
# the same system calls per message, more CPU time per message), and the
# row is the ratio of the two.
stages() {
	local g out=()
	local both=0
	[[ " $* " == *" main "* && " $* " == *" idle "* ]] && both=1
	for g in "$@"; do
		if ((both)) && [[ $g == main || $g == idle ]]; then
			[[ " ${out[*]} " == *" main+idle "* ]] || out+=("main+idle")
			continue
		fi
		out+=("$g")
	done
	echo "${out[*]}"
}

# group_servers GROUP SERVERS...: the servers GROUP runs on.
group_servers() {
	local group=$1 s
	shift
	for s in "$@"; do
		[[ $group != idle100k || $s == switchboard-archive ]] && echo "$s"
	done
}

# group_runs GROUP: how many runs GROUP gets.
group_runs() {
	case $1 in
	idle100k) echo 1 ;;
	*) echo "$RUNS" ;;
	esac
}

# as_load CMD ARGS...: CMD as the load in progress, which cleanup stops
# (with its whole tree), waited for; its exit status.
as_load() {
	"$@" &
	LOAD_PID=$!
	local rc=0
	wait "$LOAD_PID" || rc=$?
	LOAD_PID=""
	return "$rc"
}

# xmppbench ARGS...: one call, bounded in time, killable by cleanup.
xmppbench() {
	as_load timeout --kill-after=10 "$SCENARIO_TIMEOUT" "$WORK/bin/xmppbench" --addr "127.0.0.1:$PORT" --domain "$DOMAIN" "$@"
}

# seed_of SERVER: whose seed SERVER starts from. Both Switchboard configs
# share one: the archive mode is configuration, not data.
seed_of() {
	case $1 in
	switchboard-archive) echo switchboard ;;
	*) echo "$1" ;;
	esac
}

# seed SERVER: a fresh instance with every account made (registered, or
# copied from the first: see below) and the presence contacts subscribed,
# stopped; its data is $WORK/seed/SERVER.
seed() {
	local server=$1 dir="$WORK/inst/$1-seed" t=$SECONDS
	local SCENARIO_TIMEOUT=$SEED_TIMEOUT # seen by xmppbench (dynamic scope)
	mkdir -p "$WORK/seed"
	rm -f "$WORK/seed/$server.nopresence"
	prepare_instance "$server" "$dir"
	start_server "$server" "$dir" || die "$server: the seed instance did not start"
	local lg="$dir/xmppbench.log" step=$SECONDS
	xmppbench --users "$CHAT_USERS" --prefix c --register login --logins 1 >>"$lg" 2>&1 ||
		die "$server: registering the chat accounts failed (see $lg)"
	local idle=0 presence=0
	if has_group idle || has_group idle100k; then idle=1; fi
	has_group presence && presence=1
	# The peers' other accounts are copies of c0's (the same password,
	# so the same stored keys): Prosody hashes passwords on one core,
	# about 130 registrations/s here, and ejabberd takes ~14 ms of CPU
	# per registration. A login checks the first copy; the presence
	# scenario's setup then logs in to every presence account.
	local accounts=()
	((idle)) && accounts+=(i "$IDLE_SESSIONS")
	((presence)) && accounts+=(p "$PRESENCE_USERS")
	if [[ $server == prosody || $server == ejabberd ]] && ((${#accounts[@]})); then
		if [[ $server == prosody ]]; then
			# Written while Prosody is stopped, with the presence
			# accounts' rosters as Prosody would write them (it
			# confirms about 90 subscriptions/s); ejabberd's are
			# subscribed for real below.
			stop_server
			write_prosody_accounts "$dir" "${accounts[@]}"
			((presence)) && write_prosody_rosters "$dir"
			chown -R prosody:prosody "$dir/data"
			start_server "$server" "$dir" || die "$server: the seed instance did not start again"
		else
			load_ejabberd_accounts "$dir" "${accounts[@]}"
		fi
		xmppbench --users 1 --prefix "${accounts[0]}" login --logins 1 >>"$lg" 2>&1 ||
			die "$server: logging in to a copied account failed (see $lg)"
	elif ((idle)); then
		xmppbench --users "$IDLE_SESSIONS" --prefix i --register --concurrency 32 login --logins 1 >>"$lg" 2>&1 ||
			die "$server: registering the idle accounts failed (see $lg)"
	fi
	log "  $server: accounts made in $((SECONDS - step)) s"
	step=$SECONDS
	if ((presence)); then
		# Registers (Switchboard; the peers' accounts are written or
		# loaded above) and subscribes (real subscription stanzas, each
		# side answering), or checks the rosters written (Prosody); the
		# storm it then runs is a warm-up.
		local register=(--register)
		[[ $server == switchboard ]] || register=()
		if ! xmppbench --users "$PRESENCE_USERS" --prefix p "${register[@]}" presence --contacts "$PRESENCE_CONTACTS" \
			--presence-timeout 4m >>"$lg" 2>&1; then
			log "$server: setting up the presence contacts failed (see $lg); its presence row is skipped"
			echo "presence setup failed: $(tail -1 "$lg")" >"$WORK/seed/$server.nopresence"
		else
			log "  $server: presence accounts and contacts set up in $((SECONDS - step)) s"
		fi
	fi
	stop_server
	rm -rf "$WORK/seed/$server"
	cp -a "$(data_dir "$server" "$dir")" "$WORK/seed/$server"
	log "seeded $server in $((SECONDS - t)) s"
}

# seed_all SERVERS...: seeds the servers side by side, each in a subshell
# of its own (its own server process, load and range of ports; stopped by
# its EXIT trap however it ends). Seeding is not measured, and it is most
# of the time before the first run: Prosody runs on one core, and
# ejabberd's subscriptions leave CPU idle too.
seed_all() {
	local s i=0 rc finished
	local -A seeding=() # PID → server
	for s in "$@"; do
		(
			NEXT_PORT=$((PORT_BASE + 100 * i))
			PORT_LIMIT=$((NEXT_PORT + 100))
			trap 'seed_cleanup' EXIT
			# TERM only: a background subshell starts with INT
			# ignored, for good; cleanup sends TERM on any signal.
			trap 'exit 143' TERM
			seed "$s"
		) &
		SEED_PIDS+=" $!" # first: a signal now must stop this seed too
		seeding[$!]=$s
		i=$((i + 1))
	done
	# The first seed to fail ends the script (cleanup stops the others).
	while ((${#seeding[@]})); do
		rc=0 finished=""
		wait -n -p finished "${!seeding[@]}" || rc=$?
		# Forgotten before anything else: its PID is reaped, and may
		# be another process's by the time cleanup would signal it.
		local server=${finished:+${seeding[$finished]}}
		[[ -n $finished ]] && unset "seeding[$finished]"
		SEED_PIDS=" ${!seeding[*]}"
		((rc == 0)) || die "seeding ${server:+$server }failed (status $rc)"
	done
	SEED_PIDS=""
	# Measured instances take ports after every seed's range.
	NEXT_PORT=$((PORT_BASE + 100 * i))
}

# seed_cleanup: a seeding subshell's EXIT trap.
seed_cleanup() {
	local rc=$?
	# Ignored, not reset: the main shell's cleanup signals the seeds
	# again, which must not cut this short.
	trap '' TERM
	stop_load_and_server
	exit "$rc"
}

# ejabberdctl_in SECS DIR ARGS...: ejabberdctl ARGS against the instance in
# DIR, for at most SECS seconds (0: no limit).
ejabberdctl_in() {
	local secs=$1 dir=$2
	shift 2
	local limit=()
	# TERM, then KILL 10 s later: cleanup waits for it.
	if ((secs > 0)); then limit=(timeout --kill-after=10 "$secs"); fi
	(cd "$dir" && exec "${limit[@]}" setpriv --reuid=ejabberd --regid=ejabberd --init-groups \
		env HOME="$dir" ejabberdctl --config-dir "$dir" --spool "$dir/spool" --logs "$dir/logs" "$@")
}

# load_ejabberd_accounts DIR PREFIX N [PREFIX N]...: accounts PREFIX0 ..
# PREFIX(N-1) in the running ejabberd's database, each a copy of the
# in-band registered c0's passwd record (its SCRAM keys, salt and
# iterations), through a Mnesia text dump (dump_table, then load).
load_ejabberd_accounts() {
	local dir=$1 rec head i
	shift
	as_load ejabberdctl_in 120 "$dir" dump_table "$dir/passwd.txt" passwd >/dev/null ||
		die "ejabberd: dumping the passwd table failed"
	# The header is the first term: up to the first line that ends one.
	head=$(awk '{ print } /\.$/ { exit }' "$dir/passwd.txt")
	# A record spans lines: from c0's key to the line that ends it.
	rec=$(awk -v key='{<<"c0">>,<<"'"$DOMAIN"'">>}' 'index($0, key) { f = 1 } f { printf "%s", $0 } f && /}}\.$/ { exit }' "$dir/passwd.txt")
	[[ $head == "{tables,"* && $rec == "{passwd,{<<\"c0\">>,"*"}}." ]] ||
		die "ejabberd: no passwd record of c0 in $dir/passwd.txt"
	{
		echo "$head"
		while (($#)); do
			for ((i = 0; i < $2; i++)); do
				echo "${rec/<<\"c0\">>/<<\"$1$i\">>}"
			done
			shift 2
		done
	} >"$dir/accounts.txt"
	chown ejabberd:ejabberd "$dir/accounts.txt"
	as_load ejabberdctl_in 300 "$dir" load "$dir/accounts.txt" >/dev/null ||
		die "ejabberd: loading the accounts failed"
}

# write_prosody_accounts DIR PREFIX N [PREFIX N]...: accounts PREFIX0 ..
# PREFIX(N-1) in Prosody's internal storage (data/HOST/accounts/USER.dat),
# each a copy of the in-band registered c0's: the same password, salt and
# stored keys. Prosody must be stopped; the caller gives the files to
# prosody.
write_prosody_accounts() {
	local adir="$1/data/$DOMAIN/accounts" i account
	shift
	[[ -s $adir/c0.dat ]] || die "prosody: no account c0 to copy in $adir"
	account=$(<"$adir/c0.dat")
	while (($#)); do
		for ((i = 0; i < $2; i++)); do
			printf '%s\n' "$account" >"$adir/$1$i.dat" # a builtin: no process per file
		done
		shift 2
	done
}

# write_prosody_rosters DIR: the presence accounts' rosters as Prosody's
# internal storage keeps them (data/HOST/roster/USER.dat), every contact
# at subscription "both": the ring of xmppbench's presence scenario (the
# neighbours at distance 1..R/2 on both sides, the opposite user if R is
# odd). Prosody must be stopped; the caller gives the files to prosody.
write_prosody_rosters() {
	local rdir="$1/data/$DOMAIN/roster"
	mkdir -p "$rdir"
	awk -v n="$PRESENCE_USERS" -v r="$PRESENCE_CONTACTS" -v dom="$DOMAIN" -v dir="$rdir" '
	function item(f, j) {
		printf "\t[\"p%d@%s\"] = {\n\t\t[\"groups\"] = {};\n\t\t[\"subscription\"] = \"both\";\n\t};\n", j, dom > f
	}
	BEGIN {
		for (i = 0; i < n; i++) {
			f = dir "/p" i ".dat"
			printf "return {\n\t[false] = {\n\t\t[\"pending\"] = {};\n\t\t[\"version\"] = 1;\n\t};\n" > f
			for (d = 1; d <= int(r / 2); d++) {
				item(f, (i + d) % n)
				item(f, (i - d + n) % n)
			}
			if (r % 2 == 1) item(f, (i + int(n / 2)) % n)
			printf "};\n" > f
			close(f)
		}
	}'
}

# measure GROUP RUN SERVER: one fresh process on a copy of the seed, the
# group's scenarios against it.
measure() {
	local group=$1 run=$2 server=$3 dir="$WORK/inst/$3-$1-$2" t=$SECONDS
	prepare_instance "$server" "$dir"
	local data
	data=$(data_dir "$server" "$dir")
	rm -rf "$data"
	cp -a "$WORK/seed/$(seed_of "$server")" "$data"
	local sc res=$WORK/results/$server done_=""
	if [[ $group == presence && -e $WORK/seed/$(seed_of "$server").nopresence ]]; then
		mkdir -p "$res/presence"
		cp "$WORK/seed/$(seed_of "$server").nopresence" "$res/presence/run$run.err"
		return 0
	fi
	if ! start_server "$server" "$dir"; then
		for sc in $(group_scenarios "$group"); do
			mkdir -p "$res/$sc"
			echo "the server did not start (log: $dir/server.log)" >"$res/$sc/run$run.err"
		done
		return 0
	fi
	for sc in $(group_scenarios "$group"); do
		mkdir -p "$res/$sc"
		if ! alive "$SERVER_PID"; then
			echo "server exited before this scenario" >"$res/$sc/run$run.err"
			continue
		fi
		settle "$SERVER_PID"
		local h0 h1 ok=0
		h0=$(host_sample)
		# shellcheck disable=SC2046 # the arguments are words
		xmppbench --pid "$SERVER_PID" --json "$res/$sc/run$run.json" $(scenario_args "$sc") \
			>"$res/$sc/run$run.out" 2>&1 || ok=$?
		h1=$(host_sample)
		host_load "$h0" "$h1" >"$res/$sc/run$run.host"
		if ((ok == 0)); then
			done_+=" $sc"
		else
			cp "$res/$sc/run$run.out" "$res/$sc/run$run.err"
			rm -f "$res/$sc/run$run.json"
			log "  $server $sc run $run FAILED: $(tail -1 "$res/$sc/run$run.err")"
		fi
	done
	stop_server
	log "$group run $run $server:$done_ ($((SECONDS - t)) s)"
	if [[ ${BENCH_KEEP:-0} != 1 ]]; then rm -rf "$dir"; fi
}

# cpu_ticks PID: user + system CPU time of PID, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null; }

# settle PID: waits until PID used under 5 % of a core for half a second,
# at most 60 s, so that a scenario does not start while the server still
# works off the previous one's tail (10,000 logouts take Prosody ~20 s).
settle() {
	local pid=$1 hz a b
	hz=$(getconf CLK_TCK)
	a=$(cpu_ticks "$pid") || return 0
	for _ in $(seq 120); do
		sleep 0.5
		b=$(cpu_ticks "$pid") || return 0
		[[ -n $a && -n $b ]] || return 0
		if (((b - a) * 40 < hz)); then return 0; fi
		a=$b
	done
	log "  warning: pid $pid still busy after 60 s"
}

# host_sample: "NS BUSY STEAL CHILDREN SERVER": the time in ns, the busy
# ticks of all CPUs (user, nice, system, irq, softirq), steal ticks, the
# CPU ticks of this shell's reaped children (every finished xmppbench) and
# of the server.
host_sample() {
	local busy steal
	read -r busy steal < <(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $9}' /proc/stat)
	echo "$(date +%s%N) $busy $steal $(awk '{print $16 + $17}' "/proc/$$/stat") $(cpu_ticks "$SERVER_PID" || echo 0)"
}

# host_load SAMPLE0 SAMPLE1: what else ran on the machine in between, in
# percent of one core: other_cpu_pct (neither the server nor xmppbench:
# someone else's processes) and steal_pct (the hypervisor's other guests).
host_load() {
	local hz
	hz=$(getconf CLK_TCK)
	awk -v hz="$hz" -v a="$1" -v b="$2" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		wall = (y[1] - x[1]) / 1e9
		if (wall <= 0) wall = 1
		other = (y[2] - x[2]) - (y[4] - x[4]) - (y[5] - x[5])
		if (other < 0) other = 0
		printf "other_cpu_pct: %.1f\nsteal_pct: %.1f\n", 100 * other / hz / wall, 100 * (y[3] - x[3]) / hz / wall
	}'
}

# profile SERVER: one more chat-at-saturation run on a Switchboard that
# writes a CPU profile of its life (SWITCHBOARD_CPUPROFILE, written at
# shutdown), outside the measured runs; `go tool pprof -top` of it is
# $WORK/profiles/SERVER.txt, for the "Where time goes" section.
profile() {
	local server=$1 dir="$WORK/inst/$1-profile"
	mkdir -p "$WORK/profiles"
	prepare_instance "$server" "$dir"
	rm -rf "$dir/data"
	cp -a "$WORK/seed/$(seed_of "$server")" "$dir/data"
	SB_PROFILE="$dir/cpu.pprof"
	if ! start_server "$server" "$dir"; then
		SB_PROFILE=""
		return 0
	fi
	SB_PROFILE=""
	settle "$SERVER_PID"
	# shellcheck disable=SC2046 # the arguments are words
	xmppbench --pid "$SERVER_PID" --json "$WORK/profiles/$server.json" $(scenario_args chat_sat) \
		>"$WORK/profiles/$server.out" 2>&1 || log "  $server: the profiled chat run failed"
	stop_server
	if [[ -s $dir/cpu.pprof ]]; then
		if go tool pprof -top -nodecount=25 "$WORK/bin/switchboard" "$dir/cpu.pprof" >"$dir/flat.txt" 2>/dev/null &&
			go tool pprof -top -cum -nodecount=40 "$WORK/bin/switchboard" "$dir/cpu.pprof" >"$dir/cum.txt" 2>/dev/null; then
			{
				echo "# by own time (flat)"
				cat "$dir/flat.txt"
				echo
				echo "# by cumulative time (cum)"
				grep -v -e '^File: ' -e '^Build ID: ' -e '^Type: ' -e '^Time: ' -e '^Duration: ' "$dir/cum.txt"
			} >"$WORK/profiles/$server.txt"
		fi
		log "profiled $server"
	else
		log "$server wrote no CPU profile (SWITCHBOARD_CPUPROFILE unsupported?)"
	fi
	if [[ ${BENCH_KEEP:-0} != 1 ]]; then rm -rf "$dir"; fi
}

# rotate N WORDS...: WORDS rotated left by N.
rotate() {
	local n=$1
	shift
	local a=("$@")
	n=$((n % ${#a[@]}))
	echo "${a[@]:n}" "${a[@]:0:n}"
}

# ---------------------------------------------------------------- machine

machine_info() {
	local f=$1 cpu mem
	cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
	mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
	{
		echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
		echo "cpus: $(nproc)"
		echo "cpu model: ${cpu:-unknown}"
		echo "memory: $mem"
		echo "kernel: $(uname -sr)"
		echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
		echo "go: $(go version | awk '{print $3}')"
		echo "switchboard: $("$WORK/bin/switchboard" version 2>/dev/null | head -1), $SB_SOURCE"
		echo "prosody: $(dpkg-query -W -f='${Version}' prosody 2>/dev/null || echo unknown) (Debian package), on $(head -1 "$(command -v prosody)" | sed 's|^#! *||; s|^/usr/bin/env ||')"
		echo "ejabberd: $(dpkg-query -W -f='${Version}' ejabberd 2>/dev/null || echo unknown) (Debian package), Erlang/OTP $(dpkg-query -W -f='${Version}' erlang-base 2>/dev/null || echo unknown)"
		echo "open files limit: $(ulimit -n)"
		echo "runs: $RUNS"
		echo "duration: $DURATION measured after $WARMUP warm-up (chat, muc)"
		echo "chat users: $CHAT_USERS"
		echo "presence users: $PRESENCE_USERS"
		echo "presence contacts: $PRESENCE_CONTACTS"
		echo "idle sessions: $IDLE_SESSIONS"
		echo "idle sessions, many: $IDLE_MANY"
		echo "logins: $LOGINS plain TCP, $TLS_LOGINS STARTTLS, $LOGIN_CONCURRENCY in parallel"
		echo "servers: $SERVERS"
		echo "groups: $GROUPS_"
	} >"$f"
}

# ---------------------------------------------------------------- main

main() {
	[[ $(uname -s) == Linux ]] || die "needs Linux (/proc for CPU and RSS)"
	[[ $(id -u) == 0 ]] || die "run as root: the peers run as their own users (setpriv)"
	((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))) || die "needs bash 5.1 or later (wait -n -p)"
	command -v go >/dev/null || die "go is not installed"

	if [[ -n ${BENCH_WORK:-} ]]; then
		WORK=$BENCH_WORK
		mkdir -p "$WORK"
	else
		WORK=$(mktemp -d /tmp/bench-compare.XXXXXX)
	fi
	chmod 755 "$WORK"
	mkdir -p "$WORK/bin" "$WORK/tls" "$WORK/results" "$WORK/inst"
	log "scratch directory $WORK"

	# The build (on a fresh machine: module downloads and a cold cache)
	# runs while apt installs the peers.
	log "building switchboard, xmppbench and the report"
	# What was built (the tree may change while the benchmark runs).
	SB_SOURCE="commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	git diff --quiet HEAD 2>/dev/null || SB_SOURCE+=" plus uncommitted changes"
	(go build -o "$WORK/bin/switchboard" ./cmd/switchboard &&
		go build -o "$WORK/bin/xmppbench" ./cmd/xmppbench &&
		go build -o "$WORK/bin/report" ./bench/report) &
	BUILD_PID=$!
	install_peers
	local built=0
	wait "$BUILD_PID" || built=$?
	BUILD_PID=""
	((built == 0)) || die "the build failed"
	log "built"

	# Idle sessions need a descriptor each in the server and in the
	# client: raise the limits (root may raise the hard one up to
	# fs.nr_open), else go as far as the hard limit allows and scale the
	# idle scenarios down.
	local need=$((IDLE_MANY + 1000))
	((need > IDLE_SESSIONS + 1000)) || need=$((IDLE_SESSIONS + 1000))
	((need >= 65536)) || need=65536
	if ! ulimit -n "$need" 2>/dev/null; then
		local nr_open
		nr_open=$(cat /proc/sys/fs/nr_open 2>/dev/null || echo "$need")
		((need <= nr_open)) || need=$nr_open
		ulimit -Hn "$need" 2>/dev/null && ulimit -n "$need" 2>/dev/null ||
			ulimit -n "$(ulimit -Hn)" || true
	fi
	local fds
	fds=$(ulimit -n)
	if [[ $fds != unlimited ]] && ((fds < IDLE_SESSIONS + 1000)); then
		log "open files limit is $fds: idle sessions scaled from $IDLE_SESSIONS to $((fds - 1000))"
		IDLE_SESSIONS=$((fds - 1000))
	fi
	# The many idle sessions are the idle accounts with up to 10 resources
	# each (max_sessions_per_user).
	if [[ $fds != unlimited ]] && ((fds < IDLE_MANY + 1000)); then
		if has_group idle100k; then
			log "open files limit is $fds (the hard limit could not be raised): $IDLE_MANY idle sessions scaled to $((fds - 1000))"
		fi
		IDLE_MANY=$((fds - 1000))
	fi
	if ((IDLE_MANY > 10 * IDLE_SESSIONS)); then
		IDLE_MANY=$((10 * IDLE_SESSIONS))
	fi


	# One self-signed certificate for the peers' STARTTLS (Switchboard
	# generates its own on first start).
	openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=$DOMAIN" \
		-addext "subjectAltName=DNS:$DOMAIN,DNS:conference.$DOMAIN" \
		-keyout "$WORK/tls/key.pem" -out "$WORK/tls/cert.pem" 2>/dev/null
	chmod 644 "$WORK/tls/key.pem" "$WORK/tls/cert.pem"

	local server group run order
	read -r -a servers <<<"$SERVERS"
	local seeds=()
	for server in "${servers[@]}"; do
		[[ " ${seeds[*]} " == *" $(seed_of "$server") "* ]] || seeds+=("$(seed_of "$server")")
	done
	log "seeding ${seeds[*]} side by side"
	seed_all "${seeds[@]}"

	local stage stages sgroups
	read -r -a stages <<<"$(stages $GROUPS_)"
	for stage in "${stages[@]}"; do
		IFS=+ read -r -a sgroups <<<"$stage"
		local gservers
		read -r -a gservers <<<"$(group_servers "${sgroups[0]}" "${servers[@]}" | tr '\n' ' ')"
		((${#gservers[@]})) || continue
		local turn
		for run in $(seq "$(group_runs "${sgroups[0]}")"); do
			read -r -a order <<<"$(rotate $((run - 1)) "${gservers[@]}")"
			# Paired groups alternate which goes first, run by run, so
			# that a drift of the machine's speed favours neither.
			read -r -a turn <<<"$(rotate $((run - 1)) "${sgroups[@]}")"
			for server in "${order[@]}"; do
				for group in "${turn[@]}"; do
					measure "$group" "$run" "$server"
				done
			done
		done
	done

	for server in "${servers[@]}"; do
		case $server in switchboard | switchboard-archive)
			has_group main && profile "$server" ;;
		esac
	done

	machine_info "$WORK/machine.txt"
	echo "elapsed: $((SECONDS / 60)) min $((SECONDS % 60)) s" >>"$WORK/machine.txt"
	"$WORK/bin/report" -results "$WORK/results" -machine "$WORK/machine.txt" -profiles "$WORK/profiles" -out "$OUT"
	log "wrote $OUT in $((SECONDS / 60)) min $((SECONDS % 60)) s"
}

main "$@"; exit
