#!/bin/bash
# test_disk.sh - the disk fills or fails at each step of a turn (the journal's
# write, its sync, the cut back, a snapshot's sync, its rename, the directory
# sync) or nftables refuses after the journal was written: the request gets
# result 3 and leaves nothing behind, requests keep getting result 3 until a
# write succeeds again, and after SIGKILL and a restart every mapping that
# got result 0 is back and none that got an error is.  Faults come from
# faults.c (LD_PRELOAD); the last part fills a real 64 KiB tmpfs.
. "$(dirname "$0")/lab.sh"
[ -f "${FAULTS_LIB:-}" ] || lab_fail "the fault shim (FAULTS_LIB=${FAULTS_LIB:-}) was not built"
lab_up

FAULTS=$LAB_DIR/faults
: >"$FAULTS"
# faults RULE...: the rules the shim applies from now on (none: no faults).
faults() {
	printf '%s\n' "$@" >"$FAULTS.new"
	mv "$FAULTS.new" "$FAULTS"
}

ACKED="" REFUSED=""
# map IPORT: asks for TCP IPORT (suggesting the same external port) and
# records the answer: "IPORT EPORT" in ACKED for result 0, IPORT in REFUSED
# otherwise.  RESULT holds the result.
map() {
	npc map tcp "$1" "$1" 3600
	RESULT=$(field result)
	if [ "$RESULT" = 0 ]; then
		ACKED="$ACKED $1:$(field external)"
	else
		REFUSED="$REFUSED $1"
	fi
}
refused() { map "$1"; eq "$RESULT" 3; }
granted() { map "$1"; eq "$RESULT" 0; }

# journal_sound: every line of the journal is exactly one JSON object, and no
# refused mapping is in it.
journal_sound() {
	$PYTHON - "$STATE_DIR/state.journal" $REFUSED <<'PY'
import json, sys
text = open(sys.argv[1]).read()
if text and not text.endswith("\n"):
    sys.exit("the journal ends in the middle of a line")
dec = json.JSONDecoder()
for n, line in enumerate(text.splitlines(), 1):
    try:
        obj, end = dec.raw_decode(line)
    except ValueError as e:
        sys.exit("line %d is not JSON (%s): %r" % (n, e, line))
    if end != len(line) or not isinstance(obj, dict):
        sys.exit("line %d is not exactly one JSON object: %r" % (n, line))
    if obj.get("internal_port") in [int(p) for p in sys.argv[2:]]:
        sys.exit("line %d holds refused internal port %s" % (n, obj["internal_port"]))
PY
}

# all_kept: after a restart the kernel has every acknowledged mapping with
# its port and none of the refused ones.
all_kept() {
	local l a iport eport bad=0
	l=$(nft_map) || { echo "       $l"; return 1; }
	for a in $ACKED; do
		iport=${a%:*} eport=${a#*:}
		grep -q "^tcp $eport $CLIENT $iport " <<<"$l" || { echo "       acknowledged $iport -> $eport is missing"; bad=1; }
	done
	for iport in $REFUSED; do
		awk -v c="$CLIENT" -v p="$iport" '$3 == c && $4 == p { f = 1 } END { exit !f }' <<<"$l" &&
			{ echo "       refused $iport is back"; bad=1; }
	done
	return $bad
}

ASAN_SHIM="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
DAEMON_WRAPPER="env LD_PRELOAD=$FAULTS_LIB NATPMP_FAULTS=$FAULTS ASAN_OPTIONS=$ASAN_SHIM"
daemon_start
unset DAEMON_WRAPPER
check "a mapping before any fault" granted 5001

# --- the journal's write: the disk fills just before a line's newline ---
faults "write state.journal ENOSPC partial"
check "the journal's write fails (disk full, all but the newline written): result 3" refused 5002
check "... and again for the next request, while the disk stays full" refused 5003
check "... the log says why" logged "cannot write $STATE_DIR/state.journal: No space left on device; the change is refused"
faults
check "once the write works again: result 0" granted 5004
check "the journal holds whole lines only, none of the refused mappings" journal_sound

# --- the journal's sync fails, and so does the sync of the cut back ---
faults "fdatasync state.journal EIO"
check "the journal's fdatasync fails (EIO): result 3" refused 5005
check "... it cannot be cut back either: the daemon leaves that journal" logged "nor cut it back; the next change starts a new one"
faults
check "the next request starts a new generation and is granted" granted 5006

# --- the snapshot that starts a new generation fails at each step ---
faults "fdatasync state.journal EIO"
check "(the journal is left again)" refused 5007
faults "fsync state.json. EIO"
check "the snapshot's fsync fails: result 3" refused 5008
faults "rename state.json EIO"
check "the snapshot's rename fails: result 3" refused 5009
faults "fsync DIR EIO"
check "the directory's fsync after the rename fails: result 3" refused 5010
faults
check "then a snapshot succeeds: result 0" granted 5011

# --- nftables refuses after the journal was written ---
faults "nft - ENOBUFS"
check "nftables refuses the change after it was journaled: result 3" refused 5012
faults
check "... then the next request is granted" granted 5013
check "the journal no longer holds the change nftables refused" journal_sound

# --- the journal's write fails and it cannot be cut back ---
faults "write state.journal ENOSPC partial" "ftruncate state.journal EIO"
check "a write that fails and cannot be cut back: result 3" refused 5014
faults
check "... the next request starts a new generation and is granted" granted 5015

echo "figure: acknowledged:$ACKED; refused:$REFUSED"
daemon_kill KILL
: >"$LOG"
daemon_start
check "after SIGKILL and a restart, every acknowledged mapping is back with its port, none of the refused" all_kept
check "... and nothing on disk was damaged" eval '! grep -q "damaged\|unusable" "$LOG"'
check "... and each acknowledged one forwards" forward tcp 5013 5013

# --- a real file system that fills up ---
daemon_kill TERM
STATE_DIR=$LAB_DIR/small
mkdir -p "$STATE_DIR"
must mount -t tmpfs -o size=64k,mode=0755 natpmp-test "$STATE_DIR"
LAB_MOUNTS="$LAB_MOUNTS $STATE_DIR"
ACKED="" REFUSED=""
: >"$LOG"
daemon_start
for p in 6001 6002 6003; do check "a mapping on a 64 KiB tmpfs ($p)" granted $p; done
dd if=/dev/zero of="$STATE_DIR/fill" bs=4096 2>/dev/null
first_refused=""
for p in $(seq 6004 6100); do
	map "$p"
	[ "$RESULT" = 0 ] || { first_refused=$p; break; }
done
check "with the tmpfs full, a request gets result 3 once the journal needs a new page (at $first_refused)" \
	eq "$RESULT" 3
check "... and the next one too, while it stays full" refused 6101
rm -f "$STATE_DIR/fill"
check "space freed: result 0 again" granted 6200
check "... and again" granted 6201
check "the journal holds whole lines only, none of the refused mappings" journal_sound
daemon_kill KILL
: >"$LOG"
daemon_start
check "after SIGKILL and a restart, every acknowledged mapping is back, none of the refused ($(wc -w <<<"$ACKED") and $(wc -w <<<"$REFUSED"))" all_kept
check "... and nothing on disk was damaged" eval '! grep -q "damaged\|unusable" "$LOG"'
lab_finish
