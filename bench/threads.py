#!/usr/bin/env python3
"""CPU and wake-ups per REGISTER, thread by thread, of a ferrosip server under a sipp load.

    python3 bench/threads.py [--binary target/release/ferrosip] [--rate 2000] [--count 20000]

Starts the server on 127.0.0.1:5090 with bench/bench.toml and a fresh database in a
temporary directory, reads /proc/PID/task/*/stat and status before and after the load, and
prints for each thread: user and system microseconds per operation, and voluntary and
involuntary context switches per operation. Threads of one name are summed.
"""

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TICK = os.sysconf("SC_CLK_TCK")

REGISTER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register">
  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
Max-Forwards: 70
From: <sip:[service][call_number]@[remote_ip]>;tag=[call_number]
To: <sip:[service][call_number]@[remote_ip]>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:[service][call_number]@[local_ip]:[local_port]>
Expires: 3600
Content-Length: 0

  ]]></send>
  <recv response="200"/>
</scenario>
"""


def threads(pid):
    """{tid: (name, utime, stime, voluntary, involuntary)} of a process."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[tid] = (
            name,
            int(fields[11]),
            int(fields[12]),
            int(status["voluntary_ctxt_switches"]),
            int(status["nonvoluntary_ctxt_switches"]),
        )
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--binary", default=os.path.join(HERE, "..", "target", "release", "ferrosip"))
    p.add_argument("--rate", type=int, default=2000)
    p.add_argument("--count", type=int, default=20000)
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="ferrosip-threads-")
    try:
        scenario = os.path.join(tmp, "register.xml")
        with open(scenario, "w") as f:
            f.write(REGISTER)
        server = subprocess.Popen(
            [args.binary, "serve", "--config", os.path.join(HERE, "bench.toml"),
             "--listen", "udp:127.0.0.1:5090", "--db", os.path.join(tmp, "db.sqlite"), "--api", "off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        before = threads(server.pid)
        load = subprocess.run(
            ["sipp", "127.0.0.1:5090", "-sf", scenario, "-s", "u-", "-i", "127.0.0.1", "-p", "25070",
             "-r", str(args.rate), "-m", str(args.count), "-nostdin", "-trace_err",
             "-error_file", os.path.join(tmp, "err.log")],
            check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
        after = threads(server.pid)
        if load.returncode != 0:
            print(f"sipp exited with {load.returncode}: some REGISTERs failed", file=sys.stderr)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=15)
        rows = collections.defaultdict(lambda: [0, 0, 0, 0])
        for tid, (name, ut, st, vol, invol) in after.items():
            b = before.get(tid, (name, 0, 0, 0, 0))
            row = rows[name]
            for i, (x, y) in enumerate(zip((ut, st, vol, invol), b[1:])):
                row[i] += x - y
        n = args.count
        us = 1e6 / TICK / n
        print(f"{'thread':<18}{'user µs':>9}{'sys µs':>9}{'vol/op':>9}{'invol/op':>9}")
        total = [0, 0]
        for name, (ut, st, vol, invol) in sorted(rows.items(), key=lambda r: -(r[1][0] + r[1][1])):
            if ut + st + vol + invol == 0:
                continue
            total[0] += ut
            total[1] += st
            print(f"{name:<18}{ut * us:>9.2f}{st * us:>9.2f}{vol / n:>9.3f}{invol / n:>9.3f}")
        print(f"{'all':<18}{total[0] * us:>9.2f}{total[1] * us:>9.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
