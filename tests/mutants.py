#!/usr/bin/env python3
"""mutants.py - does the suite catch a daemon that is wrong?

  python3 tests/mutants.py [--list] [--keep] [NAME...]      (as root, after sh scripts/deps.sh)

Each mutant below is a bug a user would notice, written as exact text
replacements in the sources.  The script copies the working tree (as it is,
committed or not) into a scratch directory, builds it once, runs the tests
named for each mutant on the unchanged copy (the control: they must pass
there, or a failure later proves nothing), then for each mutant applies its
replacements, rebuilds and runs those tests again.  A mutant is caught when
at least one of its tests fails.  A replacement whose text is not found
exactly once is reported, never silently skipped: the source moved on and
the mutant needs rewriting.

It prints a Markdown table, mutant by mutant, and exits 0 only if every
mutant was caught.  It takes about half an hour; it is not part of CI.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name: (the bug as a user sees it, [(file, old, new), ...], [tests that must catch it])
MUTANTS = {
    "renewal-lifetime-uncapped": (
        "a renewal is not capped at --max-lifetime",
        [("src/engine/table.c",
          "\t\te->lifetime = granted;\n\t\te->expires = now + granted;",
          "\t\te->lifetime = lifetime;\n\t\te->expires = now + lifetime;"),
         ("src/engine/table.c",
          "\t\tgrant->external_port = e->external_port;\n\t\tgrant->lifetime = granted;",
          "\t\tgrant->external_port = e->external_port;\n\t\tgrant->lifetime = lifetime;")],
        ["int-mapping"]),
    "journal-no-fdatasync": (
        "no fdatasync in the journal append: answers leave before the change is on disk",
        [("src/store/journal.c", "if (rc == 0 && fdatasync(fd) < 0)", "if (0 && fdatasync(fd) < 0)")],
        ["int-durability"]),
    "reinstall-without-sources": (
        "a reinstall (repair, restart, reload) restores the mappings map but not sources: "
        "the client's own traffic leaves from its internal port",
        [("src/kernel/nft_impl.h", "\tstruct nft_pending pending[NFT_N_SETS];",
          "\tstruct nft_pending pending[NFT_N_SETS];\n\tint mutant_installing;"),
         ("src/kernel/nft.c", "\tnft_drop_pending(n);\n\tn->n_msgs = 0;",
          "\tnft_drop_pending(n);\n\tn->mutant_installing = 0;\n\tn->n_msgs = 0;"),
         ("src/kernel/nft_rules.c", "\tnft_flush_all(n);\n\t/* Create-if-missing",
          "\tnft_flush_all(n);\n\tn->mutant_installing = 1;\n\t/* Create-if-missing"),
         ("src/kernel/nft.c", "\treturn nft_elem(n, NFT_SET_SOURCES, type, src_key, src_data, timeout);",
          "\treturn n->mutant_installing ? 0 : nft_elem(n, NFT_SET_SOURCES, type, src_key, src_data, timeout);")],
        ["int-repair", "int-restart", "int-reload"]),
    "repair-waits-900ms": (
        "the repair waits 900 ms instead of 100 ms",
        [("src/daemon/server_impl.h", "#define SERVER_REPAIR_DELAY_MS 100", "#define SERVER_REPAIR_DELAY_MS 900")],
        ["int-repair"]),
    "renewal-moves-port": (
        "a renewal suggesting another port gets a new port",
        [("src/engine/table.c", "\tif (e) {\n\t\t/*\n\t\t * Renewal:",
          "\tif (e && suggested_port && suggested_port != e->external_port) {\n"
          "\t\ttable_entry_remove(t, ei);\n\t\te = NULL;\n\t}\n\tif (e) {\n\t\t/*\n\t\t * Renewal:")],
        ["int-mapping"]),
    "delete-all-crosses-protocols": (
        "a delete-all (internal port 0, lifetime 0) removes the other protocol's mappings too",
        [("src/engine/table.c", "\t\tif (e->protocol == protocol && table_may_change(e, who->origin)",
          "\t\tif ((e->protocol == protocol || 1) && table_may_change(e, who->origin)")],
        ["int-mapping"]),
    "no-repair": (
        "no repair after nft flush ruleset or any foreign change",
        [("src/daemon/install.c",
          "\t\tlog_warnx(\"table ip %s was changed by %s, not by this daemon: restoring it\", s->cfg.nat_table, who);\n"
          "\t\tinstall_schedule_repair(s, SERVER_REPAIR_DELAY_MS);",
          "\t\tlog_warnx(\"table ip %s was changed by %s, not by this daemon: restoring it\", s->cfg.nat_table, who);")],
        ["int-repair"]),
    "no-journal-write": (
        "no journal write at all: mappings acknowledged since the last snapshot are lost at a crash",
        [("src/store/journal.c", "\trc = state_write_all(fd, b.p, b.len);\n\t/* The answers wait",
          "\t/* The answers wait")],
        ["int-crash", "int-restart", "int-durability"]),
    "no-hairpin-masquerade": (
        "hairpin: a LAN host reaching a mapping through the external address gets answers from the wrong address",
        [("src/kernel/nft_rules.c", "\tfor (int kind = 0; kind < RULE_COUNT; kind++)\n",
          "\tfor (int kind = 0; kind < RULE_COUNT; kind++)\n\t\tif (kind != RULE_HAIRPIN_MASQ)\n")],
        ["int-flows", "int-restart"]),
    "rate-limit-never-drops": (
        "--rate-limit drops nothing: one LAN host can flood the daemon",
        [("src/engine/ratelimit.c", "\tif (r->rate == 0)\n\t\treturn true;", "\treturn true;")],
        ["int-abuse"]),
    "answers-outside-lan": (
        "requests from sources outside the LAN subnets are answered",
        [("src/daemon/udp.c", "\treturn udp_match(u, AF_INET, &src.s_addr, false, now);",
          "\t(void)udp_match(u, AF_INET, &src.s_addr, false, now);\n\treturn true;")],
        ["int-protocol"]),
    "expiry-keeps-forward": (
        "an expired mapping is dropped from the table but its forward stays in the kernel (until the kernel's "
        "own timeout, 30 s later)",
        [("src/daemon/install.c", "\t\tif (ch[i].op == TABLE_DEL)\n\t\t\tr = nft_del(s->nft, m);",
          "\t\tif (ch[i].op == TABLE_DEL)\n\t\t\tr = m->expires <= now ? 0 : nft_del(s->nft, m);")],
        ["int-forward", "int-mapping"]),
    "second-daemon-not-refused": (
        "a second daemon on the same state directory and table starts and fights the first",
        [("src/daemon/server.c",
          "\tif (lock_take_dir(&s->lock, cfg->state_dir) < 0 || lock_take_table(&s->lock, cfg->nat_table) < 0)\n\t\treturn -1;\n",
          "")],
        ["int-lock"]),
    "client-deletes-admin-mapping": (
        "a LAN host's NAT-PMP delete removes a mapping the administrator made through the HTTP API",
        [("src/engine/table.c", "\treturn origin == TABLE_ORIGIN_HTTP || e->origin != TABLE_ORIGIN_HTTP;",
          "\treturn true;")],
        ["int-http"]),
    "rules-ignored": (
        "--rule deny lines are ignored: every LAN host maps every port",
        [("src/engine/table_port.c", "\tif (t->cfg.n_rules == 0)\n\t\treturn true;\n\tif (!table_addr_is_v4(client))",
          "\tif (t->cfg.n_rules == 0 || 1)\n\t\treturn true;\n\tif (!table_addr_is_v4(client))")],
        ["int-rules"]),
    "pcp-nonce-ignored": (
        "a PCP mapping is not its nonce's: another nonce (or NAT-PMP) renews or deletes it",
        [("src/engine/table.c",
          "\tif (who->origin != TABLE_ORIGIN_PCP)\n\t\treturn true;\n\treturn e->nonce ?",
          "\treturn false;\n\treturn e->nonce ?")],
        ["int-pcp"]),
    "pcp-filter-accepted": (
        "PCP's FILTER option is accepted and ignored (miniupnp#779): the client believes in a filter that is not there",
        [("src/wire/pcp.c", "\tif (v == PCP_MAP && r.filters) {",
          "\tif (v == PCP_MAP && 0) {")],
        ["int-pcp"]),
    "pinhole-not-marked": (
        "an IPv6 pinhole marks nothing: the owner's forward chain drops what it should admit",
        [("src/kernel/nft_rules.c", "mark = n->pinhole_mark & n->pinhole_mask;", "mark = 0;")],
        ["int-pinhole"]),
    "pinhole-flows-kept": (
        "a deleted IPv6 pinhole's open connections go on (its IPv6 conntrack entries stay)",
        [("src/kernel/conntrack.c", "\tif ((v6 = ct_flush_family(c, ms, n, true)) < 0)",
          "\tif ((v6 = 0) < 0)")],
        ["int-pinhole"]),
    "stun-no-keepalive": (
        "STUN mode sends no keep-alive: the carrier NAT's binding lapses and peers stop getting through",
        [("src/outer/stunkeep.c",
          "\t\treturn;\n\t}\n\tstun_io_arm(b->timer, k->keepalive_ms);\n\tset_address(k, x.sin_addr.s_addr);",
          "\t\treturn;\n\t}\n\tset_address(k, x.sin_addr.s_addr);")],
        ["int-cgnat"]),
    "stun-filtering-ignored": (
        "STUN mode maps through a filtering or symmetric NAT as if it were a full cone",
        [("src/outer/stunkeep.c", "\tk->forwarding = !k->why_not[0] || k->allow_filtered;",
          "\tk->forwarding = true;")],
        ["int-cgnat"]),
    "stun-local-port-told": (
        "STUN mode tells clients the router's local port, not the public one the carrier NAT gave",
        [("src/outer/stunkeep.c", "\tb->port = ntohs(x.sin_port);", "\tb->port = b->local_port;")],
        ["int-cgnat"]),
}


def run(cmd, cwd, log=None, env=None):
    with open(log, "w") if log else open(os.devnull, "w") as out:
        return subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env).returncode


def copy_tree(dest):
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split("\n")
    for f in files:
        if not f or not os.path.isfile(os.path.join(ROOT, f)):
            continue
        os.makedirs(os.path.join(dest, os.path.dirname(f)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), os.path.join(dest, f))


def failed_tests(build):
    """The failed tests, each as "name (its first failed checks)"."""
    path = os.path.join(build, "meson-logs", "testlog.json")
    names = []
    if os.path.exists(path):
        for line in open(path):
            if line.strip():
                t = json.loads(line)
                if t["result"] not in ("OK", "EXPECTEDFAIL"):
                    checks = [l[len("FAIL - "):] for l in (t.get("stdout") or "").splitlines()
                              if l.startswith("FAIL - ")]
                    more = " and %d more" % (len(checks) - 2) if len(checks) > 2 else ""
                    names.append("%s (%s)" % (t["name"], "; ".join('"%s"' % c for c in checks[:2]) + more
                                               if checks else t["result"]))
    return names


def test(src, build, tests, log):
    """The names of the tests that failed, or None if the build failed."""
    if run(["meson", "compile", "-C", build], src, log) != 0:
        return None
    if os.path.exists(os.path.join(build, "meson-logs", "testlog.json")):
        os.remove(os.path.join(build, "meson-logs", "testlog.json"))
    run(["meson", "test", "-C", build, "--print-errorlogs"] + tests, src, log + ".test")
    return failed_tests(build)


def apply(src, edits):
    """Applies the edits; returns the original texts, or raises ValueError naming what did not match."""
    originals = {}
    for path, old, new in edits:
        full = os.path.join(src, path)
        text = originals.get(path) or open(full).read()
        originals.setdefault(path, text)
        current = open(full).read()
        if current.count(old) != 1:
            raise ValueError("%s: the text to replace occurs %d times, not once: %r"
                             % (path, current.count(old), old[:60]))
        open(full, "w").write(current.replace(old, new))
    return originals


def main(argv):
    keep = "--keep" in argv
    names = [a for a in argv[1:] if not a.startswith("--")]
    if "--list" in argv:
        for name, (what, _, tests) in MUTANTS.items():
            print("%-30s %s (%s)" % (name, what, ", ".join(tests)))
        return 0
    unknown = [n for n in names if n not in MUTANTS]
    if unknown:
        sys.stderr.write("mutants.py: no mutant named %s (see --list)\n" % ", ".join(unknown))
        return 2
    if os.geteuid() != 0:
        sys.stderr.write("mutants.py: the integration tests need root\n")
        return 2
    chosen = names or list(MUTANTS)
    scratch = tempfile.mkdtemp(prefix="natpmp-mutants.")
    src, build, logs = os.path.join(scratch, "src"), os.path.join(scratch, "src", "build"), os.path.join(scratch, "logs")
    os.makedirs(logs)
    copy_tree(src)
    print("mutants.py: working in %s" % scratch, file=sys.stderr)
    if run(["meson", "setup", build], src, os.path.join(logs, "setup")) != 0:
        print("mutants.py: meson setup failed; see %s/setup" % logs, file=sys.stderr)
        return 1
    rows, all_caught = [], True
    tests = sorted({t for n in chosen for t in MUTANTS[n][2]})
    control = test(src, build, tests, os.path.join(logs, "control"))
    if control is None or control:
        print("mutants.py: the unchanged copy fails %s: fix that first (logs in %s)"
              % (control if control is not None else "to build", logs), file=sys.stderr)
        return 1
    for name in chosen:
        what, edits, tests = MUTANTS[name]
        print("mutants.py: %s ..." % name, file=sys.stderr)
        try:
            originals = apply(src, edits)
        except ValueError as e:
            rows.append((name, what, tests, "NOT APPLIED: %s" % e))
            all_caught = False
            continue
        failed = test(src, build, tests, os.path.join(logs, name))
        for path, text in originals.items():
            open(os.path.join(src, path), "w").write(text)
        if failed is None:
            verdict = "does not build (see %s)" % os.path.join(logs, name)
            all_caught = False
        elif failed:
            verdict = "caught by " + "; ".join(failed)
        else:
            verdict = "NOT CAUGHT"
            all_caught = False
        rows.append((name, what, tests, verdict))
    print("| mutant | the bug a user would notice | tests run | verdict |")
    print("|---|---|---|---|")
    for name, what, tests, verdict in rows:
        print("| %s | %s | %s | %s |" % (name, what, ", ".join(tests), verdict))
    if keep:
        print("mutants.py: kept %s" % scratch, file=sys.stderr)
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0 if all_caught else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
