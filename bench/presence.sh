#!/usr/bin/env bash
# ferrosip against Kamailio (bench/kamailio-presence.cfg), side by side: both servers under
# the same load at the same time (as bench/ab.sh does for two ferrosip builds), so that the
# noise of the machine falls on both.
#   bench/presence.sh [FERROSIP_BINARY]
# (a) NOTIFY rate: PRESENTITIES users (1000) each watched by WATCHERS (10) watchers, that is
#     10,000 subscriptions (Event: presence, Expires 3600, Contact: the watcher's socket),
#     every user publishing a change once a second for PRES_SECONDS (30): a PIDF document
#     (a new <note> each time), the first PUBLISH without SIP-If-Match, then each with
#     SIP-If-Match of the SIP-ETag last answered (Expires 60). Each user is registered first
#     (ferrosip shows a user with no registered device closed whatever it published).
#     Watchers and publishers are a python3 program (below), one process per server, that
#     answers every NOTIFY with 200 and counts them: NOTIFYs/s each server sent, server CPU
#     ticks per NOTIFY (the PUBLISHes that cause them included).
# (b) MESSAGE relay: a sipp UAC sending MESSAGE at MSG_RATE/s (2000) for MSG_SECONDS (20) to
#     a sipp UAS registered as `bob`, through each server: server CPU ticks per MESSAGE.
# Server CPU: utime+stime ticks of /proc/PID/stat, of the server's process and its
# descendants (Kamailio's children), over the measured window only. Memory at the end:
# VmRSS summed over the processes (Kamailio's shared memory counts once per process
# touching it), and PSS (shared pages split among the processes).
# ferrosip runs its default script with the [presence] limits lifted and notify_interval 0
# (every change notified, as Kamailio does), and without its flood limit (all the load comes
# from 127.0.0.1: past 5000 messages a second, answers to NOTIFYs included, it would drop
# the rest of the second; the reference config has no pike either); Kamailio with `-m 1024` MB of shared memory
# (256 MB runs out: each NOTIFY's transaction is kept for the wait timer, 5 s). The
# binary: FERROSIP_BINARY, else target/release/ferrosip when it knows [presence], else
# /work/bench-target/release/ferrosip. Needs kamailio (+ kamailio-presence-modules), sipp
# (sip-tester) and python3. Everything on 127.0.0.1; KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
presentities=${PRESENTITIES:-1000} watchers=${WATCHERS:-10} pres_seconds=${PRES_SECONDS:-30}
msg_rate=${MSG_RATE:-2000} msg_seconds=${MSG_SECONDS:-20}
work=$(mktemp -d)
pids=()
# (set -e holds in the trap too: every command in it must succeed, or the rest is skipped.)
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
die() { echo "presence.sh: $*" >&2; exit 1; }
for tool in kamailio sipp python3; do
  command -v $tool >/dev/null || die "$tool not found (apt-get install kamailio kamailio-presence-modules sip-tester python3)"
done

# The watchers and publishers of (a), and small helpers (CPU ticks, memory, the table).
cat > "$work/presload.py" <<'PY'
"""Presence load for one server: presentities that register and publish, watchers that
subscribe and answer every NOTIFY with 200, counted.
  presload.py probe PORT
  presload.py run PORT NAME PRESENTITIES WATCHERS_EACH SECONDS WORKDIR PID...
  presload.py ticks PID... | mem OUT PID... | sipp STF TICKS SECONDS OUT | report WORKDIR
run: REGISTER each presentity pN (Contact: the publisher's socket, Expires 3600), an initial
PUBLISH of each (PIDF, Event: presence, Expires 60), then WATCHERS_EACH SUBSCRIBEs to each
(watcher wN, Expires 3600, Contact: one of the watcher sockets); writes WORKDIR/NAME.ready,
waits for WORKDIR/go, then for SECONDS publishes a change of every presentity once a
second (SIP-If-Match: the SIP-ETag last answered; a new initial PUBLISH after a 412) and
counts the NOTIFYs that arrive, and the server's CPU ticks (PIDs and their descendants)
over that window; the result as JSON in WORKDIR/NAME.json."""
import json, os, selectors, socket, sys, time

