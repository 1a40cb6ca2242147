#!/usr/bin/env bash
# A throwaway single-node Ceph cluster (one mon, one memstore OSD, one radosgw; no ceph-mgr, no systemd) serving S3
# on a free loopback port, for tests and CI. Recipe and quirks: shared/docs/ceph-rgw.md.
#
#   scripts/ceph-rgw.sh start <dir>   # everything lives in <dir>; prints and writes <dir>/env (shell KEY=value lines)
#   scripts/ceph-rgw.sh stop <dir>    # stops exactly the daemons this script started in <dir> (recorded PIDs)
#
# Env: RGW_MEMSTORE_BYTES (OSD capacity, kept in RAM; default 4 GiB), RGW_START_TIMEOUT (seconds per wait, default 60).
# <dir>/env holds AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (user `test`, which owns
# the test buckets), RGW_READER_ACCESS_KEY_ID, RGW_READER_SECRET_ACCESS_KEY (user `reader`, no buckets of its own) and
# RGW_PORT. Logs: <dir>/log/ (start.log for this script's steps, one file per daemon).
set -euo pipefail

# Fixed keys: the cluster is throwaway and listens on loopback only; known keys make a failed run easy to poke at.
TEST_ACCESS_KEY=PXECACHETESTACCESS01
TEST_SECRET_KEY=pxecacheTestSecretKey0000000000000000001
READER_ACCESS_KEY=PXECACHEREADERACCESS
READER_SECRET_KEY=pxecacheReaderSecretKey00000000000000001
MEMSTORE_BYTES=${RGW_MEMSTORE_BYTES:-4294967296}
WAIT_S=${RGW_START_TIMEOUT:-60}
DAEMONS=(ceph-mon ceph-osd radosgw) # the only process names this script ever signals, and only by recorded PID

die() {
  echo "ceph-rgw: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 start|stop <dir>" >&2
  exit 2
}

now_ms() { date +%s%3N; }

log() {
  echo "$(date -u +%H:%M:%S.%3N) $*" >>"$LOG/start.log"
}

# Runs a ceph CLI against this cluster only (its own conf), bounded in time: without ceph-mgr some commands would
# wait forever, and a mon that did not come up must not hang the caller.
cephc() {
  timeout "$WAIT_S" ceph -c "$DIR/ceph.conf" --connect-timeout "$WAIT_S" "$@"
}

# Prints N distinct loopback ports that were free a moment ago (the kernel picks them; Node is a project dependency).
free_ports() {
  node -e '
    const net = require("node:net");
    const n = Number(process.argv[1]);
    const servers = Array.from({ length: n }, () => net.createServer());
    Promise.all(servers.map((s) => new Promise((ok, ko) => s.once("error", ko).listen(0, "127.0.0.1", () => ok(s.address().port)))))
      .then((ports) => { console.log(ports.join(" ")); servers.forEach((s) => s.close()); })
      .catch((e) => { console.error(e.message); process.exit(1); });
  ' "$1"
}

# The recorded PID still runs the daemon we started from this directory (not a recycled PID).
ours() {
  local pid=$1 name=$2
  [ -r "/proc/$pid/cmdline" ] || return 1
  # Right after `spawn`, the child may not have exec'd the daemon yet and is still named setsid: on a loaded machine
  # that once made a live daemon look exited (start failed) and then unstoppable (stop skipped it).
  case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
    "$name" | setsid) ;;
    *) return 1 ;;
  esac
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$DIR/ceph.conf"
}

# setsid so a Ctrl-C in the caller's terminal does not reach the daemons half-way; -f keeps each in the foreground
# (no fork), so $! is the daemon itself.
spawn() {
  local name=$1
  shift
  setsid "$name" "$@" </dev/null >>"$LOG/$name.out" 2>&1 &
  local pid=$!
  echo "$pid $name" >>"$DIR/pids"
  log "started $name pid $pid"
  echo "$pid"
}

# Waits until `$@` succeeds, or fails naming what it waited for and where to look.
wait_for() {
  local what=$1 logfile=$2
  shift 2
  local deadline=$(($(date +%s) + WAIT_S))
  until "$@" >/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "ceph-rgw: timed out after ${WAIT_S}s waiting for $what; last lines of $logfile:" >&2
      tail -n 20 "$logfile" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.1
  done
}

# The log file each daemon writes (log_file = $LOG/$name.log in ceph.conf).
daemon_log() {
  case "$1" in
    ceph-mon) echo "$LOG/mon.a.log" ;;
    ceph-osd) echo "$LOG/osd.0.log" ;;
    radosgw) echo "$LOG/client.rgw.x.log" ;;
  esac
}

alive() {
  local pid=$1 name=$2
  # A daemon between fork and exec is not yet itself: look again once before calling it gone.
  ours "$pid" "$name" || { sleep 0.5 && ours "$pid" "$name"; } || {
    echo "ceph-rgw: $name (pid $pid) exited; last lines of its output and log:" >&2
    tail -n 20 "$LOG/$name.out" "$(daemon_log "$name")" >&2 2>/dev/null || true
    return 1
  }
}

