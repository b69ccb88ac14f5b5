#!/usr/bin/env python3
"""Highest clean rates: each server on a core of its own, driven by our load tool
(sip_load, an example of the ferrosip crate) on the other core, at rising rates.

  cargo build --release -p ferrosip --bin ferrosip --example sip_load
  python3 bench/limits.py --mode register --server kamailio --server ferrosip=target/release/ferrosip

A rate is clean when every operation completed and nothing was retransmitted, by the load
tool or by the server (sipp's definition of a clean run). Each rate runs --seconds on a
fresh server; the steps stop at the first rate that is not clean. Each line gives the
server's CPU per operation at that rate (its whole process tree, from /proc) and the load
tool's latency of an operation (p50/p99).

Modes (the load tool's): `register` (a REGISTER per user, each user once), `auth` (REGISTER,
401, REGISTER with MD5 digest credentials, 200; --users subscribers with one password, in
ferrosip's database and in Kamailio's auth_db table on SQLite) and `call` (INVITE, 180, 200,
ACK, BYE, 200 to a registered callee that answers at once).

Servers: `kamailio[:OPT,...]` runs bench/kamailio.cfg (register, call; with dialog and acc for
calls) or bench/kamailio-auth.cfg (auth), 2 UDP children; OPTs `qm`, `fm`, `tlsf` choose its
memory manager, `db` writes its bindings through to SQLite (WAL mode) before each REGISTER
is answered (usrloc db_mode 1, as ferrosip persists them); its shared memory is
--kamailio-shm (1024 MB: its default of 64 MB runs out below the rates measured here, and
only the part it touches counts in its PSS). `ferrosip=PATH` runs that binary with its
default script and configuration, persistence on (bindings, calls and CDRs in SQLite), but
for bench/bench.toml's lifted per-source limits (the load comes from one address). Needs
taskset (util-linux), kamailio and kamailio-sqlite-modules for the Kamailio lines. Stdlib
Python.
"""
import argparse, importlib.util, os, shutil, sqlite3, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
spec = importlib.util.spec_from_file_location("auth_bench", os.path.join(HERE, "auth-bench.py"))
ab = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ab)

RATES = {
    "register": [2000, 5000, 10000, 15000, 20000, 25000, 30000, 40000, 50000],
    "auth": [1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000, 15000, 20000],
    "call": [250, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000],
}
PASSWORD = "secret"


