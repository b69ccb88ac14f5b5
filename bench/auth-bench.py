#!/usr/bin/env python3
"""Authenticated REGISTER against Kamailio: ferrosip beside Kamailio with auth_db on SQLite,
in one run.

Usage (needs sipp from sip-tester, kamailio and kamailio-sqlite-modules; stdlib Python):

  cargo build --release -p ferrosip
  python3 bench/auth-bench.py --users 20000 --rate 1000 --runs 3 \\
      --server kamailio --server ferrosip=target/release/ferrosip

One operation is one authenticated registration: REGISTER, 401, REGISTER with digest
credentials, 200 (bench/register-auth.xml). The same N subscribers (user0..userN-1 at
127.0.0.1, one random password each) are written into both databases: ferrosip's (the first
with `ferrosip user add --password-stdin`, which also creates the schema, the rest inserted
with the same HA1s — MD5 and SHA-256 of user:realm:password — after checking that they
match what the CLI stored) and Kamailio's subscriber table (Kamailio's SQLite schema from
/usr/share/kamailio/db_sqlite, ha1 = MD5(user:realm:password), ha1b =
MD5(user@domain:realm:password), no plain password).

Each server is started fresh on its own loopback port with a fresh database, probed (a
REGISTER without credentials must get 401; with the right credentials 200; credentials of
another subscriber for this To 403), driven by sipp at a fixed rate with -m N (each user
once, SEQUENTIAL injection file), and measured from outside as shared/peers/sipbench.py
does: CPU seconds of the server's whole process tree (user+sys from /proc) over the
operations sipp completed, and its PSS at the end. Each line also shows the 401s and 200s
sipp received (from -trace_counts), the challenges offered, sipp's own CPU, and cpu_wait,
the share of the time some task waited for a core (/proc/pressure/cpu): before each
measurement the tool waits for an idle machine (--idle-wait), and a run during which other
work competed (cpu_wait above --noisy-psi, 10%) is marked NOISY. The VM's speed drifts from
run to run: compare servers within a run, and look at several runs.

Servers (each --server, in the order given, per run):
  kamailio[:OPT,...][=PATH]     bench/kamailio-auth.cfg; OPTs: qm, fm or tlsf choose
                                Kamailio's memory manager (-x; its default is qm), others
                                are defines passed with -A (NO_NC: no nonce-count check);
                                PATH: the kamailio binary
  ferrosip[:ALG,...]=PATH       ferrosip with [auth] algorithms = [ALG, ...] (default MD5)
                                and [security] flood_limit = 0
Ratios: each ferrosip against each Kamailio of the same run, and over the runs their
median. Exit status non-zero when a server failed an operation or a probe.

Things to know:
- sipp 3.6 answers the first challenge only and speaks MD5 only: ferrosip's default
  (SHA-256 offered first) makes sipp exit at the first 401; `ferrosip:MD5` (the default
  here, what Kamailio offers) and `ferrosip:MD5,SHA-256` both work.
- Kamailio keeps the bindings in memory (usrloc db_mode 0, as the reference config of the
  side-by-side runs) and reads the subscriber from SQLite on each authenticated REGISTER;
  ferrosip writes every binding to SQLite before its 200 OK and holds the subscribers in
  memory (loaded at start).
- Kamailio's memory manager matters: with its default (qm) Kamailio spends a fifth of its
  CPU in qm_malloc; `kamailio:fm` or `kamailio:tlsf` cost about a third less per operation.
- Kamailio's default shared memory (64 MB) holds about 50000 bindings: beyond that, give
  --kamailio-shm (MB).
- CPU per operation falls as the rate rises (fewer idle wake-ups per message) and rises
  with the number of registrations held: compare at the same --users and --rate.
"""
import argparse, csv, glob, hashlib, os, re, secrets, shutil, signal, socket, sqlite3
import statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
DOMAIN = "127.0.0.1"


# --- process tree measurements (as sipbench) ---------------------------------------------