osd_up() { cephc osd dump 2>/dev/null | grep -q '^osd\.0 up'; }

# Ready when radosgw's OWN pid listens on the port: another server on the same port would fool a plain HTTP check.
rgw_listening() {
  alive "$RGW_PID" radosgw || exit 1
  ss -ltnpH "sport = :$RGW_PORT" 2>/dev/null | grep -q "pid=$RGW_PID,"
}

# One signed S3 request as user `test` (curl's SigV4; the payload hash header is required by RGW).
s3() {
  local method=$1 path=$2
  shift 2
  curl -sS --fail-with-body --max-time "$WAIT_S" -X "$method" \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user "$TEST_ACCESS_KEY:$TEST_SECRET_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@" "http://127.0.0.1:$RGW_PORT$path"
}

# Still running (not exited, not a zombie: PID 1 on this kind of machine reaps orphans only every few seconds).
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  [[ "$stat" == *"($2) "* && "$stat" != *"($2) Z "* ]]
}

stop_cluster() {
  [ -f "$DIR/pids" ] || return 0
  local pid name deadline
  # One at a time in reverse start order (radosgw, OSD, mon): a radosgw whose OSD is already gone takes ~7 s to exit
  # instead of 0.2 s.
  while read -r pid name; do
    ours "$pid" "$name" || continue
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(($(date +%s) + 10))
    while running "$pid" "$name"; do
      if [ "$(date +%s)" -ge "$deadline" ]; then
        log "$name pid $pid ignored SIGTERM for 10 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.02
    done
  done < <(tac "$DIR/pids")
  rm -f "$DIR/pids" "$DIR/env"
}

