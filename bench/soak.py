#!/usr/bin/env python3
"""Soak benchmark: the real server under minutes of calls with packet loss, callees that ring
and vanish and gateways that send only 100 Trying; afterwards its transactions must be back
to zero and its memory back to its baseline.

Usage (needs sipp from sip-tester; stdlib Python; runs on 127.0.0.1 only):

  cargo build --release -p ferrosip
  python3 bench/soak.py                      # 10 minutes at 30 calls/s, 3% loss
  python3 bench/soak.py --minutes 2 --rate 20 --loss 5 --keep

What it does:
  1. Starts target/release/ferrosip fresh (a temporary directory: config, SQLite database,
     log) with timer C short (--timer-c, 10 s) so that calls nobody answers run into it
     within the soak, T1 as given (--t1, default 500 ms), the API on a loopback port.
  2. Registers one sipp callee per kind (as distinct users, from the port it answers on),
     then keeps them running, each with the same --loss:
       normal  bench/soak-uas.xml        180, rings 1 s, 200; ACK, BYE (CANCEL: 200 + 487)
       vanish  bench/soak-uas-vanish.xml 180, then never a word again (not even to CANCEL)
       silent  bench/soak-gw-silent.xml  100 Trying, then never a word again
       gw487   bench/soak-gw-487.xml     100 Trying, silent until a CANCEL: 200 + 487
  3. Calls them through the server from sipp callers, one per flow (kind x cancelled or
     not), at --rate calls/s in all, shared by --mix, with --cancel of each kind's calls
     cancelled by the caller 0.2-2 s after the first provisional response
     (bench/soak-uac.xml, bench/soak-uac-cancel.xml). Every sipp drops --loss % of the
     messages it sends and of those it receives (-lost): retransmissions on both sides.
  4. Warm-up (--warmup s of the same mix, same rate), then waits for the transactions to
     drain: the baseline is the server's PSS then (/proc/PID/smaps_rollup), with 0 active
     transactions.
  5. Soak: --minutes of the mix. Every --sample s a line goes to the CSV (--csv): time,
     phase, ferrosip_transactions_active (GET /metrics), PSS, RSS, server CPU seconds.
  6. Stops the load (the callers have placed their calls and seen them end) and waits at
     most the drain bound for the transactions to reach 0, then --settle s more. The bound,
     computed from the config: timer C + 64*T1 (the CANCEL nobody answers: the branch is
     given up) + max(timer D, timer H + timer I) (the failure upstream and its ACK) +
     20 s margin = 99 s with the defaults.
  7. Reports, and exits non-zero when a check failed:
       - active transactions at the end must be 0 (and must have got there within the bound);
       - end PSS within the memory tolerance of the baseline: end - baseline <=
         max(--mem-tolerance-mb, --mem-tolerance-pct % of baseline), 5 MB or 20% by default;
       - the server must still be running.

How to read the result:
  - "transactions: peak N ... end 0 (0 after X s)": the server kept N contexts at most (the
    calls in progress plus those lingering for their timers: an answered INVITE keeps its
    context 64*T1 for late 2xx retransmissions, a call nobody answers holds one for timer C
    + 64*T1 + ...); end must be 0. A number above 0 at the end is a leak of contexts: the
    CSV shows when the level stopped falling, the server log (--keep) what it last did.
  - "PSS: baseline B, peak P, end E": memory cannot be expected to fall back to exactly B:
    glibc's malloc keeps freed memory in its arenas for reuse rather than returning it to
    the system, and a hash table keeps the capacity it once needed. That is why the
    baseline is taken after a warm-up at the soak's own rate, which brings the heap near
    its working size first: with nothing held, E stays near B however long the soak. E - B
    that grows with --minutes (compare two lengths) is memory held per call: a leak. E - B
    that stops growing is a structure that kept its peak size. The drift line compares
    the PSS of the first and the last fifth of the soak, at full load.
  - "heap" (--heap on, for a server built with glibc's malloc; ferrosip uses jemalloc, so it
    is off by default): glibc's bytes in use (malloc_stats() through gdb), at the baseline
    and at the end, both with 0 transactions. In use back at its baseline while PSS is not:
    the allocator keeps freed memory. In use up as well: the server still holds it.
  - PSS shares pages among the processes that map them: do not run two soaks (two servers
    of the same binary) at once, their PSS halve each other's binary pages. The anonymous
    part (Pss_Anon: heap, stacks) is printed too and does not depend on that.
  - The calls table is the callers' view (sipp): calls placed, completed (the scenario ran
    to its end, whatever the outcome: answered, 487, 408...), failed (sipp gave up: a
    retransmission limit or --recv-timeout), and the outcomes. With loss some calls fail on
    sipp's side (e.g. a lost 200 for a CANCEL cannot be made up: sipp answers a retransmitted
    CANCEL only in some states), and the server must cope with that as well; failures do not
    fail the run, the server's state does.
  - Expected outcomes: normal calls 200; vanish and silent calls 408 (timer C fires, the
    CANCEL gets no answer, the branch is given up 64*T1 later); gw487 calls 487 (timer C's
    CANCEL answered); cancelled calls 487, or 200 when the callee answered first.

Ports: --port P (default 26060) and the next ones: P the server (UDP), P+1 the API, P+2..
the callees, P+10.. the callers, P+100.. sipp's media ports. Nothing leaves 127.0.0.1.
Ctrl-C stops everything it started and removes its temporary directory (--keep keeps it:
server log, sipp logs and statistics).
"""
import argparse, ctypes, os, re, secrets, shutil, signal, socket, statistics, subprocess
import sys, tempfile, time, urllib.request
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DOMAIN = "127.0.0.1"

