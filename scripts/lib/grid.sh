# shellcheck shell=bash
# scripts/lib/grid.sh: start and stop a throwaway Tahoe-LAFS grid on loopback.
#
# Sourced by the demo and benchmark scripts so they share one recipe with the Rust test harness
# (tests/support/grid.rs): an introducer plus N storage nodes, all listening on 127.0.0.1 at free
# ports, each announced as `tcp:localhost:PORT`. The DNS name matters: foolscap's SOCKS/tor
# handler refuses numeric loopback addresses, and announcing by name keeps it possible to route a
# node's storage traffic through a local SOCKS port later (traffic shaping).
#
#   grid_start DIR N K H TOTAL   start a grid of N storage nodes with shares K-of-TOTAL, happy H;
#                                storage node 0 doubles as the client. Exports GRID_DIR,
#                                GRID_CLIENT_DIR and GRID_WEB_URL (no trailing slash) and prints
#                                them. Returns once the client sees all N servers connected.
#   grid_stop DIR                stop every node of the grid in DIR (data is kept).
#
# GRID_RELAY_DELAY_MS=D (set, even to 0) puts a relay (scripts/lib/relay.py) in front of every
# storage node: each node announces the relay's port in its FURL and NURL, so every client (the
# node and tahoe-jobs) reaches it D ms later each way, as a server across the internet. The relay
# counts the bytes each server receives in $GRID_RELAY_STATS (JSON, see relay.py).
#
# Nodes run detached (setsid) so a script can start a grid and leave it for later steps; callers
# should `trap 'grid_stop "$dir"' EXIT`. grid_start refuses to touch a non-empty DIR it did not
# create, and wipes one it did create (a grid is meant to be disposable).
#
# Needs .venv (scripts/ensure-venv). TAHOE and GRID_TIMEOUT (seconds, default 60) can be overridden.

_GRID_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
_GRID_MARKER=".tahoe-jobs-grid"

_grid_tahoe() {
    "${TAHOE:-$_GRID_ROOT/.venv/bin/tahoe}" "$@"
}

_grid_python() {
    # The venv's python is the one Python we know exists; it needs nothing beyond the stdlib here.
    "$_GRID_ROOT/.venv/bin/python" "$@"
}

