#!/usr/bin/env python3
"""durability.py STRACE_LOG STATE_DIR HTTP_PORT - did every answer wait for the disk?

Reads the daemon's system calls, traced with
  strace -qq -yy -s 0 -e trace=<see TRACED> -o STRACE_LOG
and checks, at each answer that acknowledges a mapping (a 16-byte NAT-PMP map
answer sent from port 5351, or an HTTP response written on a connection to
HTTP_PORT):

  1. synced: every write to a file under STATE_DIR has been followed by an
     fsync or fdatasync of that file, and every rename there by an fsync of
     the directory: nothing the answer acknowledges is only in the page cache;
  2. written: since the request was received (the last read on that
     connection, or the last recv on the NAT-PMP socket), something was
     written to STATE_DIR and synced: the answer is not sent first and
     written later.

SIGKILL keeps the page cache, so a test that kills the daemon cannot see a
missing sync; the order of the calls shows it.  Prints one line per
violation and a summary "N answers checked, M violations"; exit 0 only if
at least one answer was checked and none broke the rules.
"""
import re
import sys

TRACED = ("write,pwrite64,writev,pwritev,pwritev2,fsync,fdatasync,close,rename,renameat,renameat2,"
          "sendmmsg,sendmsg,sendto,recvmmsg,recvmsg,recvfrom,read,readv")

# name(fd<what -yy says it is>, ...) = result; a TCP socket's description holds "->".
CALL = re.compile(r"^(?:\d+\s+)?([a-z0-9_]+)\((\d+)<((?:[^>-]|-(?!>)|->)*)>(.*)\)\s+=\s+(-?\d+)")
RENAME = re.compile(r"^(?:\d+\s+)?(rename|renameat|renameat2)\((.*)\)\s+=\s+(-?\d+)")


def main(argv):
    if len(argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    log, state_dir, http_port = argv[1], argv[2].rstrip("/"), argv[3]
    dirty = {}          # fd -> path written and not yet synced
    lost = []           # paths closed while dirty
    dir_unsynced = False
    written_since = {}  # connection key -> a synced state write happened since its last receive
    pending_write = False  # a state write since the last sync (any file)
    checked, violations = 0, []

    def state_path(path):
        return path == state_dir or path.startswith(state_dir + "/")

    for n, line in enumerate(open(log, errors="replace"), 1):
        m = RENAME.match(line)
        if m and int(m.group(3)) == 0 and state_dir in m.group(2):
            dir_unsynced = True
            continue
        m = CALL.match(line)
        if not m:
            continue
        name, fd, target, args, ret = m.group(1), m.group(2), m.group(3), m.group(4), int(m.group(5))
        if ret < 0:
            continue
        udp = target.startswith("UDP:") and target.endswith(":5351]")
        http = target.startswith("TCP:") and (":%s->" % http_port) in target
        if state_path(target):
            if name in ("write", "pwrite64", "writev", "pwritev", "pwritev2") and ret > 0:
                dirty[fd] = target
                pending_write = True
            elif name in ("fsync", "fdatasync"):
                if target == state_dir:
                    dir_unsynced = False
                dirty.pop(fd, None)
                if not dirty:
                    # Everything written so far is on disk: it counts for every request waiting.
                    if pending_write:
                        for key in written_since:
                            written_since[key] = True
                    pending_write = False
            elif name == "close" and fd in dirty:
                lost.append(dirty.pop(fd))
            continue
        if udp and name in ("recvmmsg", "recvmsg", "recvfrom") and ret > 0:
            written_since["udp"] = False
        elif http and name in ("read", "readv") and ret > 0:
            written_since[target] = False
        elif udp and name in ("sendmmsg", "sendmsg", "sendto"):
            # Only map answers acknowledge a mapping; announcements and address answers are 12 bytes.
            if "iov_len=16" not in args and "msg_len=16" not in args and not args.rstrip().endswith("16"):
                continue
            checked += 1
            why = problems(dirty, lost, dir_unsynced, written_since.get("udp"))
            if why:
                violations.append("line %d: a NAT-PMP answer left %s" % (n, why))
        elif http and name in ("write", "writev", "sendmsg", "sendto"):
            if not args.lstrip(", ").startswith('"HTTP/1.1 200') and "HTTP/1.1 200" not in args:
                continue
            checked += 1
            why = problems(dirty, lost, dir_unsynced, written_since.get(target))
            if why:
                violations.append("line %d: an HTTP answer left %s" % (n, why))
    for v in violations:
        print(v)
    print("%d answers checked, %d violations" % (checked, len(violations)))
    return 0 if checked and not violations else 1


def problems(dirty, lost, dir_unsynced, written):
    why = []
    if dirty:
        why.append("before %s was synced" % ", ".join(sorted(set(dirty.values()))))
    if lost:
        why.append("after %s was closed unsynced" % ", ".join(sorted(set(lost))))
    if dir_unsynced:
        why.append("before a rename in the state directory was synced")
    if written is False:
        why.append("before anything was written and synced for its request")
    return "; ".join(why)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
