# scripts/lib/bench-daemon.sh: the daemon's side of scripts/bench (sourced by it). The same
# trees are backed up by a [backup] job under `tahoe-jobs run`, started with `tahoe-jobs start`,
# and completion is read from `status --json`; the daemon's peak RSS is its VmHWM.
#
# Needs from scripts/bench: BIN, NODE, BENCH, PY, record, make_tree, node_cpu.

# TAHOE_JOBS_BIN would reach tahoe-jobs as a configuration key (the TAHOE_JOBS_ prefix): the
# commands refuse it. BIN has it already.
unset TAHOE_JOBS_BIN

# The grid is new in every bench run: so is the daemon's state (its backupdb would name caps of
# the last run's grid).
rm -rf "$BENCH/daemon-state" "$BENCH/daemon.log"

# The global options of every command of the bench daemon (its own port and state).
daemon_args() {
    DPORT="${DPORT:-$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
    DARGS=(-d "$NODE" --config "$BENCH/daemon.toml" --set "jobs.web.port=127.0.0.1:$DPORT"
        --set "jobs.state_dir=$BENCH/daemon-state")
}

# daemon_jobs NAME=SOURCE:TARGET...: the daemon's job file; every job only runs when started.
daemon_jobs() {
    : >"$BENCH/daemon.toml"
    local spec name rest
    for spec in "$@"; do
        name="${spec%%=*}" rest="${spec#*=}"
        case "$name" in
        check*) printf '[check.%s]\ntarget = "%s"\nfrequency = "1week"\nallowed_times = "none"\n\n' \
            "$name" "$rest" >>"$BENCH/daemon.toml" ;;
        # The run's end is announced by its hooks (a file appears), so that waiting for it
        # costs no status process every few milliseconds on the two cores the run uses.
        *) printf '[backup.%s]\nsource = "%s"\ntarget = "%s"\nfrequency = "1week"\nallowed_times = "none"\non_success = "touch %s"\non_failure = "touch %s"\n\n' \
            "$name" "${rest%%=*}" "${rest#*=}" "$BENCH/ended-backup.$name" "$BENCH/ended-backup.$name" >>"$BENCH/daemon.toml" ;;
        esac
    done
}

# Starts `tahoe-jobs run` (fresh process, so VmHWM is this measurement's) and waits for it.
daemon_start() {
    daemon_args
    "$BIN" "${DARGS[@]}" run >>"$BENCH/daemon.log" 2>&1 &
    DPID=$!
    local i
    for ((i = 0; i < 300; i++)); do
        "$BIN" "${DARGS[@]}" status --json >/dev/null 2>&1 && return 0
        kill -0 "$DPID" 2>/dev/null || { echo "bench: the daemon died:" >&2; tail -n 30 "$BENCH/daemon.log" >&2; return 1; }
        sleep 0.1
    done
    echo "bench: the daemon did not answer" >&2
    return 1
}

# The daemon's peak RSS so far, in MB.
daemon_rss() { awk '/VmHWM/ {printf "%d", $2 / 1024}' "/proc/$DPID/status"; }
daemon_cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$DPID/stat"; }

daemon_stop() {
    kill -TERM "$DPID" 2>/dev/null || true
    wait "$DPID" 2>/dev/null || true
}