# kind -> (callee scenario, user it registers as)
KINDS = {
    "normal": ("soak-uas.xml", "soak-normal"),
    "vanish": ("soak-uas-vanish.xml", "soak-vanish"),
    "silent": ("soak-gw-silent.xml", "soak-silent"),
    "gw487": ("soak-gw-487.xml", "soak-gw487"),
}
T4 = 5.0  # seconds, the server's default (timer I)
MARGIN = 20.0


# --- processes -----------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _child_setup():
    """In the child: a session of its own (signals reach its whole group), and SIGTERM when
    this script dies, however it dies (PR_SET_PDEATHSIG)."""
    os.setsid()
    _libc.prctl(1, signal.SIGTERM, 0, 0, 0)


class Procs:
    """Every process started here, stopped on the way out."""

    def __init__(self):
        self.procs = []

    def start(self, cmd, cwd, log, env=None):
        with open(log, "w") as out:
            p = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, env=env, preexec_fn=_child_setup)
        self.procs.append(p)
        return p

    def stop(self, p, grace=5.0):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                p.wait()

    def stop_all(self):
        for p in reversed(self.procs):
            self.stop(p, 3.0)


# --- measurements --------------------------------------------------------------------------

def proc_mem_kb(pid):
    """(PSS, its anonymous part, RSS) of the process in kB, from /proc/PID/smaps_rollup."""
    want = {"Pss:": 0, "Pss_Anon:": 0, "Rss:": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key = line.split(None, 1)[0]
                if key in want:
                    want[key] = int(line.split()[1])
    except OSError:
        pass
    return want["Pss:"], want["Pss_Anon:"], want["Rss:"]


def proc_cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def heap_stats(pid, log):
    """glibc's own account of the heap, asked through gdb (malloc_stats() writes it to the
    server's standard error, our log): (bytes in use, bytes taken from the system), or None.
    The server stops for the second or two gdb needs."""
    try:
        before = os.path.getsize(log)
        subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx", "-ex",
                        "call (void)malloc_stats()"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        with open(log, errors="replace") as f:
            f.seek(before)
            text = f.read()
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"Total \(incl\. mmap\):\s*system bytes\s*=\s*(\d+)\s*in use bytes\s*=\s*(\d+)",
                  text)
    return (int(m.group(2)), int(m.group(1))) if m else None