def descendants(pid):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def tree_cpu_s(pid):
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def tree_pss_kb(pid):
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def machine_busy_s():
    """CPU seconds spent by the whole machine (all cores, not idle or iowait) since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def cpu_pressure_s():
    """Seconds during which some runnable task waited for a CPU (PSI, /proc/pressure/cpu);
    None without PSI. Unlike /proc/stat, which samples at ticks and misses the short bursts
    of a SIP server, this sees other work competing for the cores."""
    try:
        with open("/proc/pressure/cpu") as f:
            return int(f.readline().split("total=")[1]) / 1e6
    except (OSError, IndexError, ValueError):
        return None


def wait_idle(max_wait, limit=0.15, window=3.0):
    """Waits (up to max_wait seconds) until, over `window` seconds, the machine is busy
    under `limit` cores and tasks waited for a CPU less than 2% of the time: other work on
    the machine (a build) skews the figures. Returns the seconds waited, or None when it
    never got idle."""
    t0 = time.time()
    while True:
        b0, p0 = machine_busy_s(), cpu_pressure_s()
        time.sleep(window)
        b1, p1 = machine_busy_s(), cpu_pressure_s()
        if (b1 - b0) / window < limit and (p0 is None or (p1 - p0) / window < 0.02):
            return time.time() - t0
        if time.time() - t0 > max_wait:
            return None


# --- subscribers ---------------------------------------------------------------------------

def h(name, text):
    return hashlib.new(name, text.encode()).hexdigest()


def make_users(n):
    users = [(f"user{i}", secrets.token_hex(8)) for i in range(n)]
    probe = ("probe", secrets.token_hex(8))
    return users, probe


def write_csv(path, users):
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for u, p in users:
            f.write(f"{u};{p}\n")


def ferrosip_db(binary, path, users):
    """The first user through the CLI (schema and reference row), the rest inserted."""
    first, rest = users[0], users[1:]
    r = subprocess.run([binary, "user", "add", f"{first[0]}@{DOMAIN}", "--password-stdin",
                        "--db", path], input=first[1] + "\n", text=True, capture_output=True)
    if r.returncode != 0:
        sys.exit(f"ferrosip user add failed: {r.stderr.strip()}")
    db = sqlite3.connect(path)
    row = db.execute("SELECT username, domain, ha1_md5, ha1_sha256 FROM subscriber").fetchall()
    u, p = first
    mine = (u, DOMAIN, h("md5", f"{u}:{DOMAIN}:{p}"), h("sha256", f"{u}:{DOMAIN}:{p}"))
    if row != [mine]:
        sys.exit(f"HA1s computed here differ from ferrosip's: {row} vs {mine}")
    with db:
        db.executemany("INSERT INTO subscriber (username, domain, ha1_md5, ha1_sha256) "
                       "VALUES (?, ?, ?, ?)",
                       [(u, DOMAIN, h("md5", f"{u}:{DOMAIN}:{p}"),
                         h("sha256", f"{u}:{DOMAIN}:{p}")) for u, p in rest])
    count = db.execute("SELECT count(*) FROM subscriber").fetchone()[0]
    db.close()
    if count != len(users):
        sys.exit(f"ferrosip database holds {count} subscribers, not {len(users)}")


def kamailio_db(schema_dir, path, users):
    db = sqlite3.connect(path)
    for f in ("standard-create.sql", "auth_db-create.sql"):
        db.executescript(open(os.path.join(schema_dir, f)).read())
    with db:
        db.executemany("INSERT INTO subscriber (username, domain, password, ha1, ha1b) "
                       "VALUES (?, ?, '', ?, ?)",
                       [(u, DOMAIN, h("md5", f"{u}:{DOMAIN}:{p}"),
                         h("md5", f"{u}@{DOMAIN}:{DOMAIN}:{p}")) for u, p in users])
    db.close()


# --- a small digest client for the probes --------------------------------------------------

class Probe:
    def __init__(self, port):
        self.port = port
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.me = self.s.getsockname()[1]
        self.s.settimeout(0.3)
        self.n = 0

    def close(self):
        self.s.close()

    def request(self, method, to_user, extra="", tries=10):
        self.n += 1
        uri = f"sip:{DOMAIN}:{self.port}"
        to = f"<sip:{to_user}@{DOMAIN}>" if to_user else f"<{uri}>"
        frm = to if to_user else f"<sip:probe@{DOMAIN}>"
        msg = (f"{method} {uri} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP 127.0.0.1:{self.me};branch=z9hG4bKprobe{self.n}x{secrets.token_hex(4)}\r\n"
               f"From: {frm};tag=p{self.n}\r\nTo: {to}\r\nCall-ID: probe{self.n}-{secrets.token_hex(4)}@x\r\n"
               f"CSeq: {self.n} {method}\r\nMax-Forwards: 70\r\n"
               + (f"Contact: <sip:{to_user}@127.0.0.1:{self.me}>\r\nExpires: 60\r\n" if to_user else "")
               + extra + "Content-Length: 0\r\n\r\n").encode()
        for _ in range(tries):
            self.s.sendto(msg, ("127.0.0.1", self.port))
            try:
                while True:
                    data = self.s.recv(65535).decode(errors="replace")
                    if f"CSeq: {self.n} " in data and not data.startswith("SIP/2.0 100"):
                        return data
            except socket.timeout:
                continue
        return None

    @staticmethod
    def status(resp):
        return int(resp.split(None, 2)[1]) if resp else None

    @staticmethod
    def challenges(resp):
        out = []
        for line in resp.split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "www-authenticate":
                params = dict((k.lower(), v.strip('"')) for k, v in
                              re.findall(r'(\w+)=("[^"]*"|[^\s,]+)', value))
                out.append(params)
        return out

    def authorization(self, challenge, user, password):
        realm, nonce = challenge["realm"], challenge["nonce"]
        uri = f"sip:{DOMAIN}:{self.port}"
        ha1 = h("md5", f"{user}:{realm}:{password}")
        ha2 = h("md5", f"REGISTER:{uri}")
        parts = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"',
                 "algorithm=MD5"]
        if "auth" in challenge.get("qop", "").split(","):
            cnonce = secrets.token_hex(4)
            resp = h("md5", f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
            parts += ["qop=auth", "nc=00000001", f'cnonce="{cnonce}"']
        else:
            resp = h("md5", f"{ha1}:{nonce}:{ha2}")
        parts.append(f'response="{resp}"')
        if "opaque" in challenge:
            parts.append(f'opaque="{challenge["opaque"]}"')
        return "Authorization: Digest " + ", ".join(parts) + "\r\n"

    def register(self, to_user, auth_user, password):
        """REGISTER without credentials, then with auth_user's credentials for the MD5
        challenge: (first status, challenges, second status)."""
        r1 = self.request("REGISTER", to_user)
        ch = self.challenges(r1) if r1 else []
        md5 = [c for c in ch if c.get("algorithm", "MD5").upper() == "MD5"]
        if self.status(r1) != 401 or not md5:
            return self.status(r1), ch, None
        r2 = self.request("REGISTER", to_user, self.authorization(md5[0], auth_user, password))
        return 401, ch, self.status(r2)


def wait_port(port, timeout=15.0):
    p = Probe(port)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            if p.request("OPTIONS", None, tries=1):
                return True
            time.sleep(0.1)
        return False
    finally:
        p.close()


# --- servers -------------------------------------------------------------------------------

class Server:
    def __init__(self, spec):
        self.spec = spec
        head, _, path = spec.partition("=")
        kind, _, opts = head.partition(":")
        self.opts = [o for o in opts.split(",") if o]
        if kind == "kamailio":
            self.kind, self.binary = "kamailio", path or shutil.which("kamailio") or "kamailio"
            self.name = "kamailio" + (f"[{','.join(self.opts)}]" if self.opts else "")
        elif kind == "ferrosip":
            if not path:
                sys.exit("ferrosip needs its binary: --server ferrosip=target/release/ferrosip")
            self.kind, self.binary = "ferrosip", os.path.abspath(path)
            self.opts = self.opts or ["MD5"]
            self.name = f"ferrosip[{','.join(self.opts)}]"
        else:
            sys.exit(f"unknown server {spec!r}")
        self.proc = None

    def prepare(self, workdir, users, schema_dir):
        db = os.path.join(workdir, f"{self.kind}.db")
        if self.kind == "kamailio":
            kamailio_db(schema_dir, db, users)
        else:
            ferrosip_db(self.binary, db, users)
        self.db = db

    def start(self, port, workdir, kamailio_shm=None):
        log = open(os.path.join(workdir, f"{self.kind}.log"), "w")
        if self.kind == "kamailio":
            cmd = [self.binary, "-f", os.path.join(HERE, "kamailio-auth.cfg"), "-l",
                   f"udp:127.0.0.1:{port}", "-DD", "-E", "-w", workdir, "-Y", workdir,
                   "-A", f'DBURL="sqlite:///{self.db}"']
            for d in self.opts:
                cmd += ["-x", d] if d in ("qm", "fm", "tlsf") else ["-A", d]
            if kamailio_shm:
                cmd += ["-m", str(kamailio_shm)]
        else:
            cfg = os.path.join(workdir, "ferrosip.toml")
            algs = ", ".join(f'"{a}"' for a in self.opts)
            with open(cfg, "w") as f:
                f.write(f'[server]\nlisten = ["udp:127.0.0.1:{port}"]\ndatabase = "{self.db}"\n\n'
                        f'[auth]\nalgorithms = [{algs}]\n\n[security]\nflood_limit = 0\n\n'
                        # one sipp is one source
                        f'[registrar]\nmax_bindings_per_source = 0\n')
            cmd = [self.binary, "serve", "--config", cfg]
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.pid = self.proc.pid
        if not wait_port(port):
            self.stop()
            sys.exit(f"{self.name} did not answer OPTIONS on udp 127.0.0.1:{port}: "
                     f"see {log.name}")

    def stop(self):
        if not self.proc:
            return
        tree = descendants(self.pid)
        try:
            os.kill(self.pid, signal.SIGTERM)
        except OSError:
            pass
        deadline = time.time() + 5
        while time.time() < deadline and self.proc.poll() is None:
            time.sleep(0.1)
        for p in tree:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        self.proc.wait()
        self.proc = None


def probe(port, users, probe_user):
    """The server challenges, accepts the right credentials and refuses another user's:
    a list of problems (empty when all is well)."""
    p = Probe(port)
    bad = []
    try:
        u, pw = probe_user
        s1, ch, s2 = p.register(u, u, pw)
        if s1 != 401:
            bad.append(f"REGISTER without credentials got {s1}, not 401")
        elif not ch or s2 != 200:
            bad.append(f"REGISTER with credentials got {s2}, not 200 (challenges {ch})")
        s1, _, s2 = p.register(users[0][0], u, pw)
        if s1 == 401 and s2 != 403:
            bad.append(f"REGISTER of {users[0][0]} authenticated as {u} got {s2}, not 403")
        s1, ch, s2 = p.register(u, u, pw + "x")
        if s1 == 401 and s2 in (200, None):
            bad.append(f"REGISTER with a wrong password got {s2}")
        algs = [c.get("algorithm", "MD5") for c in ch]
    finally:
        p.close()
    return bad, algs


def sipp(port, users_csv, rate, count, workdir, sipp_port):
    stf = os.path.join(workdir, "stat.csv")
    cmd = ["sipp", f"127.0.0.1:{port}", "-sf", os.path.join(HERE, "register-auth.xml"),
           "-inf", users_csv, "-i", "127.0.0.1", "-p", str(sipp_port), "-r", str(rate),
           "-m", str(count), "-timeout", str(int(count / rate) + 120), "-nostdin",
           "-recv_timeout", "8000", "-trace_stat", "-stf", stf, "-fd", "1", "-trace_counts",
           "-trace_err"]
    with open(os.path.join(workdir, "sipp.stderr"), "w") as err:
        p = subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=err)
        try:
            _, _, ru = os.wait4(p.pid, 0)
        except BaseException:
            p.kill()
            raise
        p.returncode = 0
    sipp_cpu = ru.ru_utime + ru.ru_stime
    rows = list(csv.reader(open(stf), delimiter=";"))
    stats = dict(zip(rows[0], rows[-1]))
    counts = {}  # response code -> received (sipp's -trace_counts, the last line)
    for path in glob.glob(os.path.join(workdir, "*_counts.csv")):
        rows = list(csv.reader(open(path), delimiter=";"))
        for k, v in zip(rows[0], rows[-1]):
            m = re.fullmatch(r"\d+_(\d{3})_Recv", k)
            if m:
                counts[int(m.group(1))] = counts.get(int(m.group(1)), 0) + int(v)
    return (int(stats["SuccessfulCall(C)"]), int(stats["FailedCall(C)"]),
            int(stats["Retransmissions(C)"]), counts, sipp_cpu, cmd)


def measure(server, users, probe_user, users_csv, rate, port, schema_dir, keep, idle_wait,
            kamailio_shm):
    wd = tempfile.mkdtemp(prefix=f"authbench-{server.kind}-")
    try:
        server.prepare(wd, users + [probe_user], schema_dir)
        server.start(port, wd, kamailio_shm)
        try:
            problems, algs = probe(port, users, probe_user)
            waited = wait_idle(idle_wait) if idle_wait else 0.0
            cpu0, busy0, psi0 = tree_cpu_s(server.pid), machine_busy_s(), cpu_pressure_s()
            t0 = time.time()
            ok, failed, retrans, counts, sipp_cpu, cmd = sipp(port, users_csv, rate, len(users),
                                                              wd, port + 3)
            elapsed = time.time() - t0
            cpu1, busy1, psi1 = tree_cpu_s(server.pid), machine_busy_s(), cpu_pressure_s()
            pss = tree_pss_kb(server.pid)
        finally:
            server.stop()
        if counts.get(401, 0) < ok:
            problems.append(f"sipp saw {counts.get(401, 0)} 401s for {ok} operations")
        errs = glob.glob(os.path.join(wd, "*_errors.log"))
        err_head = open(errs[0]).read(2000) if errs and failed else ""
        if ok + failed < len(users):
            err_head += open(os.path.join(wd, "sipp.stderr")).read()[-1500:]
        return dict(ok=ok, failed=failed, retrans=retrans, counts=counts, algs=algs,
                    cpu_us=(cpu1 - cpu0) * 1e6 / max(ok, 1), cpu_s=cpu1 - cpu0, pss_kb=pss,
                    sipp_cpu_s=sipp_cpu,
                    machine_cpu_s=busy1 - busy0, waited=waited,
                    psi_pct=None if psi0 is None else (psi1 - psi0) * 100 / elapsed,
                    elapsed=elapsed, problems=problems, errors=err_head, workdir=wd,
                    server_cmd=server.cmd, sipp_cmd=cmd)
    finally:
        if not keep:
            shutil.rmtree(wd, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20000, help="subscribers = operations")
    ap.add_argument("--rate", type=int, default=1000, help="authenticated REGISTERs per second")
    ap.add_argument("--runs", type=int, default=1, help="rounds over all servers")
    ap.add_argument("--server", action="append", required=True)
    ap.add_argument("--port", type=int, default=25060, help="first port; each server its own")
    ap.add_argument("--kamailio-schema", default="/usr/share/kamailio/db_sqlite",
                    help="Kamailio's SQLite schema (standard-create.sql, auth_db-create.sql)")
    ap.add_argument("--kamailio-shm", type=int, metavar="MB",
                    help="Kamailio's shared memory (-m); its default 64 MB holds about 50000 "
                         "bindings")
    ap.add_argument("--idle-wait", type=float, default=300,
                    help="seconds to wait at most for an idle machine before each measurement "
                         "(0: do not wait)")
    ap.add_argument("--noisy-psi", type=float, default=10,
                    help="a run during which tasks waited for a CPU more than this %% of the "
                         "time is marked noisy")
    ap.add_argument("--keep", action="store_true", help="keep each run's directory (logs, dbs)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print the commands")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # servers stopped on the way out
    if not shutil.which("sipp"):
        sys.exit("sipp not found: apt-get install sip-tester")
    servers = [Server(s) for s in a.server]
    users, probe_user = make_users(a.users)
    all_ok = True
    ratios = {}
    with tempfile.TemporaryDirectory(prefix="authbench-") as top:
        users_csv = os.path.join(top, "users.csv")
        write_csv(users_csv, users)
        for run in range(1, a.runs + 1):
            results = []
            for i, srv in enumerate(servers):
                port = a.port + 10 * i
                r = measure(srv, users, probe_user, users_csv, a.rate, port, a.kamailio_schema,
                            a.keep, a.idle_wait, a.kamailio_shm)
                # Something else competed for the cores: CPU the machine spent besides the
                # server and sipp above 10% of one core (/proc/stat, which misses short
                # bursts), or tasks waiting for a CPU more than --noisy-psi % of the time.
                other = r["machine_cpu_s"] - r["cpu_s"] - r["sipp_cpu_s"]
                r["noisy"] = (other > 0.10 * r["elapsed"] or
                              (r["psi_pct"] is not None and r["psi_pct"] > a.noisy_psi))
                r["name"] = srv.name
                results.append((srv, r))
                good = r["ok"] == a.users and not r["failed"] and not r["problems"]
                all_ok &= good
                c = r["counts"]
                print(f"run {run} {srv.name:>20} users={a.users} rate={a.rate}/s ok={r['ok']} "
                      f"failed={r['failed']} retrans={r['retrans']} 401s={c.get(401, 0)} "
                      f"200s={c.get(200, 0)} challenges={'+'.join(r['algs'])} "
                      f"cpu_s={r['cpu_s']:.2f} cpu_us_per_op={r['cpu_us']:.1f} "
                      f"pss_kb={r['pss_kb']} wall_s={r['elapsed']:.1f} sipp_cpu_s={r['sipp_cpu_s']:.2f} "
                      f"machine_cpu_s={r['machine_cpu_s']:.2f} "
                      + (f"cpu_wait={r['psi_pct']:.1f}% " if r["psi_pct"] is not None else "")
                      + (" NOISY(other load on the machine)" if r["noisy"] else ""), flush=True)
                for p in r["problems"]:
                    print(f"    PROBLEM: {p}", flush=True)
                if r["errors"]:
                    print("    sipp errors (head):\n      " +
                          r["errors"].strip().replace("\n", "\n      ")[:1500], flush=True)
                if a.verbose:
                    print("    server: " + " ".join(r["server_cmd"]))
                    print("    sipp:   " + " ".join(r["sipp_cmd"]))
                if a.keep:
                    print(f"    kept {r['workdir']}")
            for k, base in results:
                if k.kind != "kamailio":
                    continue
                for s, r in results:
                    if s.kind == "ferrosip":
                        q = r["cpu_us"] / base["cpu_us"]
                        ratios.setdefault(f"{s.name}/{k.name}", []).append(
                            (q, r["noisy"] or base["noisy"]))
                        print(f"run {run} ratio {s.name}/{k.name}: cpu_per_op={q:.2f} "
                              f"pss={r['pss_kb'] / max(base['pss_kb'], 1):.2f}", flush=True)
    if a.runs > 1:
        for name, qs in ratios.items():
            print(f"ratio {name} over {len(qs)} runs: "
                  + " ".join(f"{q:.2f}{'(noisy)' if n else ''}" for q, n in qs)
                  + f" (median {statistics.median(q for q, _ in qs):.2f}"
                  + (f", of the quiet runs {statistics.median(q for q, n in qs if not n):.2f}"
                     if any(not n for _, n in qs) else ", no quiet run") + ")")
    sys.exit(0 if all_ok else 1)


if __name__ == "__main__":
    main()