# daemon_poll: a Python helper that runs `status --json` until a condition on the job holds.
daemon_poll() {
    BENCH="$BENCH" "$PY" - "$BIN" "$@" <<'PY'
import json, subprocess, sys, time
bin_, mode, job = sys.argv[1], sys.argv[2], sys.argv[3]
args = sys.argv[4:]
def status():
    out = subprocess.run([bin_, *args, "status", "--json", job], capture_output=True, text=True)
    return json.loads(out.stdout)
if mode == "run":
    # Start the job and wait for its completion: prints the wall time from `start` to the
    # completion shown, and the daemon's own run time (last_completed - last_started). The end
    # is awaited on the file the job's on_success/on_failure hook touches (a stat every 5 ms
    # costs nothing; a status process every few ms cost the run a second of the two cores),
    # then confirmed by `status --json`.
    import os
    ended = os.path.join(os.environ["BENCH"], "ended-" + job)
    if os.path.exists(ended):
        os.unlink(ended)
    before = status().get("last_completed")
    t0 = time.monotonic()
    subprocess.run([bin_, *args, "start", job, "--ignore-window"], check=True, capture_output=True)
    while True:
        if os.path.exists(ended):
            j = status()
        else:
            time.sleep(0.005)
            continue
        if j["state"] == "failed":
            sys.exit("bench: the job failed: %s" % j.get("last_error"))
        if j.get("last_completed") and j["last_completed"] != before:
            t1 = time.monotonic()
            break
        time.sleep(0.005)
    from datetime import datetime
    p = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    own = (p(j["last_completed"]) - p(j["last_started"])).total_seconds()
    print("%.3f %.3f" % (t1 - t0, own))
elif mode == "start":
    subprocess.run([bin_, *args, "start", job, "--ignore-window"], check=True, capture_output=True)
elif mode == "until":
    # until JOB COUNTER N: wait until a counter of the running job reaches N.
    counter, n = args[-2], int(args[-1])
    args = args[:-2]
    while True:
        j = status()
        if j["counters"].get(counter, 0) >= n and j["state"] == "running":
            break
        if j.get("last_completed"):
            sys.exit("bench: the job completed before %s reached %d" % (counter, n))
        time.sleep(0.01)
elif mode == "running":
    # running JOB SECONDS: wait until the job is running, then SECONDS more.
    wait = float(args[-1])
    args = args[:-1]
    while status()["state"] != "running":
        time.sleep(0.005)
    time.sleep(wait)
elif mode == "pause":
    # Pause and wait until the job is shown paused and no longer running: prints the latency.
    t0 = time.monotonic()
    subprocess.run([bin_, *args, "pause", job], check=True, capture_output=True)
    while True:
        j = status()
        if j["paused"] and j["state"] not in ("running", "stopping"):
            break
        time.sleep(0.01)
    print("%.3f" % (time.monotonic() - t0))
    subprocess.run([bin_, *args, "resume", job], check=True, capture_output=True)
PY
}

# daemon_backup JOB SOURCE TARGET: one run of a backup job under a fresh daemon; prints
# "WALL OWN RSS_MB CPU_S" (CPU: the daemon's user + system seconds, start-up included).
daemon_backup() {
    daemon_jobs "$1=$2=$3"
    daemon_start
    local times
    times=$(daemon_poll run "backup.$1" "${DARGS[@]}")
    echo "$times $(daemon_rss) $(daemon_cpu)"
    daemon_stop
}