class Api:
    def __init__(self, port, token):
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.token = token

    def metrics(self, timeout=5.0):
        """The server's metrics: {name{labels}: value}; None when it does not answer."""
        req = urllib.request.Request(self.url,
                                     headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                text = r.read().decode()
        except OSError:
            return None
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    def transactions(self):
        m = self.metrics()
        return None if m is None else int(m.get("ferrosip_transactions_active", -1))


# --- sipp ----------------------------------------------------------------------------------

def scenario_elements(path):
    """The elements of a sipp scenario in the order sipp numbers them (labels left out):
    (tag, what) with what the method or status sent or received, or the pause."""
    out = []
    for e in ET.parse(path).getroot():
        if e.tag == "send":
            first = (e.text or "").strip().split("\n", 1)[0].split()
            what = first[1] if first and first[0] == "SIP/2.0" else (first[0] if first else "?")
            out.append(("send", what, (e.text or "").strip()))
        elif e.tag == "recv":
            out.append(("recv", e.get("response") or e.get("request"), ""))
        elif e.tag in ("pause", "nop"):
            out.append((e.tag, e.tag, ""))
    return out


def screen_counts(path):
    """The per-element counts of sipp's last scenario screen (-trace_screen): a list of
    (label, {column: count}) in scenario order; columns Messages, Retrans, Timeout, Unexp
    and, with -lost, Lost (cells are left empty where they do not apply)."""
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return []
    # the file holds the scenario screen once, written when sipp exits
    head = next((n for n, l in enumerate(lines) if "Messages  Retrans" in l), None)
    if head is None:
        return []
    cols = [(m.group(0).split(".")[0].split("-")[0], m.start())
            for m in re.finditer(r"\S+", lines[head])]
    rows = []
    for line in lines[head + 1:]:
        if not line.strip() or line.startswith(("---", "Last Error")):
            break
        cells = {}
        for k, (name, start) in enumerate(cols):
            end = cols[k + 1][1] if k + 1 < len(cols) else len(line)
            cell = line[start:end].strip()
            if cell.isdigit():
                cells[name] = int(cell)
        rows.append((line.split()[0], cells))
    return rows


def stat_last(path):
    """The last line of sipp's -trace_stat file as {column: value}."""
    try:
        lines = [l for l in open(path, errors="replace").read().splitlines() if l.strip()]
    except OSError:
        return {}
    if len(lines) < 2:
        return {}
    return dict(zip(lines[0].split(";"), lines[-1].split(";")))


def as_int(d, key):
    try:
        return int(d.get(key, 0) or 0)
    except ValueError:
        return 0


class Flow:
    """One sipp caller: calls to one kind of callee, cancelled or not."""

    def __init__(self, kind, cancel, rate):
        self.kind, self.cancel, self.rate = kind, cancel, rate
        self.name = kind + ("+cancel" if cancel else "")
        self.scenario = os.path.join(HERE, "soak-uac-cancel.xml" if cancel else "soak-uac.xml")
        self.elements = scenario_elements(self.scenario)
        self.results = []  # one dict per phase run

    def start(self, procs, phase, count, port, mport, a, work, server_port, recv_timeout_ms,
              deadcall_ms, duration):
        d = os.path.join(work, f"{phase}-{self.name}")
        os.makedirs(d)
        cmd = ["sipp", f"{DOMAIN}:{server_port}", "-sf", self.scenario, "-s", KINDS[self.kind][1],
               "-key", "domain", DOMAIN, "-i", DOMAIN, "-p", str(port), "-mp", str(mport),
               "-r", f"{self.rate:.4f}", "-rp", "1000", "-m", str(count), "-l", "100000",
               "-nd", "-lost", str(a.loss), "-recv_timeout", str(recv_timeout_ms),
               "-deadcall_wait", str(deadcall_ms), "-timeout", f"{int(duration)}s", "-nostdin",
               "-trace_stat", "-stf", "stat.csv", "-fd", "5", "-trace_screen", "-trace_err"]
        self.dir, self.count = d, count
        self.proc = procs.start(cmd, d, os.path.join(d, "sipp.out"))
        return self.proc

    def collect(self):
        """Calls placed, completed and failed, and the outcomes (from the screen counts)."""
        st = stat_last(os.path.join(self.dir, "stat.csv"))
        screens = [f for f in os.listdir(self.dir) if f.endswith("_screen.log")]
        rows = screen_counts(os.path.join(self.dir, screens[0])) if screens else []
        r = dict(flow=self.name, wanted=self.count,
                 placed=as_int(st, "OutgoingCall(C)"), ok=as_int(st, "SuccessfulCall(C)"),
                 failed=as_int(st, "FailedCall(C)"),
                 max_retrans=as_int(st, "FailedMaxUDPRetrans(C)"),
                 recv_timeout=as_int(st, "FailedTimeoutOnRecv(C)"),
                 retrans=as_int(st, "Retransmissions(C)"), outcomes={}, cancels=0, unexpected=0,
                 rc=self.proc.returncode)
        if len(rows) == len(self.elements):
            answered_ack = None
            for (tag, what, text), (_label, cells) in zip(self.elements, rows):
                n = cells.get("Messages", 0)
                r["unexpected"] += cells.get("Unexp", 0)
                if tag == "send" and what == "CANCEL":
                    r["cancels"] += n
                elif tag == "send" and what == "ACK" and "[next_url]" in text:
                    answered_ack = n
                elif tag == "recv" and what.isdigit() and int(what) >= 300:
                    r["outcomes"][what] = r["outcomes"].get(what, 0) + n
            if answered_ack is not None:
                r["outcomes"]["200"] = answered_ack
        r["outcomes"] = {k: v for k, v in r["outcomes"].items() if v}
        self.results.append(r)
        return r


def free_port(port, kind):
    s = socket.socket(socket.AF_INET, kind)
    if kind == socket.SOCK_STREAM:  # as a server's listener: connections in TIME_WAIT do not count
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((DOMAIN, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


# --- the run -------------------------------------------------------------------------------

class Sampler:
    """Samples the server every `every` seconds while the main loop waits; writes the CSV."""

    def __init__(self, path, pid, api, every, t0):
        self.f = open(path, "w")
        self.f.write("t_s,phase,transactions_active,pss_kb,pss_anon_kb,rss_kb,server_cpu_s\n")
        self.pid, self.api, self.every, self.t0 = pid, api, every, t0
        self.next = 0.0
        self.rows = []
        self.phase = "start"

    def sample(self, force=False):
        now = time.time()
        if not force and now < self.next:
            return None
        self.next = now + self.every
        tx = self.api.transactions()
        pss, anon, rss = proc_mem_kb(self.pid)
        cpu = proc_cpu_s(self.pid)
        row = (round(now - self.t0, 1), self.phase, tx, pss, anon, rss, cpu)
        self.rows.append(row)
        self.f.write(",".join("" if v is None else str(v) for v in row) + "\n")
        self.f.flush()
        return row

    def close(self):
        self.f.close()


def wait(sampler, server, cond, timeout, progress=None):
    """Samples until cond() is true or timeout seconds passed; True when cond() held."""
    deadline = time.time() + timeout
    last_print = time.time()
    while True:
        sampler.sample()
        if server.poll() is not None:
            return False
        if cond():
            return True
        if time.time() >= deadline:
            return False
        if progress and time.time() - last_print >= progress:
            last_print = time.time()
            row = sampler.sample(force=True)
            print(f"  {row[0]:7.1f} s  {sampler.phase:<12} transactions={row[2]} "
                  f"pss={row[3] / 1024:.1f} MB", flush=True)
        time.sleep(0.5)


def run_load(a, phase, seconds, flows, procs, work, sampler, server, bounds):
    """Runs every flow for `seconds` at its rate; returns when all callers have exited."""
    sampler.phase = phase
    running = []
    for i, fl in enumerate(flows):
        count = max(1, round(fl.rate * seconds))
        duration = seconds + bounds["recv_timeout_s"] + 120
        running.append(fl.start(procs, phase, count, a.port + 10 + i, a.port + 100 + 4 * i, a,
                                work, a.port, int(bounds["recv_timeout_s"] * 1000),
                                int(bounds["deadcall_s"] * 1000), duration))
    limit = seconds + bounds["recv_timeout_s"] + 180
    done = wait(sampler, server, lambda: all(p.poll() is not None for p in running), limit,
                progress=a.progress)
    if not done:
        for p in running:
            procs.stop(p)
    return [fl.collect() for fl in flows]


def drain(a, phase, sampler, server, api, bound):
    """Waits for 0 transactions (at most `bound` s), then --settle s more, in which they must
    stay at 0. Returns (seconds to reach 0 or None, transactions at the end)."""
    sampler.phase = phase
    t0 = time.time()
    reached = wait(sampler, server, lambda: api.transactions() == 0, bound, progress=a.progress)
    took = time.time() - t0 if reached else None
    wait(sampler, server, lambda: False, a.settle)
    sampler.sample(force=True)
    return took, api.transactions()


def register(procs, work, kind, port, server_port):
    src = os.path.join(ROOT, "tests", "sipp", "register.xml")
    text = open(src).read()
    for k, v in (("[q]", "1.0"), ("[expires]", "3600"), ("[status]", "200"),
                 ("[domain]", DOMAIN)):
        text = text.replace(k, v)
    scen = os.path.join(work, "register.xml")
    with open(scen, "w") as f:
        f.write(text)
    d = os.path.join(work, f"register-{kind}")
    os.makedirs(d)
    p = procs.start(["sipp", f"{DOMAIN}:{server_port}", "-sf", scen, "-s", KINDS[kind][1],
                     "-i", DOMAIN, "-p", str(port), "-m", "1", "-nostdin", "-timeout", "15s",
                     "-recv_timeout", "5000"], d, os.path.join(d, "sipp.out"))
    return p.wait() == 0


def mb(kb):
    return kb / 1024.0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10, help="length of the soak (<= 55)")
    ap.add_argument("--rate", type=float, default=30, help="calls per second, all flows together")
    ap.add_argument("--mix", default="normal=70,vanish=10,silent=10,gw487=10",
                    help="shares of the callee kinds (normal, vanish, silent, gw487)")
    ap.add_argument("--cancel", type=float, default=0.25,
                    help="share of each kind's calls that the caller cancels")
    ap.add_argument("--loss", type=float, default=3,
                    help="%% of messages every sipp drops, sending and receiving (-lost)")
    ap.add_argument("--timer-c", type=int, default=10, help="the server's timer C, seconds")
    ap.add_argument("--t1", type=int, default=500, help="the server's T1, ms")
    ap.add_argument("--warmup", type=float, default=60,
                    help="seconds of the mix before the baseline (0: baseline at start)")
    ap.add_argument("--settle", type=float, default=10,
                    help="seconds the transactions must stay at 0 after the drain")
    ap.add_argument("--sample", type=float, default=5, help="seconds between CSV samples")
    ap.add_argument("--progress", type=float, default=30, help="seconds between progress lines")
    ap.add_argument("--mem-tolerance-mb", type=float, default=5)
    ap.add_argument("--mem-tolerance-pct", type=float, default=20)
    ap.add_argument("--heap", choices=("auto", "on", "off"), default="off",
                    help="ask glibc for the bytes in use at the baseline and at the end (gdb "
                         "attaches for a second or two, when the server is idle; auto: when "
                         "gdb is installed); only for a server on glibc's malloc, which "
                         "ferrosip (jemalloc) is not")
    ap.add_argument("--csv", help="samples file (default soak-YYYYmmdd-HHMMSS.csv here)")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "ferrosip"))
    ap.add_argument("--port", type=int, default=26060, help="first of the loopback ports")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory (server log, sipp files)")
    a = ap.parse_args()

    if not 0 < a.minutes <= 55:
        sys.exit("--minutes: between 0 and 55 (the callees register once, for an hour)")
    if not 0 < a.rate <= 500:
        sys.exit("--rate: between 0 and 500 calls/s")
    if not 0 <= a.cancel <= 1 or not 0 <= a.loss < 50 or a.timer_c < 1 or a.t1 < 1:
        sys.exit("--cancel in [0, 1], --loss in [0, 50), --timer-c >= 1, --t1 >= 1")
    mix = {}
    for part in a.mix.split(","):
        k, _, v = part.partition("=")
        if k.strip() not in KINDS:
            sys.exit(f"--mix: unknown kind {k!r} (one of {', '.join(KINDS)})")
        mix[k.strip()] = float(v)
    total = sum(mix.values())
    if total <= 0:
        sys.exit("--mix: no calls")
    if not shutil.which("sipp"):
        sys.exit("sipp not found: apt-get install sip-tester")
    if a.heap == "on" and not shutil.which("gdb"):
        sys.exit("--heap on: gdb not found (apt-get install gdb)")
    a.heap = a.heap == "on" or (a.heap == "auto" and shutil.which("gdb") is not None)
    if not os.access(a.binary, os.X_OK):
        sys.exit(f"{a.binary}: not built (cargo build --release -p ferrosip)")

    kinds = [k for k in KINDS if mix.get(k, 0) > 0]
    flows = []
    for k in kinds:
        r = a.rate * mix[k] / total
        if a.cancel < 1:
            flows.append(Flow(k, False, r * (1 - a.cancel)))
        if a.cancel > 0:
            flows.append(Flow(k, True, r * a.cancel))
    flows = [f for f in flows if f.rate > 0]

    udp_ports = [a.port] + [a.port + 2 + i for i in range(len(kinds))] + \
        [a.port + 10 + i for i in range(len(flows))]
    for p in udp_ports:
        if not free_port(p, socket.SOCK_DGRAM):
            sys.exit(f"UDP port {p} is taken: choose another --port")
    if not free_port(a.port + 1, socket.SOCK_STREAM):
        sys.exit(f"TCP port {a.port + 1} is taken: choose another --port")

    t1 = a.t1 / 1000.0
    timeout64 = 64 * t1
    timer_d = max(timeout64, 32.0)
    bound = a.timer_c + timeout64 + max(timer_d, timeout64 + T4) + MARGIN
    bounds = dict(drain_s=bound,
                  # the longest a caller or callee waits for the next message: a call nobody
                  # answers gets its 408 after timer C and 64*T1
                  recv_timeout_s=a.timer_c + 2 * timeout64 + 30,
                  deadcall_s=timeout64 + 15)
    csv_path = a.csv or time.strftime("soak-%Y%m%d-%H%M%S.csv")

    procs = Procs()
    work = tempfile.mkdtemp(prefix="ferrosip-soak-")

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    # SIGINT too: a shell starting us in the background leaves it ignored, and Python then
    # does not turn it into KeyboardInterrupt
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    holder = []  # the sampler, once there is one
    status = 1
    try:
        status = soak(a, flows, kinds, bounds, procs, work, csv_path, holder)
    except KeyboardInterrupt as e:
        print(f"\ninterrupted ({e or 'Ctrl-C'}): stopping", file=sys.stderr)
        status = 130
    finally:
        procs.stop_all()
        for sampler in holder:
            sampler.close()
        if a.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(status)