def start(server, mode, port, work, users, shm):
    """Starts `server` pinned to CPU 0 on a fresh database; its process."""
    kind, _, rest = server.partition("=")
    name, _, opts = kind.partition(":")
    opts = [o for o in opts.split(",") if o]
    log = open(os.path.join(work, "server.log"), "w")
    pin = ["taskset", "-c", "0"]
    creds = [(f"u{i}", PASSWORD) for i in range(users)]
    if name == "kamailio":
        cfg = "kamailio-auth.cfg" if mode == "auth" else "kamailio.cfg"
        cmd = pin + ["kamailio", "-f", os.path.join(HERE, cfg), "-l", f"udp:127.0.0.1:{port}",
                     "-DD", "-E", "-w", work, "-Y", work, "-m", str(shm)]
        if mode == "call":
            cmd += ["-A", "WITH_CALLS"]
        if mode == "auth" or "db" in opts:
            db = os.path.join(work, "kamailio.db")
            ab.kamailio_db(schema_dir(), db, creds if mode == "auth" else [])
            cmd += ["-A", f'DBURL="sqlite:///{db}"']
        if "db" in opts:
            with sqlite3.connect(db) as c:
                c.executescript(open(os.path.join(schema_dir(), "usrloc-create.sql")).read())
            cmd += ["-A", "WITH_DB", "-A", f'DBWAL="{db}=WAL"']
        for o in opts:
            if o != "db":
                cmd += ["-x", o]
    elif name == "ferrosip":
        binary = os.path.abspath(rest)
        db = os.path.join(work, "ferrosip.db")
        if mode == "auth":
            ab.ferrosip_db(binary, db, creds)
        cfg = os.path.join(work, "ferrosip.toml")
        with open(cfg, "w") as f:
            f.write(open(os.path.join(HERE, "bench.toml")).read())
            if mode == "auth":
                f.write('\n[auth]\nalgorithms = ["MD5"]\n')
        cmd = pin + [binary, "serve", "--config", cfg, "--listen", f"udp:127.0.0.1:{port}",
                     "--db", db, "--api", "off"]
    else:
        sys.exit(f"unknown server {server!r}")
    proc = subprocess.Popen(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    if not ab.wait_port(port):
        stop(proc)
        sys.exit(f"{server} did not answer on udp 127.0.0.1:{port}: see {log.name}")
    return proc


def schema_dir():
    d = "/usr/share/kamailio/db_sqlite"
    if not os.path.isdir(d):
        sys.exit("Kamailio's SQLite schema is missing: apt-get install kamailio-sqlite-modules")
    return d


def stop(proc):
    tree = ab.descendants(proc.pid)
    try:
        os.killpg(proc.pid, 15)
    except OSError:
        pass
    deadline = time.time() + 5
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    for p in tree:
        try:
            os.kill(p, 9)
        except OSError:
            pass
    proc.wait()


def run(load, server, mode, rate, seconds, users, port, shm):
    """One rate on a fresh server: the load tool's figures and the server's CPU per op."""
    count = rate * seconds
    with tempfile.TemporaryDirectory(prefix="limits-") as work:
        proc = start(server, mode, port, work, users, shm)
        try:
            cpu0 = ab.tree_cpu_s(proc.pid)
            cmd = ["taskset", "-c", "1", load, f"127.0.0.1:{port}", mode, str(rate), str(count)]
            if mode == "auth":
                cmd += ["--users", str(users), "--password", PASSWORD]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
            cpu = ab.tree_cpu_s(proc.pid) - cpu0
            pss = ab.tree_pss_kb(proc.pid)
        finally:
            stop(proc)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    r = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    if not r:
        sys.exit(f"the load tool failed: {out.stderr.strip()}")
    r["cpu_us"] = cpu * 1e6 / max(int(r["completed"]), 1)
    r["pss_mb"] = pss / 1024
    r["clean"] = (int(r["completed"]) == count and r["failed"] == "0" and r["retrans"] == "0"
                  and r["server_retrans"] == "0")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=sorted(RATES), required=True)
    ap.add_argument("--server", action="append", required=True)
    ap.add_argument("--rates", help="comma-separated rates (default: the mode's steps)")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--users", type=int, default=1000, help="subscribers for auth")
    ap.add_argument("--load", default=os.path.join(ROOT, "target/release/examples/sip_load"))
    ap.add_argument("--port", type=int, default=16060)
    ap.add_argument("--kamailio-shm", type=int, default=1024,
                    help="Kamailio's shared memory in MB (its default, 64, runs out: about "
                         "50000 bindings, or 500 calls/s with dialogs)")
    a = ap.parse_args()
    if not shutil.which("taskset"):
        sys.exit("taskset not found: apt-get install util-linux")
    if not os.path.exists(a.load):
        sys.exit(f"{a.load} missing: cargo build --release -p ferrosip --example sip_load")
    rates = [int(r) for r in a.rates.split(",")] if a.rates else RATES[a.mode]
    best = {}
    for i, server in enumerate(a.server):
        for rate in rates:
            r = run(a.load, server, a.mode, rate, a.seconds, a.users, a.port + 10 * i,
                    a.kamailio_shm)
            print(f"{server:>40} {a.mode} rate={rate}/s completed={r['completed']} "
                  f"failed={r['failed']} retrans={r['retrans']}+{r['server_retrans']} "
                  f"cpu_us_per_op={r['cpu_us']:.1f} p50/p99_ms={r['p50_ms']}/{r['p99_ms']} "
                  f"pss_mb={r['pss_mb']:.1f} {'clean' if r['clean'] else 'NOT CLEAN'}",
                  flush=True)
            if not r["clean"]:
                break
            best[server] = rate
    for server in a.server:
        print(f"highest clean {a.mode} rate: {server}: {best.get(server, 'none')}/s")


if __name__ == "__main__":
    main()