SOCKS = 16
WINDOW = 200          # setup requests outstanding at once
HDRS = {b"via", b"v", b"from", b"f", b"to", b"t", b"call-id", b"i", b"cseq"}


def descendants(pids):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], list(pids)
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def ticks(pids):
    total = 0
    for p in descendants(pids):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def own_ticks():
    t = os.times()
    return round((t.user + t.system) * os.sysconf("SC_CLK_TCK"))


def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


def probe(port, timeout=10.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    me = s.getsockname()[1]
    msg = (f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKprobe{me};rport\r\n"
           f"From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1:{port}>\r\nCall-ID: probe{me}@x\r\n"
           f"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()
    s.settimeout(0.3)
    deadline = time.time() + timeout
    while time.time() < deadline:
        s.sendto(msg, ("127.0.0.1", port))
        try:
            s.recvfrom(65535)
            return True
        except OSError:
            pass
    return False


class Load:
    def __init__(self, port, name, npres, each, seconds, workdir, pids):
        self.server = ("127.0.0.1", port)
        self.port, self.name, self.npres, self.each = port, name, npres, each
        self.seconds, self.workdir, self.pids = seconds, workdir, pids
        self.sel = selectors.DefaultSelector()
        self.pub = udp()
        self.watch = [udp() for _ in range(SOCKS)]
        for s in [self.pub] + self.watch:
            self.sel.register(s, selectors.EVENT_READ)
        self.pending = {}      # branch -> [data, sock, next_at, interval, first_at, on_reply]
        self.seq = 0
        self.etag = {}         # presentity index -> SIP-ETag
        self.cseq = {}         # presentity index -> its PUBLISH CSeq
        self.version = 0
        self.codes = {}        # (method, code) -> count
        self.timeouts = {}
        self.notifies = 0      # all NOTIFYs
        self.counting = False
        self.window_notifies = 0
        self.retrans = 0       # NOTIFYs seen again (same Call-ID and CSeq)
        self.reordered = 0     # NOTIFYs whose CSeq is below one seen before (not counted twice)
        self.seen = set()      # (Call-ID, CSeq) of the NOTIFYs seen
        self.last = {}         # NOTIFY Call-ID -> highest CSeq
        self.states = {}       # Subscription-State value (first word) -> count
        self.bodies = {"open": 0, "closed": 0, "none": 0, "published note": 0}
        self.other_requests = {}

    # --- sending -----------------------------------------------------------------
    def request(self, sock, method, ruri, frm, to, call_id, cseq, extra, body=b"", on_reply=None):
        self.seq += 1
        branch = f"z9hG4bK{self.name}{self.seq}"
        lport = sock.getsockname()[1]
        head = (f"{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lport};branch={branch};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: {frm}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
                f"{extra}Content-Length: {len(body)}\r\n\r\n").encode()
        data = head + body
        sock.sendto(data, self.server)
        now = time.monotonic()
        self.pending[branch] = [data, sock, now + 0.5, 0.5, now, method, on_reply]

    def retransmit(self, now):
        for branch, p in list(self.pending.items()):
            if p[2] <= now:
                if now - p[4] > 32:
                    del self.pending[branch]
                    self.timeouts[p[5]] = self.timeouts.get(p[5], 0) + 1
                    if p[6]:
                        p[6](408, b"")
                    continue
                p[1].sendto(p[0], self.server)
                p[3] = min(p[3] * 2, 4.0)
                p[2] = now + p[3]

    # --- receiving ---------------------------------------------------------------
    def poll(self, timeout):
        for key, _ in self.sel.select(timeout):
            sock = key.fileobj
            while True:
                try:
                    data, addr = sock.recvfrom(65535)
                except BlockingIOError:
                    break
                if data.startswith(b"SIP/2.0 "):
                    self.response(data)
                elif data[:1].isalpha():
                    self.incoming(sock, data, addr)

    def response(self, data):
        code = int(data[8:11])
        i = data.find(b"branch=")
        if i < 0:
            return
        j = i + 7
        k = j
        while k < len(data) and data[k:k + 1] not in b";,\r \n":
            k += 1
        branch = data[j:k].decode()
        if code < 200:
            p = self.pending.get(branch)
            if p:
                p[2] = time.monotonic() + 4.0   # provisional: wait longer
            return
        p = self.pending.pop(branch, None)
        if p is None:
            return
        key = (p[5], code)
        self.codes[key] = self.codes.get(key, 0) + 1
        if p[6]:
            p[6](code, data)

    def incoming(self, sock, data, addr):
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = data[:end].split(b"\r\n")
        method = lines[0].split(b" ", 1)[0]
        out = [b"SIP/2.0 200 OK"]
        call_id = cseq = state = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            n = name.strip().lower()
            if n in HDRS:
                out.append(line)
                if n in (b"call-id", b"i"):
                    call_id = value.strip()
                elif n == b"cseq":
                    cseq = int(value.split()[0])
            elif n == b"subscription-state":
                state = value.strip().split(b";", 1)[0].decode()
        out.append(b"Content-Length: 0\r\n\r\n")
        sock.sendto(b"\r\n".join(out), addr)
        if method != b"NOTIFY":
            m = method.decode(errors="replace")
            self.other_requests[m] = self.other_requests.get(m, 0) + 1
            return
        last = self.last.get(call_id, -1)
        if cseq is not None and cseq <= last:
            if (call_id, cseq) in self.seen:
                self.retrans += 1
                return
            self.reordered += 1      # a NOTIFY overtaken by a later one of its subscription
        else:
            self.last[call_id] = cseq
        self.seen.add((call_id, cseq))
        self.notifies += 1
        if self.counting:
            self.window_notifies += 1
            self.states[state] = self.states.get(state, 0) + 1
            body = data[end + 4:]
            if b">change " in body:
                self.bodies["published note"] += 1
            if b">open<" in body:
                self.bodies["open"] += 1
            elif b">closed<" in body:
                self.bodies["closed"] += 1
            else:
                self.bodies["none"] += 1

    # --- the scenario ------------------------------------------------------------
    def uri(self, user):
        return f"sip:{user}@127.0.0.1"

    def register(self, n):
        u = f"p{n}"
        lport = self.pub.getsockname()[1]
        self.request(self.pub, "REGISTER", f"sip:127.0.0.1:{self.port}", f"<{self.uri(u)}>;tag=r{n}",
                     f"<{self.uri(u)}>", f"reg-{u}-{self.name}", 1,
                     f"Contact: <sip:{u}@127.0.0.1:{lport}>\r\nExpires: 3600\r\n")

    def publish(self, n):
        u = f"p{n}"
        self.version += 1
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{self.uri(u)}">\n'
                f'<tuple id="t{n}"><status><basic>open</basic></status>'
                f'<note>change {self.version}</note></tuple>\n</presence>\n').encode()
        self.cseq[n] = self.cseq.get(n, 0) + 1
        extra = "Event: presence\r\nExpires: 60\r\nContent-Type: application/pidf+xml\r\n"
        tag = self.etag.get(n)
        if tag:
            extra += f"SIP-If-Match: {tag}\r\n"

        def done(code, data, n=n, had=tag):
            if code == 200:
                i = data.lower().find(b"\r\nsip-etag:")
                if i >= 0:
                    self.etag[n] = data[i + 11:data.find(b"\r\n", i + 2)].strip().decode()
            elif code == 412 and had:
                self.etag.pop(n, None)   # the next one is a new publication
        self.request(self.pub, "PUBLISH", f"sip:{u}@127.0.0.1:{self.port}", f"<{self.uri(u)}>;tag=pub{n}",
                     f"<{self.uri(u)}>", f"pub-{u}-{self.name}", self.cseq[n], extra, body, done)

    def subscribe(self, n, j):
        w = f"w{n * self.each + j}"
        sock = self.watch[(n * self.each + j) % SOCKS]
        lport = sock.getsockname()[1]
        self.request(sock, "SUBSCRIBE", f"sip:p{n}@127.0.0.1:{self.port}", f"<{self.uri(w)}>;tag=s{n}x{j}",
                     f"<sip:p{n}@127.0.0.1>", f"sub-{w}-p{n}-{self.name}", 1,
                     f"Contact: <sip:{w}@127.0.0.1:{lport}>\r\nEvent: presence\r\nExpires: 3600\r\n"
                     f"Accept: application/pidf+xml\r\n")

    def setup_phase(self, jobs, what):
        """Runs jobs (callables sending one request each) with at most WINDOW outstanding."""
        jobs = list(jobs)
        i = 0
        deadline = time.monotonic() + 120
        while (i < len(jobs) or self.pending) and time.monotonic() < deadline:
            while i < len(jobs) and len(self.pending) < WINDOW:
                jobs[i]()
                i += 1
            self.poll(0.02)
            self.retransmit(time.monotonic())
        if i < len(jobs) or self.pending:
            sys.exit(f"{self.name}: {what} did not finish in 120 s")

    def idle(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.poll(0.05)
            self.retransmit(time.monotonic())

    def run(self):
        t0 = time.monotonic()
        n = self.npres
        self.setup_phase([lambda k=k: self.register(k) for k in range(n)], "REGISTER")
        self.setup_phase([lambda k=k: self.publish(k) for k in range(n)], "PUBLISH")
        self.setup_phase([lambda k=k, j=j: self.subscribe(k, j) for k in range(n) for j in range(self.each)],
                         "SUBSCRIBE")
        self.idle(2)
        setup = {"setup_s": round(time.monotonic() - t0, 1), "setup_codes": {f"{m} {c}": v for (m, c), v in self.codes.items()},
                 "setup_notifies": self.notifies, "setup_timeouts": dict(self.timeouts)}
        self.codes.clear()
        self.timeouts.clear()
        open(os.path.join(self.workdir, f"{self.name}.ready"), "w").close()
        go = os.path.join(self.workdir, "go")
        limit = time.monotonic() + 300
        while not os.path.exists(go):
            if time.monotonic() > limit:
                sys.exit(f"{self.name}: no go in 300 s")
            self.poll(0.05)
            self.retransmit(time.monotonic())
        # The window: every presentity publishes once a second, evenly spread.
        c0, o0 = ticks(self.pids), own_ticks()
        r0, q0 = self.retrans, self.reordered
        self.counting = True
        start = time.monotonic()
        total = n * self.seconds
        step = 1.0 / n
        sent = 0
        next_retrans = start
        while sent < total:
            now = time.monotonic()
            due = min(total, int((now - start) / step) + 1)
            while sent < due:
                self.publish(sent % n)
                sent += 1
            if now >= next_retrans:
                self.retransmit(now)
                next_retrans = now + 0.05
            wait = start + sent * step - time.monotonic()
            self.poll(max(0.0, wait))
        end_at = start + self.seconds
        while time.monotonic() < end_at:
            self.poll(end_at - time.monotonic())
        self.counting = False
        elapsed = time.monotonic() - start
        c1, o1 = ticks(self.pids), own_ticks()
        window = self.window_notifies
        late0 = self.notifies
        self.idle(3)
        res = dict(setup)
        res.update({
            "name": self.name, "seconds": round(elapsed, 2), "publishes": sent,
            "publish_codes": {f"{m} {c}": v for (m, c), v in self.codes.items()},
            "timeouts": dict(self.timeouts), "notifies": window,
            "notifies_per_s": round(window / elapsed, 1), "late_notifies": self.notifies - late0,
            "notify_retrans": self.retrans - r0, "notify_reordered": self.reordered - q0,
            "setup_retrans": r0, "setup_reordered": q0, "states": self.states, "bodies": self.bodies,
            "other_requests": self.other_requests, "server_ticks": c1 - c0, "load_ticks": o1 - o0,
            "subscriptions_notified": len(self.last),
        })
        with open(os.path.join(self.workdir, f"{self.name}.json"), "w") as f:
            json.dump(res, f)


def memory(pids):
    """VmRSS summed over the processes, and their proportional share (PSS), in kB."""
    rss = pss = n = 0
    for p in descendants(pids):
        try:
            with open(f"/proc/{p}/status") as f:
                rss += sum(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
            with open(f"/proc/{p}/smaps_rollup") as f:
                pss += sum(int(l.split()[1]) for l in f if l.startswith("Pss:"))
            n += 1
        except OSError:
            pass
    return {"rss_kb": rss, "pss_kb": pss, "processes": n}


def sipp_stats(stf):
    import csv
    rows = list(csv.reader(open(stf), delimiter=";"))
    s = dict(zip(rows[0], rows[-1]))
    return {k: int(s[c]) for k, c in (("ok", "SuccessfulCall(C)"), ("failed", "FailedCall(C)"),
                                       ("retrans", "Retransmissions(C)"), ("unexpected", "FailedUnexpectedMessage(C)"))}


def report(work):
    def load(name):
        with open(os.path.join(work, name)) as f:
            return json.load(f)
    servers = ("ferrosip", "kamailio")
    pres = {s: load(f"{s}.json") for s in servers}
    msg = {s: load(f"msg.{s}.json") for s in servers}
    mem = {s: load(f"mem.{s}.json") for s in servers}
    rows = []
    for label, ops, per in (("NOTIFY (presence)", lambda s: pres[s]["notifies"] / pres[s]["seconds"],
                             lambda s: pres[s]["server_ticks"] / max(pres[s]["notifies"], 1)),
                            ("MESSAGE relay", lambda s: msg[s]["ok"] / msg[s]["seconds"],
                             lambda s: msg[s]["ticks"] / max(msg[s]["ok"], 1))):
        f, k = per("ferrosip"), per("kamailio")
        rows.append((label, ops("ferrosip"), ops("kamailio"), f, k, f / k if k else float("nan")))
    tck = os.sysconf("SC_CLK_TCK")
    print(f"{'scenario':<18} {'ferrosip ops/s':>14} {'kamailio ops/s':>14} {'ferrosip ticks/op':>17} "
          f"{'kamailio ticks/op':>17} {'ratio f/k':>9}")
    for label, fo, ko, f, k, r in rows:
        print(f"{label:<18} {fo:>14.1f} {ko:>14.1f} {f:>17.5f} {k:>17.5f} {r:>9.2f}")
    print(f"(1 tick = {1e6 / tck:.0f} us of CPU: ferrosip {rows[0][3] * 1e6 / tck:.1f} / kamailio "
          f"{rows[0][4] * 1e6 / tck:.1f} us per NOTIFY, {rows[1][3] * 1e6 / tck:.1f} / "
          f"{rows[1][4] * 1e6 / tck:.1f} us per MESSAGE)")
    for s in servers:
        m = mem[s]
        print(f"{s} memory at the end: RSS {m['rss_kb'] / 1024:.1f} MB (VmRSS summed over {m['processes']} "
              f"process(es)), PSS {m['pss_kb'] / 1024:.1f} MB")
    for s in servers:
        p, q = pres[s], msg[s]
        print(f"{s} details: setup {p['setup_s']} s {p['setup_codes']} timeouts {p['setup_timeouts']}, "
              f"{p['setup_notifies']} NOTIFY ({p['setup_retrans']} retransmitted, {p['setup_reordered']} out of "
              f"CSeq order); "
              f"window {p['seconds']} s: {p['publishes']} PUBLISH {p['publish_codes']} timeouts {p['timeouts']}, "
              f"{p['notifies']} NOTIFY to {p['subscriptions_notified']} subscriptions (+{p['late_notifies']} after the "
              f"window, {p['notify_retrans']} retransmitted, {p['notify_reordered']} out of CSeq order), states {p['states']}, bodies {p['bodies']}, "
              f"other requests {p['other_requests']}, watcher CPU {p['load_ticks']} ticks; "
              f"MESSAGE: {q['ok']} ok, {q['failed']} failed ({q['unexpected']} unexpected answers), "
              f"{q['retrans']} retransmissions in {q['seconds']:.1f} s")


def main():
    if sys.argv[1] == "probe":
        sys.exit(0 if probe(int(sys.argv[2])) else 1)
    if sys.argv[1] == "mem":
        json.dump(memory([int(p) for p in sys.argv[3:]]), open(sys.argv[2], "w"))
        return
    if sys.argv[1] == "ticks":
        print(ticks([int(p) for p in sys.argv[2:]]))
        return
    if sys.argv[1] == "sipp":
        _, _, stf, t, secs, out = sys.argv
        r = sipp_stats(stf)
        r.update(ticks=int(t), seconds=float(secs))
        json.dump(r, open(out, "w"))
        return
    if sys.argv[1] == "report":
        report(sys.argv[2])
        return
    _, _, port, name, npres, each, seconds, workdir, *pids = sys.argv
    Load(int(port), name, int(npres), int(each), int(seconds), workdir, [int(p) for p in pids]).run()


if __name__ == "__main__":
    main()
PY

load() { python3 "$work/presload.py" "$@"; }

# --- servers ------------------------------------------------------------------------------
cat > "$work/ferrosip.toml" <<'TOML'
[presence]
notify_interval = 0     # every change notified (Kamailio does not rate-limit)
max_subscriptions = 100000
max_per_watcher = 100000
max_watchers = 1000
[registrar]
max_bindings_per_source = 0
[security]
flood_limit = 0         # all the load comes from 127.0.0.1 (the limit counts responses too)
[relay]
enabled = false         # no media here; its ports would bind beyond loopback
[stun]
listen = []
TOML
bin=${1:-}
if [ -z "$bin" ]; then
  for b in target/release/ferrosip /work/bench-target/release/ferrosip; do
    if [ -x "$b" ] && "$b" check --config "$work/ferrosip.toml" >/dev/null 2>&1; then bin=$b; break; fi
  done
  [ -n "$bin" ] || die "no ferrosip binary knows [presence]: build one (CARGO_TARGET_DIR=/work/bench-target cargo build --release -p ferrosip) or name it"
fi
"$bin" check --config "$work/ferrosip.toml" >"$work/check.log" 2>&1 || die "$bin rejects the configuration: $(cat "$work/check.log")"
cp -r /usr/share/kamailio/dbtext/kamailio "$work/dbtext"

base=$((20000 + RANDOM % 20000))
fport=$base kport=$((base + 10))
"$bin" serve --listen "udp:127.0.0.1:$fport" --db "$work/ferrosip.db" --api off \
  --config "$work/ferrosip.toml" >"$work/ferrosip.log" 2>&1 &
fpid=$!
pids+=("$fpid")
kamailio -f bench/kamailio-presence.cfg -l "udp:127.0.0.1:$kport" -DD -E -m 1024 \
  -A "DBURL=\"text://$work/dbtext\"" >"$work/kamailio.log" 2>&1 &
kpid=$!
pids+=("$kpid")
load probe $fport || die "ferrosip ($bin) does not answer on udp 127.0.0.1:$fport: $(tail -5 "$work/ferrosip.log")"
load probe $kport || die "kamailio does not answer on udp 127.0.0.1:$kport: $(tail -5 "$work/kamailio.log")"
echo "ferrosip $bin on udp 127.0.0.1:$fport (pid $fpid), kamailio on udp 127.0.0.1:$kport (pid $kpid); work directory $work" >&2

# --- (a) presence: set up both, then the same window on both -------------------------------
echo "presence: $presentities users x $watchers watchers each, a change of every user once a second for $pres_seconds s" >&2
limit=$((pres_seconds + 400))
timeout $limit python3 "$work/presload.py" run $fport ferrosip "$presentities" "$watchers" "$pres_seconds" "$work" "$fpid" &
lf=$!
timeout $limit python3 "$work/presload.py" run $kport kamailio "$presentities" "$watchers" "$pres_seconds" "$work" "$kpid" &
lk=$!
pids+=("$lf" "$lk")
until [ -e "$work/ferrosip.ready" ] && [ -e "$work/kamailio.ready" ]; do
  kill -0 $lf 2>/dev/null || { wait $lf || true; die "the ferrosip presence load ended before the window"; }
  kill -0 $lk 2>/dev/null || { wait $lk || true; die "the kamailio presence load ended before the window"; }
  sleep 0.2
done
touch "$work/go"
wait $lf || die "the ferrosip presence load failed"
wait $lk || die "the kamailio presence load failed"
kill -0 $fpid 2>/dev/null || die "ferrosip died: $(tail -5 "$work/ferrosip.log")"
kill -0 $kpid 2>/dev/null || die "kamailio died: $(tail -5 "$work/kamailio.log")"

# --- (b) MESSAGE relay through each, at the same time --------------------------------------
echo "MESSAGE: $msg_rate/s for $msg_seconds s to a registered sipp UAS" >&2
sed "s/\[q\]/1.0/; s/\[expires\]/3600/; s/\[status\]/200/; s/\[domain\]/127.0.0.1/g" tests/sipp/register.xml > "$work/register.xml"
cat > "$work/uac-message.xml" <<'XML'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uac-message">
  <send retrans="500">
    <![CDATA[
      MESSAGE sip:bob@127.0.0.1:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:alice@127.0.0.1>;tag=[pid]msg[call_number]
      To: <sip:bob@127.0.0.1>
      Call-ID: [call_id]
      CSeq: 1 MESSAGE
      Max-Forwards: 70
      Content-Type: text/plain
      Content-Length: [len]

      Hello bob, this is message [call_number].]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200"/>
</scenario>
XML
cat > "$work/uas-message.xml" <<'XML'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uas-message">
  <recv request="MESSAGE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]m[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
XML
common=(-i 127.0.0.1 -nostdin -recv_timeout 10000)
count=$((msg_rate * msg_seconds))
for p in $fport $kport; do
  sipp "127.0.0.1:$p" -sf "$work/register.xml" -s bob -p $((p + 1)) -m 1 -timeout 15 "${common[@]}" >/dev/null 2>&1 \
    || die "bob's REGISTER to udp 127.0.0.1:$p failed"
  sipp -sf "$work/uas-message.xml" -p $((p + 1)) "${common[@]}" >/dev/null 2>&1 &
  pids+=($!)
done
cd "$work"   # (sipp writes its statistics files where it runs)
f0=$(load ticks $fpid) k0=$(load ticks $kpid) t0=$(date +%s.%N)
sipp "127.0.0.1:$fport" -sf uac-message.xml -p $((fport + 2)) -r "$msg_rate" -m "$count" -l $((msg_rate * 4)) \
  -timeout $((msg_seconds + 120)) -trace_stat -stf msg.ferrosip.csv -fd 1 "${common[@]}" >/dev/null 2>&1 &
mf=$!
sipp "127.0.0.1:$kport" -sf uac-message.xml -p $((kport + 2)) -r "$msg_rate" -m "$count" -l $((msg_rate * 4)) \
  -timeout $((msg_seconds + 120)) -trace_stat -stf msg.kamailio.csv -fd 1 "${common[@]}" >/dev/null 2>&1 &
mk=$!
pids+=("$mf" "$mk")
wait $mf && tf=$(date +%s.%N) || { tf=$(date +%s.%N); echo "MESSAGE through ferrosip: sipp reported failures" >&2; }
f1=$(load ticks $fpid)
wait $mk && tk=$(date +%s.%N) || { tk=$(date +%s.%N); echo "MESSAGE through kamailio: sipp reported failures" >&2; }
k1=$(load ticks $kpid)
cd - >/dev/null
load sipp "$work/msg.ferrosip.csv" $((f1 - f0)) "$(awk -v a="$t0" -v b="$tf" 'BEGIN { print b - a }')" "$work/msg.ferrosip.json"
load sipp "$work/msg.kamailio.csv" $((k1 - k0)) "$(awk -v a="$t0" -v b="$tk" 'BEGIN { print b - a }')" "$work/msg.kamailio.json"

# --- memory, logs, the table ---------------------------------------------------------------
load mem "$work/mem.ferrosip.json" $fpid
load mem "$work/mem.kamailio.json" $kpid
load report "$work"
for s in ferrosip kamailio; do
  n=$(grep -ciE 'error|warn|panic' "$work/$s.log" || true)
  if [ "$n" -gt 0 ]; then
    echo "$s log: $n lines with error/warn/panic, the most frequent:"
    grep -iE 'error|warn|panic' "$work/$s.log" | sed -E 's/^[^a-zA-Z]*//; s/[0-9]+/N/g' | sort | uniq -c | sort -rn | head -5
  fi
done