# Seconds and peak RSS (MB) of a one-shot backup: prints "WALL RSS_MB".
oneshot_backup() {
    /usr/bin/time -f '%e %M %U %S' -o "$BENCH/oneshot-time.txt" "$BIN" -d "$NODE" backup "$1" "$2" >"$BENCH/last.log" 2>&1 ||
        { echo "bench: failed: backup $1 $2" >&2; tail -n 20 "$BENCH/last.log" >&2; return 1; }
    awk '{printf "%s %d %.2f\n", $1, $2 / 1024, $3 + $4}' "$BENCH/oneshot-time.txt"
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# D2: first backups, one-shot and daemon, of trees of B2's shape (fresh contents each round),
# D2_ROUNDS rounds (default 2) with the order alternating. D1 re-runs the last round's trees.
bench_daemon_b2() {
    local rounds="${D2_ROUNDS:-2}" r l0 o d ow orss dw down drss ows=() dws=()
    for ((r = 0; r < rounds; r++)); do
        rm -rf "$BENCH/tree-o2" "$BENCH/tree-d2"
        make_tree "$BENCH/tree-o2" "$B2_FILES" 100 200 8192 $((1200 + r))
        make_tree "$BENCH/tree-d2" "$B2_FILES" 100 200 8192 $((1300 + r))
        l0=$(loadavg)
        if ((r % 2 == 0)); then
            o=$(oneshot_backup "$BENCH/tree-o2" "bj:o2-$r")
            d=$(daemon_backup d2 "$BENCH/tree-d2" "bj:d2-$r")
        else
            d=$(daemon_backup d2 "$BENCH/tree-d2" "bj:d2-$r")
            o=$(oneshot_backup "$BENCH/tree-o2" "bj:o2-$r")
        fi
        read -r ow orss ocpu <<<"$o"
        read -r dw down drss dcpu <<<"$d"
        ows+=("$ow") dws+=("$dw")
        record "D2 round $((r + 1)) first backup, $B2_FILES files (load $l0 -> $(loadavg)): one-shot ${ow}s (peak RSS ${orss} MB, CPU ${ocpu}s), daemon ${dw}s from \`start\` to completion shown (its own run ${down}s; peak RSS ${drss} MB, CPU ${dcpu}s with its start-up): daemon $(ratio2 "$dw" "$ow")x the one-shot's time"
    done
    local so sd
    so=$("$PY" -c "import sys; print('%.2f' % sum(map(float, sys.argv[1:])))" "${ows[@]}")
    sd=$("$PY" -c "import sys; print('%.2f' % sum(map(float, sys.argv[1:])))" "${dws[@]}")
    record "D2 over $rounds rounds: one-shot ${so}s, daemon ${sd}s in all: daemon $(ratio2 "$sd" "$so")x"
    D2_LAST=$((rounds - 1))
}

# D1: unchanged re-runs of D2's trees, one-shot and daemon interleaved, ROUNDS each.
bench_daemon_b1() {
    local rounds="${D1_ROUNDS:-5}" i o d os=() ds=() owns=() l0
    l0=$(loadavg)
    local last="${D2_LAST:-0}"
    daemon_jobs "d2=$BENCH/tree-d2=bj:d2-$last"
    daemon_start
    for ((i = 0; i < rounds; i++)); do
        o=$(oneshot_backup "$BENCH/tree-o2" "bj:o2-$last")
        os+=("${o%% *}")
        d=$(daemon_poll run backup.d2 "${DARGS[@]}")
        ds+=("${d%% *}") owns+=("${d##* }")
    done
    local rss
    rss=$(daemon_rss)
    daemon_stop
    local om dm ownm
    om=$(printf '%s\n' "${os[@]}" | sort -n | sed -n "$(((rounds + 1) / 2))p")
    dm=$(printf '%s\n' "${ds[@]}" | sort -n | sed -n "$(((rounds + 1) / 2))p")
    ownm=$(printf '%s\n' "${owns[@]}" | sort -n | sed -n "$(((rounds + 1) / 2))p")
    record "D1 unchanged re-run, $B2_FILES files, $rounds interleaved rounds (load $l0 -> $(loadavg)): one-shot ${os[*]} s (median ${om}s), daemon from \`start\` to completion shown ${ds[*]} s (median ${dm}s; its own run median ${ownm}s), daemon peak RSS ${rss} MB: daemon $(ratio2 "$dm" "$om")x the one-shot's time"
}

# D4: peak RSS of the one-shot and the daemon on the same kind of tree (first backups).
# D4_SHAPE: files DIRS MIN MAX (default B4's: B4_FILES in 1000 dirs of 20-50 bytes).
bench_daemon_b4() {
    local label="$1" files="$2" dirs="$3" lo="$4" hi="$5" l0 o d
    make_tree "$BENCH/tree-o4$label" "$files" "$dirs" "$lo" "$hi" 41
    make_tree "$BENCH/tree-d4$label" "$files" "$dirs" "$lo" "$hi" 42
    l0=$(loadavg)
    o=$(oneshot_backup "$BENCH/tree-o4$label" "bj:o4$label")
    d=$(daemon_backup "d4$label" "$BENCH/tree-d4$label" "bj:d4$label")
    read -r ow orss _ <<<"$o"
    read -r dw down drss _ <<<"$d"
    record "D4 $files files of $lo-$hi B in $dirs directories (load $l0 -> $(loadavg)): peak RSS one-shot ${orss} MB (${ow}s), daemon ${drss} MB (${dw}s)"
}

# P6: pause latency during an unchanged walk of the one-directory tree, and during uploads.
bench_pause() {
    local l0 lat c0 c1 lats=()
    l0=$(loadavg)
    # The unchanged walk: D4's one-directory tree, backed up once already by its job.
    daemon_jobs "d4one=$BENCH/tree-d4one=bj:d4one"
    daemon_start
    # Its first backup (unless D4 made it under this grid already), so the rest are re-runs.
    daemon_poll run backup.d4one "${DARGS[@]}" >/dev/null
    local walk
    walk=$(daemon_poll run backup.d4one "${DARGS[@]}")
    for i in 1 2 3; do
        daemon_poll start backup.d4one "${DARGS[@]}"
        daemon_poll running backup.d4one "${DARGS[@]}" 0.1
        lats+=("$(daemon_poll pause backup.d4one "${DARGS[@]}")")
    done
    daemon_stop
    record "P6 pause during an unchanged walk of 100,000 entries in one directory (load $l0 -> $(loadavg); a whole unchanged run takes ${walk% *}s from \`start\`): from \`pause\` to shown paused and stopped, 0.1 s into the run: ${lats[*]} s"
    # Uploads: a fresh tree of small files.
    make_tree "$BENCH/tree-p6" 3000 30 1024 4096 61
    daemon_jobs "p6=$BENCH/tree-p6=bj:p6"
    daemon_start
    lats=()
    local quiet=()
    for i in 1 2 3; do
        daemon_poll start backup.p6 "${DARGS[@]}"
        daemon_poll until backup.p6 "${DARGS[@]}" files_uploaded $((i * 200))
        lats+=("$(daemon_poll pause backup.p6 "${DARGS[@]}")")
        # The node's CPU in the second after: what still reaches it.
        c0=$(node_cpu); sleep 1; c1=$(node_cpu)
        quiet+=("$("$PY" -c "print('%.2f' % ($c1 - $c0))")")
    done
    daemon_stop
    record "P6 pause during uploads of 1-4 KiB files: ${lats[*]} s; node CPU in the second after each: ${quiet[*]} s"
}

# C1: peak RSS of the one-shot's first backup of D4's 100,000-file tree for a few
# [jobs] cache_size values (each to a target of its own, so each is a first backup).
bench_cache_sizes() {
    local size out l0
    [ -d "$BENCH/tree-o4lit" ] || make_tree "$BENCH/tree-o4lit" "$B4_FILES" 1000 20 50 41
    for size in ${C1_SIZES:-4MiB 16MiB 64MiB}; do
        l0=$(loadavg)
        /usr/bin/time -f '%e %M' -o "$BENCH/oneshot-time.txt" "$BIN" -d "$NODE" --set "jobs.cache_size=$size" \
            backup "$BENCH/tree-o4lit" "bj:c1-$size-$(date +%s)" >"$BENCH/last.log" 2>&1 ||
            { echo "bench: failed: cache $size" >&2; tail -n 20 "$BENCH/last.log" >&2; return 1; }
        out=$(awk '{printf "%ss, peak RSS %d MB", $1, $2 / 1024}' "$BENCH/oneshot-time.txt")
        record "C1 cache_size = $size, $B4_FILES files in 1000 directories (load $l0): first backup $out"
    done
}

# P7: two backup jobs and a check job at once: each job's throughput, and the pause latency of
# one backup while the others run.
bench_mixed() {
    local n="${P7_FILES:-2000}" l0 lat
    make_tree "$BENCH/tree-m1" "$n" 20 1024 4096 71
    make_tree "$BENCH/tree-m2" "$n" 20 1024 4096 72
    # What the check job checks: a backup of its own, made first by the one-shot.
    make_tree "$BENCH/tree-m0" 500 10 1024 4096 70
    oneshot_backup "$BENCH/tree-m0" bj:m0 >/dev/null
    daemon_jobs "m1=$BENCH/tree-m1=bj:m1" "m2=$BENCH/tree-m2=bj:m2" "checkm=bj:m0"
    daemon_start
    l0=$(loadavg)
    daemon_poll start backup.m1 "${DARGS[@]}"
    daemon_poll start backup.m2 "${DARGS[@]}"
    daemon_poll start check.checkm "${DARGS[@]}"
    daemon_poll until backup.m1 "${DARGS[@]}" files_uploaded $((n / 4))
    lat=$(daemon_poll pause backup.m1 "${DARGS[@]}")
    daemon_poll start backup.m1 "${DARGS[@]}"
    "$PY" - "$BIN" "${DARGS[@]}" <<'PY' >"$BENCH/p7.txt"
import json, subprocess, sys, time
from datetime import datetime
bin_, args = sys.argv[1], sys.argv[2:]
jobs = ["backup.m1", "backup.m2", "check.checkm"]
while True:
    view = json.loads(subprocess.run([bin_, *args, "status", "--json"], capture_output=True, text=True).stdout)
    by = {j["id"]: j for j in view["jobs"] if j["id"] in jobs}
    if any(j["state"] == "failed" for j in by.values()):
        sys.exit("bench: a job failed: %s" % [j.get("last_error") for j in by.values()])
    if all(j.get("last_completed") for j in by.values()):
        break
    time.sleep(0.1)
p = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
for id_ in jobs:
    j = by[id_]
    c = j["counters"]
    secs = (p(j["last_completed"]) - p(j["last_started"])).total_seconds()
    print("%s: last run %.1f s, %s" % (id_, secs, ", ".join("%s %s" % kv for kv in sorted(c.items()) if isinstance(kv[1], int))))
PY
    local rss
    rss=$(daemon_rss)
    daemon_stop
    record "P7 two backup jobs ($n files of 1-4 KiB each) and a check job at once (load $l0 -> $(loadavg)): pause of backup.m1 took ${lat}s; daemon peak RSS ${rss} MB; $(tr '\n' ';' <"$BENCH/p7.txt")"
}

# B5: one large file (B5_SIZE, default 1G) backed up by a [backup] job under `tahoe-jobs run`
# with a 2 MiB/s job upload limit, paused at a random moment (a random share of the file sent,
# from the job's bytes_uploaded) and resumed. Its own grid (B5_GRID="N K H TOTAL", default
# 1-of-1) with the counting relay in front of every storage node (GRID_RELAY_DELAY_MS=0): the
# bytes every server received, framing included, over the share data the servers hold for the
# file must stay at most 1.02 (resumed, not restarted; paced per write, so no burst is cut off).
bench_b5() {
    local size="${B5_SIZE:-1G}" grid spec l0 main_node="$NODE" main_url="$GRID_WEB_URL"
    read -r -a spec <<<"${B5_GRID:-1 1 1 1}"
    grid="$BENCH/grid-b5"
    trap 'grid_stop "$BENCH/grid"; grid_stop "$BENCH/grid-b5"' EXIT
    GRID_RELAY_DELAY_MS=0 grid_start "$grid" "${spec[@]}" >/dev/null
    NODE="$GRID_CLIENT_DIR"
    "$TAHOE" -d "$NODE" create-alias bj >/dev/null
    rm -rf "$BENCH/tree-b5" && mkdir -p "$BENCH/tree-b5"
    head -c "$size" /dev/urandom >"$BENCH/tree-b5/big.bin"
    sync
    local bytes
    bytes=$(stat -c %s "$BENCH/tree-b5/big.bin")
    # The relay's count of what the servers received, summed over servers.
    relay_up() { "$PY" -c "import json, sys; print(sum(p['up'] for p in json.load(open(sys.argv[1]))['pairs'].values()))" "$GRID_RELAY_STATS"; }
    printf '[backup.b5]\nsource = "%s"\ntarget = "bj:b5"\nfrequency = "1week"\nallowed_times = "none"\nbandwidth = "2MiB/s"\non_success = "touch %s"\non_failure = "touch %s"\n' \
        "$BENCH/tree-b5" "$BENCH/ended-backup.b5" "$BENCH/ended-backup.b5" >"$BENCH/daemon.toml"
    rm -rf "$BENCH/daemon-state"
    l0=$(loadavg)
    local up0 at t0 lat up_paused times up1
    up0=$(relay_up)
    at=$("$PY" -c "import random; print(int($bytes * random.uniform(0.1, 0.9)))")
    daemon_start
    t0=$(date +%s.%N)
    daemon_poll start backup.b5 "${DARGS[@]}"
    daemon_poll until backup.b5 "${DARGS[@]}" bytes_uploaded "$at"
    lat=$(daemon_poll pause backup.b5 "${DARGS[@]}")
    up_paused=$(relay_up)
    times=$(daemon_poll run backup.b5 "${DARGS[@]}")
    local total
    total=$("$PY" -c "print('%.1f' % ($(date +%s.%N) - $t0))")
    daemon_stop
    sleep 0.5 # the relay writes its stats within 0.2 s of the last byte
    up1=$(relay_up)
    # The share data the servers hold for the file: each share file less its 12-byte header
    # and 72-byte leases, found by the file's storage index.
    local shares
    shares=$("$PY" - "$NODE" "$GRID_DIR" "${spec[0]}" "$TAHOE" <<'PY'
import json, os, struct, subprocess, sys
node, grid, n, tahoe = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
out = subprocess.run([tahoe, "-d", node, "ls", "--json", "bj:b5/Latest/big.bin"],
                     capture_output=True, text=True, check=True).stdout
cap = json.loads(out)[1]["ro_uri"]
from allmydata import uri
from allmydata.util import base32
si = base32.b2a(uri.from_string(cap).get_storage_index()).decode()
total = 0
for i in range(n):
    d = os.path.join(grid, "storage%d" % i, "storage", "shares", si[:2], si)
    for name in os.listdir(d) if os.path.isdir(d) else []:
        with open(os.path.join(d, name), "rb") as f:
            data = f.read(12)
            leases = struct.unpack(">L", data[8:12])[0]
        total += os.path.getsize(os.path.join(d, name)) - 12 - 72 * leases
print(total)
PY
)
    record "B5 a $bytes-byte file, [backup] job under tahoe-jobs run, bandwidth = 2MiB/s, ${spec[1]}-of-${spec[3]} grid, paused at $at bytes_uploaded (pause took ${lat}s, servers had received $((up_paused - up0)) bytes) and resumed (load $l0 -> $(loadavg)): servers received $((up1 - up0)) bytes (relay count, HTTP and TLS included) for $shares bytes of share data: $("$PY" -c "print('%.4f' % (($up1 - $up0) / $shares))")x (target <= 1.02); $total s from start to completion, the resumed run ${times% *}s ($("$PY" -c "print('%.2f' % (($up1 - $up_paused) / 1048576 / ${times% *}))") MiB/s on the wire)"
    grid_stop "$grid"
    NODE="$main_node" GRID_WEB_URL="$main_url"
}