start_cluster() {
  local t0 bin
  t0=$(now_ms)
  for bin in "${DAEMONS[@]}" ceph ceph-authtool monmaptool radosgw-admin ss curl node; do
    command -v "$bin" >/dev/null 2>&1 || die "$bin not found: run scripts/setup.sh (Debian packages ceph-mon ceph-osd radosgw ceph-common)"
  done
  [[ "$MEMSTORE_BYTES" =~ ^[0-9]+$ ]] || die "RGW_MEMSTORE_BYTES must be a number of bytes, got '$MEMSTORE_BYTES'"

  # Idempotent-ish: a complete running cluster is reused; a broken or stale one is stopped and rebuilt.
  if [ -f "$DIR/pids" ] && [ -f "$DIR/env" ]; then
    local all=1 pid name
    while read -r pid name; do ours "$pid" "$name" || all=0; done <"$DIR/pids"
    if [ "$all" = 1 ] && [ "$(wc -l <"$DIR/pids")" -eq 3 ]; then
      echo "ceph-rgw: already running in $DIR" >&2
      cat "$DIR/env"
      return 0
    fi
  fi
  stop_cluster
  rm -rf "$DIR/ceph.conf" "$DIR/keyring" "$DIR/monmap" "$DIR/mon" "$DIR/osd" "$DIR/run" "$DIR/rgw" "$LOG"
  mkdir -p "$DIR/mon" "$DIR/osd" "$DIR/run" "$DIR/rgw" "$LOG"
  : >"$DIR/pids"
  # From here on a failure stops what was started, so nothing is left running.
  trap 'rc=$?; if [ $rc -ne 0 ]; then echo "ceph-rgw: start failed; logs in $LOG" >&2; stop_cluster; fi' EXIT

  local fsid osd_uuid mon_v2 mon_v1
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  read -r mon_v2 mon_v1 RGW_PORT < <(free_ports 3)
  [ -n "$RGW_PORT" ] || die "could not find free loopback ports"
  log "fsid $fsid mon v2 $mon_v2 v1 $mon_v1 rgw $RGW_PORT memstore $MEMSTORE_BYTES"

  cat >"$DIR/ceph.conf" <<EOF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
keyring = $DIR/keyring
run_dir = $DIR/run
admin_socket = $DIR/run/\$name.asok
log_file = $LOG/\$name.log
log_to_stderr = false
err_to_stderr = true
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_warn_on_pool_no_redundancy = false
mon_data_avail_crit = 0
# The 1 s defaults make the bring-up take ~14 s instead of ~5 s.
paxos_propose_interval = 0.05
paxos_min_wait = 0.01

[mon]
mon_data = $DIR/mon
mon_initial_members = a

[osd]
osd_data = $DIR/osd
osd_objectstore = memstore
memstore_device_bytes = $MEMSTORE_BYTES

[client.rgw.x]
rgw_frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw_data = $DIR/rgw
# Deleted objects are kept for GC 2 h by default, and memstore keeps them in RAM.
rgw_gc_obj_min_wait = 60
rgw_gc_processor_period = 60
rgw_gc_processor_max_time = 60
EOF

  {
    ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *'
    ceph-authtool "$DIR/keyring" --gen-key -n client.admin \
      --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *'
    ceph-authtool "$DIR/keyring" --gen-key -n osd.0 \
      --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd'
    ceph-authtool "$DIR/keyring" --gen-key -n client.rgw.x \
      --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw'
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_v2,v1:127.0.0.1:$mon_v1]" "$DIR/monmap"
    ceph-mon -c "$DIR/ceph.conf" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/keyring"
  } >>"$LOG/start.log" 2>&1 || die "creating the keyring and the mon store failed; see $LOG/start.log"
  log "mon store created"

  local mon_pid osd_pid
  mon_pid=$(spawn ceph-mon -i a -f -c "$DIR/ceph.conf")
  # `osd new` also waits for the mon's quorum.
  cephc osd new "$osd_uuid" 0 >>"$LOG/start.log" 2>&1 || {
    alive "$mon_pid" ceph-mon
    die "'ceph osd new' failed; see $LOG/start.log and $LOG/mon.a.log"
  }
  log "mon in quorum, osd.0 allocated"
  ceph-osd -c "$DIR/ceph.conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$LOG/start.log" 2>&1 ||
    die "ceph-osd --mkfs failed; see $LOG/start.log"
  osd_pid=$(spawn ceph-osd -i 0 -f -c "$DIR/ceph.conf")
  wait_for "osd.0 up" "$(daemon_log ceph-osd)" osd_up_checked "$osd_pid"
  log "osd.0 up"

  # Users before radosgw starts (this also creates RGW's metadata pools). `test` gets admin-API caps; `reader` owns
  # nothing and reads only what a bucket policy grants it.
  {
    timeout "$WAIT_S" radosgw-admin -c "$DIR/ceph.conf" user create --uid=test --display-name=test \
      --access-key="$TEST_ACCESS_KEY" --secret-key="$TEST_SECRET_KEY" --caps='users=*;buckets=*;metadata=*;usage=*'
    timeout "$WAIT_S" radosgw-admin -c "$DIR/ceph.conf" user create --uid=reader --display-name=reader \
      --access-key="$READER_ACCESS_KEY" --secret-key="$READER_SECRET_KEY"
  } >>"$LOG/start.log" 2>&1 || die "radosgw-admin user create failed; see $LOG/start.log"
  log "users created"

  RGW_PID=$(spawn radosgw -n client.rgw.x -f -c "$DIR/ceph.conf")
  wait_for "radosgw (pid $RGW_PID) listening on 127.0.0.1:$RGW_PORT" "$(daemon_log radosgw)" rgw_listening
  log "radosgw listening"

  # Warm-up: RGW creates its index, data and multipart pools on first use (~2 s each); pay that here, not in a test.
  local bucket="warmup-$$" upload
  {
    s3 PUT "/$bucket" &&
      s3 PUT "/$bucket/obj" --data-binary 'warm-up' &&
      upload=$(s3 POST "/$bucket/mp?uploads=" | sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p') &&
      [ -n "$upload" ] &&
      s3 DELETE "/$bucket/mp?uploadId=$upload" &&
      s3 DELETE "/$bucket/obj" &&
      s3 DELETE "/$bucket"
  } >>"$LOG/start.log" 2>&1 || die "warm-up S3 requests (bucket, put, multipart, delete) failed; see $LOG/start.log and $LOG/client.rgw.x.log"
  log "warm-up done"

  cat >"$DIR/env.tmp" <<EOF
AWS_ENDPOINT_URL_S3=http://127.0.0.1:$RGW_PORT
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=$TEST_ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$TEST_SECRET_KEY
RGW_READER_ACCESS_KEY_ID=$READER_ACCESS_KEY
RGW_READER_SECRET_ACCESS_KEY=$READER_SECRET_KEY
RGW_PORT=$RGW_PORT
EOF
  mv "$DIR/env.tmp" "$DIR/env"
  trap - EXIT
  local elapsed=$(($(now_ms) - t0))
  log "ready in ${elapsed} ms"
  echo "ceph-rgw: ready in $DIR in ${elapsed} ms (pids: $(awk '{printf "%s=%s ", $2, $1}' "$DIR/pids"))" >&2
  cat "$DIR/env"
}

osd_up_checked() {
  alive "$1" ceph-osd || exit 1
  osd_up
}

[ $# -eq 2 ] || usage
CMD=$1
[ -n "$2" ] || usage
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
LOG=$DIR/log

case "$CMD" in
  start) start_cluster ;;
  stop)
    if [ -f "$DIR/pids" ]; then
      stop_cluster
      echo "ceph-rgw: stopped the cluster in $DIR" >&2
    else
      echo "ceph-rgw: nothing running in $DIR" >&2
    fi
    ;;
  *) usage ;;
esac