def soak(a, flows, kinds, bounds, procs, work, csv_path, holder):
    token = secrets.token_hex(16)
    api_port = a.port + 1
    cfg = os.path.join(work, "ferrosip.toml")
    with open(cfg, "w") as f:
        f.write(f'[server]\nlisten = ["udp:{DOMAIN}:{a.port}"]\n'
                f'database = "{os.path.join(work, "soak.db")}"\n\n'
                f'[proxy]\ntimer_c = {a.timer_c}\n\n'
                f'[timers]\nt1 = {a.t1}\nt2 = {max(4000, a.t1)}\n\n'
                f'[api]\nlisten = "127.0.0.1:{api_port}"\ntoken = "{token}"\n')
    env = dict(os.environ, NO_COLOR="1")
    env.pop("FERROSIP_LOG", None)
    log = os.path.join(work, "server.log")
    server = procs.start([os.path.abspath(a.binary), "serve", "--config", cfg], work, log, env)
    api = Api(api_port, token)
    deadline = time.time() + 15
    while api.metrics(timeout=1) is None:
        if server.poll() is not None or time.time() > deadline:
            print(open(log, errors="replace").read()[-2000:], file=sys.stderr)
            print("the server did not start", file=sys.stderr)
            return 1
        time.sleep(0.2)

    print(f"soak: {a.minutes:g} min at {a.rate:g} calls/s, loss {a.loss:g}% on every sipp, "
          f"timer C {a.timer_c} s, T1 {a.t1} ms; drain bound {bounds['drain_s']:.0f} s; "
          f"server pid {server.pid}; samples to {csv_path}")
    print("flows: " + ", ".join(f"{f.name} {f.rate:.2f}/s" for f in flows), flush=True)

    # the callees: registered from the port they answer on, then listening
    callee_procs = {}
    for i, k in enumerate(kinds):
        port = a.port + 2 + i
        if not register(procs, work, k, port, a.port):
            print(f"REGISTER of {KINDS[k][1]} failed (see --keep)", file=sys.stderr)
            return 1
        d = os.path.join(work, f"callee-{k}")
        os.makedirs(d)
        callee_procs[k] = procs.start(
            ["sipp", "-sf", os.path.join(HERE, KINDS[k][0]), "-s", KINDS[k][1], "-i", DOMAIN,
             "-p", str(port), "-mp", str(a.port + 150 + 4 * i), "-l", "100000", "-nd",
             "-lost", str(a.loss), "-recv_timeout", str(int(bounds["recv_timeout_s"] * 1000)),
             "-deadcall_wait", str(int(bounds["deadcall_s"] * 1000)),
             "-timeout", f"{int((a.warmup + a.minutes * 60) * 2 + 3600)}s", "-nostdin",
             "-trace_stat", "-stf", "stat.csv", "-fd", "5", "-trace_screen", "-trace_err"],
            d, os.path.join(d, "sipp.out"))
    m = api.metrics() or {}
    contacts = int(m.get("ferrosip_contacts_registered", 0))
    if contacts != len(kinds):
        print(f"{contacts} contacts registered, not {len(kinds)}", file=sys.stderr)
        return 1

    t0 = time.time()
    sampler = Sampler(csv_path, server.pid, api, a.sample, t0)
    holder.append(sampler)
    problems = []

    warm = None
    if a.warmup > 0:
        print(f"warm-up: {a.warmup:g} s of the mix", flush=True)
        warm = run_load(a, "warmup", a.warmup, flows, procs, work, sampler, server, bounds)
        took, left = drain(a, "warmup-drain", sampler, server, api, bounds["drain_s"])
        if server.poll() is not None:
            problems.append("the server exited during the warm-up")
        elif left != 0:
            problems.append(f"after the warm-up {left} transactions stayed active "
                            f"(bound {bounds['drain_s']:.0f} s)")
        print(f"warm-up drained: {'0 after %.0f s' % took if took is not None else left}")
    else:
        sampler.phase = "idle"
        wait(sampler, server, lambda: False, 2)
    row = sampler.sample(force=True)
    base_tx, base_pss, base_anon, base_rss = row[2], row[3], row[4], row[5]
    base_heap = heap_stats(server.pid, log) if a.heap else None
    print(f"baseline: {base_tx} transactions, PSS {mb(base_pss):.1f} MB "
          f"(RSS {mb(base_rss):.1f} MB)"
          + (f", heap in use {base_heap[0] / 2**20:.1f} MB" if base_heap else ""), flush=True)

    soak_start = len(sampler.rows)
    cpu0 = proc_cpu_s(server.pid)
    print(f"soak: {a.minutes:g} min", flush=True)
    results = run_load(a, "soak", a.minutes * 60, flows, procs, work, sampler, server, bounds)
    soak_rows = [r for r in sampler.rows[soak_start:] if r[1] == "soak"]
    cpu1 = proc_cpu_s(server.pid)
    took, end_tx = drain(a, "drain", sampler, server, api, bounds["drain_s"])
    alive = server.poll() is None
    end = sampler.rows[-1]
    end_pss, end_anon, end_rss = end[3], end[4], end[5]
    metrics = api.metrics() or {}
    end_heap = heap_stats(server.pid, log) if a.heap and alive else None

    for k, p in callee_procs.items():
        procs.stop(p)
    callees = {}
    for k in kinds:
        d = os.path.join(work, f"callee-{k}")
        st = stat_last(os.path.join(d, "stat.csv"))
        callees[k] = dict(calls=as_int(st, "IncomingCall(C)"), ok=as_int(st, "SuccessfulCall(C)"),
                          failed=as_int(st, "FailedCall(C)"),
                          retrans=as_int(st, "Retransmissions(C)"))

    # --- the report ---------------------------------------------------------------------
    print()
    print(f"calls in the soak (callers' view; {a.minutes:g} min, {a.rate:g}/s, "
          f"loss {a.loss:g}%):")
    print(f"  {'flow':<15}{'wanted':>7}{'placed':>7}{'done':>7}{'failed':>7}{'cancels':>8}"
          f"{'retrans':>8}  outcomes")
    tot = dict(wanted=0, placed=0, ok=0, failed=0)
    for r in results:
        for k in tot:
            tot[k] += r[k]
        why = []
        if r["max_retrans"]:
            why.append(f"{r['max_retrans']} retransmission limit")
        if r["recv_timeout"]:
            why.append(f"{r['recv_timeout']} receive timeout")
        outcomes = " ".join(f"{c}:{n}" for c, n in sorted(r["outcomes"].items()))
        print(f"  {r['flow']:<15}{r['wanted']:>7}{r['placed']:>7}{r['ok']:>7}{r['failed']:>7}"
              f"{r['cancels']:>8}{r['retrans']:>8}  {outcomes}"
              + (f"  (failed: {', '.join(why)})" if why else ""))
    print(f"  {'all':<15}{tot['wanted']:>7}{tot['placed']:>7}{tot['ok']:>7}{tot['failed']:>7}")
    print("callees (whole run, warm-up included): " + "; ".join(
        f"{k} {c['calls']} calls, {c['ok']} done, {c['failed']} failed" for k, c in callees.items()))
    if warm:
        wt = sum(r["placed"] for r in warm)
        wf = sum(r["failed"] for r in warm)
        print(f"warm-up: {wt} calls placed, {wf} failed")

    peak_tx = max((r for r in sampler.rows if r[2] is not None), key=lambda r: r[2],
                  default=None)
    peak_pss = max(sampler.rows, key=lambda r: r[3])
    print()
    print(f"transactions: baseline {base_tx}, peak {peak_tx[2] if peak_tx else '?'} "
          f"(at {peak_tx[0] if peak_tx else '?'} s, {peak_tx[1] if peak_tx else ''}), "
          f"end {end_tx}" + (f" (0 {took:.0f} s after the last call ended, bound "
                            f"{bounds['drain_s']:.0f} s)" if took is not None else
                            f" (not 0 within the bound of {bounds['drain_s']:.0f} s)"))
    growth = end_pss - base_pss
    tol_kb = max(a.mem_tolerance_mb * 1024, base_pss * a.mem_tolerance_pct / 100)
    print(f"PSS: baseline {mb(base_pss):.1f} MB, peak {mb(peak_pss[3]):.1f} MB (at "
          f"{peak_pss[0]} s, {peak_pss[1]}), end {mb(end_pss):.1f} MB: end/baseline "
          f"{end_pss / max(base_pss, 1):.3f}, {growth / 1024:+.1f} MB (tolerance "
          f"+{tol_kb / 1024:.1f} MB); anonymous part {mb(base_anon):.1f} -> {mb(end_anon):.1f} MB, "
          f"RSS {mb(base_rss):.1f} -> {mb(end_rss):.1f} MB")
    if base_heap and end_heap:
        print(f"heap (glibc malloc_stats): in use baseline {base_heap[0] / 2**20:.2f} MB, end "
              f"{end_heap[0] / 2**20:.2f} MB ({(end_heap[0] - base_heap[0]) / 2**20:+.2f} MB, "
              f"{(end_heap[0] - base_heap[0]) / max(tot['placed'], 1):+.0f} bytes per call "
              f"placed); taken from the system {base_heap[1] / 2**20:.2f} -> "
              f"{end_heap[1] / 2**20:.2f} MB")
    elif a.heap:
        print("heap: gdb could not ask glibc (see --keep's server.log)")
    if len(soak_rows) >= 10:
        fifth = len(soak_rows) // 5
        first = statistics.median(r[3] for r in soak_rows[:fifth])
        last = statistics.median(r[3] for r in soak_rows[-fifth:])
        span = (soak_rows[-1][0] - soak_rows[0][0]) * 0.8 / 60
        print(f"PSS drift under load: first fifth {mb(first):.1f} MB, last fifth "
              f"{mb(last):.1f} MB ({(last - first) / 1024 / max(span, 1e-9):+.2f} MB/min)")
    if cpu0 is not None and cpu1 is not None and tot["placed"]:
        print(f"server CPU in the soak: {cpu1 - cpu0:.1f} s, "
              f"{(cpu1 - cpu0) * 1e6 / tot['placed']:.0f} us per call placed")
    def req(direction, method):
        return int(metrics.get(f'ferrosip_requests_total{{direction="{direction}",'
                               f'method="{method}"}}', 0))

    def resp(cls):
        return int(metrics.get(f'ferrosip_responses_total{{direction="out",class="{cls}"}}', 0))

    print(f"server counters (whole run): INVITE in {req('in', 'INVITE')}, CANCEL in/out "
          f"{req('in', 'CANCEL')}/{req('out', 'CANCEL')}, BYE in {req('in', 'BYE')}, "
          "responses out " + " ".join(f"{c}:{resp(c)}" for c in ("1xx", "2xx", "4xx", "5xx",
                                                                   "6xx")))
    text = re.sub(r"\x1b\[[0-9;]*m", "", open(os.path.join(work, "server.log"),
                                              errors="replace").read())
    levels = {lvl: len(re.findall(rf"\s{lvl}\s", text)) for lvl in ("ERROR", "WARN")}
    panics = text.count("panicked")
    print(f"server log: {levels['ERROR']} ERROR, {levels['WARN']} WARN lines, {panics} panics"
          + (f"; last lines:\n    " + "\n    ".join(
              l for l in text.splitlines() if " ERROR " in l or "panicked" in l)[-1500:]
             if levels["ERROR"] or panics else ""))

    if not alive:
        problems.append(f"the server exited (status {server.returncode})")
    if end_tx != 0:
        problems.append(f"{end_tx} transactions still active at the end")
    elif took is None:
        problems.append("transactions did not reach 0 within the drain bound")
    if growth > tol_kb:
        problems.append(f"PSS did not return to its baseline: {growth / 1024:+.1f} MB "
                        f"(tolerance {tol_kb / 1024:.1f} MB)")
    if problems:
        print("RESULT: FAIL: " + "; ".join(problems))
        return 1
    print("RESULT: PASS (transactions back to 0, memory back to baseline)")
    return 0


if __name__ == "__main__":
    main()