# Prints COUNT distinct free loopback ports. All sockets stay bound until every port is chosen so
# the kernel cannot hand out the same port twice.
_grid_free_ports() {
    _grid_python - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# Waits until FILE exists and is non-empty, or fails naming WHAT did not appear.
_grid_wait_file() {
    local file="$1" what="$2" deadline=$((SECONDS + ${GRID_TIMEOUT:-60}))
    while [ ! -s "$file" ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "grid: timed out after ${GRID_TIMEOUT:-60}s waiting for $what ($file)" >&2
            return 1
        fi
        sleep 0.2
    done
}

# Starts `tahoe run` for NODEDIR detached from this shell; output goes to NODEDIR/run.log.
_grid_run_node() {
    local nodedir="$1"
    rm -f "$nodedir/running.process" "$nodedir/node.url"
    # stdin from /dev/null plus --allow-stdin-close: otherwise `tahoe run` exits as soon as its
    # stdin closes.
    setsid "${TAHOE:-$_GRID_ROOT/.venv/bin/tahoe}" run --allow-stdin-close "$nodedir" \
        </dev/null >"$nodedir/run.log" 2>&1 &
}

# Waits until the web API at URL lists WANT servers as connected.
_grid_wait_connected() {
    local url="$1" want="$2"
    _grid_python - "$url" "$want" "${GRID_TIMEOUT:-60}" <<'PY'
import json, sys, time, urllib.request
url, want, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout
last = "no answer from the client's web API"
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(url + "/?t=json", timeout=5) as r:
            servers = json.load(r).get("servers", [])
        # "connected" over the HTTP storage protocol, "Connected to HOST via ..." over foolscap.
        up = [s for s in servers
              if str(s.get("connection_status", "")).lower().startswith("connected")]
        if len(up) >= want:
            sys.exit(0)
        last = "%d of %d servers connected: %s" % (
            len(up), want,
            "; ".join("%s %s" % (s.get("nickname"), s.get("connection_status")) for s in servers))
    except OSError as e:
        last = "web API not answering: %s" % e
    time.sleep(0.25)
sys.stderr.write("grid: timed out after %gs waiting for %d connected servers at %s (%s)\n"
                 % (timeout, want, url, last))
sys.exit(1)
PY
}

grid_start() {
    if [ "$#" -ne 5 ]; then
        echo "usage: grid_start DIR STORAGE_NODES NEEDED HAPPY TOTAL" >&2
        return 2
    fi
    local dir="$1" n="$2" k="$3" h="$4" total="$5"
    if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
        if [ ! -e "$dir/$_GRID_MARKER" ]; then
            echo "grid: $dir exists and is not a grid made by grid_start; refusing to wipe it" >&2
            return 1
        fi
        grid_stop "$dir"
        rm -rf "$dir"
    fi
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    touch "$dir/$_GRID_MARKER"

    local ports relays=()
    read -r -a ports <<<"$(_grid_free_ports $((1 + 3 * n)))"

    local intro="$dir/introducer" p="${ports[0]}"
    _grid_tahoe create-introducer --listen=tcp --port="tcp:$p:interface=127.0.0.1" \
        --location="tcp:localhost:$p" "$intro" >/dev/null
    _grid_run_node "$intro"
    # The furl is only written once the introducer has started.
    _grid_wait_file "$intro/private/introducer.furl" "the introducer to start" || return 1
    local furl
    furl="$(cat "$intro/private/introducer.furl")"

    local i pids=()
    for ((i = 0; i < n; i++)); do
        local port="${ports[$((1 + 3 * i))]}" web="${ports[$((2 + 3 * i))]}"
        local announced="$port"
        if [ -n "${GRID_RELAY_DELAY_MS+set}" ]; then
            announced="${ports[$((3 + 3 * i))]}"
            relays+=("$announced:$port")
        fi
        _grid_tahoe create-node --listen=tcp --port="tcp:$port:interface=127.0.0.1" \
            --location="tcp:localhost:$announced" --webport="tcp:$web:interface=127.0.0.1" \
            --introducer="$furl" --nickname="storage$i" \
            --shares-needed="$k" --shares-happy="$h" --shares-total="$total" \
            "$dir/storage$i" >/dev/null &
        pids+=("$!")
    done
    for i in "${pids[@]}"; do wait "$i" || return 1; done
    if [ "${#relays[@]}" -gt 0 ]; then
        setsid "$_GRID_ROOT/.venv/bin/python" "$_GRID_ROOT/scripts/lib/relay.py" \
            --delay-ms "$GRID_RELAY_DELAY_MS" --stats "$dir/relay-stats.json" "${relays[@]}" \
            </dev/null >"$dir/relay.log" 2>&1 &
        echo "$!" >"$dir/relay.pid"
        _grid_wait_file "$dir/relay-stats.json" "the relay to listen" || return 1
        export GRID_RELAY_STATS="$dir/relay-stats.json"
    fi
    for ((i = 0; i < n; i++)); do _grid_run_node "$dir/storage$i"; done

    _grid_wait_file "$dir/storage0/node.url" "the client node's web API" || return 1
    local url
    url="$(head -n1 "$dir/storage0/node.url")"
    url="${url%/}"
    _grid_wait_connected "$url" "$n" || return 1

    export GRID_DIR="$dir" GRID_CLIENT_DIR="$dir/storage0" GRID_WEB_URL="$url"
    echo "grid: $n storage node(s), shares $k-of-$total (happy $h), in $dir"
    echo "GRID_CLIENT_DIR=$GRID_CLIENT_DIR"
    echo "GRID_WEB_URL=$GRID_WEB_URL"
}

grid_stop() {
    if [ "$#" -ne 1 ]; then
        echo "usage: grid_stop DIR" >&2
        return 2
    fi
    local dir="$1" f pid alive=()
    for f in "$dir"/*/running.process; do
        [ -e "$f" ] || continue
        # running.process holds "PID START_TIME".
        read -r pid _ <"$f" || continue
        # Only signal a pid that still runs tahoe for this very node dir: pids get reused.
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$(dirname "$f")"; then
            kill -TERM "$pid" 2>/dev/null && alive+=("$pid")
        fi
    done
    if [ -e "$dir/relay.pid" ]; then
        read -r pid <"$dir/relay.pid" || true
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF relay.py; then
            kill -TERM "$pid" 2>/dev/null && alive+=("$pid")
        fi
        rm -f "$dir/relay.pid"
    fi
    local deadline=$((SECONDS + 10))
    for pid in "${alive[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    return 0
}
