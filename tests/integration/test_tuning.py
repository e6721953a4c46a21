"""CPU and memory tuning (docs/tuning.md): with sched_priority the workers,
and only they, run SCHED_FIFO at that priority; with mlock the process's
memory is locked; and a system that forbids either (no CAP_SYS_NICE or
RLIMIT_RTPRIO, no CAP_IPC_LOCK or RLIMIT_MEMLOCK) ends start-up with one
line naming the limit and exit 2, before anything is started."""

import os
import shutil
import socket
import subprocess
import unittest

from harness import (CONVERGE_TIMEOUT, MDCACHE_BIN, SLOW, MdTestCase, free_port, jl,
                     wait_for)

ROOT_ONLY = unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv")
                                and shutil.which("prlimit"),
                                "needs root (to give and take privileges) and util-linux")
# AddressSanitizer turns mlockall into a no-op (it would lock its shadow).
NOT_ASAN = unittest.skipIf(os.environ.get("MD_SAN") == "1",
                           "ASan ignores mlockall; the plain build's run checks it")


def threads(pid):
    """{tid: (name, policy, rt_priority)} from /proc/PID/task/*/stat."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            s = f.read()
        name = s[s.index("(") + 1:s.rindex(")")]
        rest = s[s.rindex(")") + 2:].split()
        # Fields after the name start at 3 (state): rt_priority is 40,
        # policy 41 (proc(5)).
        out[int(tid)] = (name, int(rest[41 - 3]), int(rest[40 - 3]))
    return out


def vm_locked_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmLck:"):
                return int(line.split()[1])
    return None


def unprivileged(args, **limits):
    """mdcache as nobody, without capabilities, under the given prlimits."""
    lim = ["--%s=%s" % (k, v) for k, v in limits.items()]
    cmd = (["prlimit"] + lim + ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                "--inh-caps=-all", MDCACHE_BIN] + list(args))
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=30 * SLOW)


class TuningTest(MdTestCase):
    @ROOT_ONLY
    @NOT_ASAN
    def test_locked_memory(self):
        r = self.start_redis()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % free_port()],
                               args=["--mlock"])
        self.assertGreater(vm_locked_kb(m.proc.pid), 0)
        self.assert_clean_exit(m)

    @ROOT_ONLY
    def test_fifo_workers(self):
        r = self.start_redis()
        port = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % port],
                               args=["--sched-priority", "10"])
        ts = threads(m.proc.pid)
        workers = {t: v for t, v in ts.items() if v[0].startswith("mdcache-w")}
        self.assertEqual(len(workers), 2, ts)
        for tid, (name, policy, prio) in ts.items():
            if tid in workers:
                self.assertEqual((policy, prio), (1, 10), "%s: %r" % (name, ts))  # SCHED_FIFO
            else:
                self.assertEqual(policy, 0, "%s runs %d, not SCHED_OTHER" % (name, policy))
        # And it works as it does without them.
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(jl(type="quote", symbol="FIFO", bid=1.5, ask=1.6))
        s.close()
        c = self.client(r)
        self.assertTrue(wait_for(lambda: c.cmd("GET", "price:FIFO:latest"), CONVERGE_TIMEOUT))
        self.assert_clean_exit(m)

    @ROOT_ONLY
    def test_forbidden_fifo_exit_2(self):
        p = unprivileged(["--sched-priority", "50", "--listen", "tcp://127.0.0.1:%d" % free_port(),
                          "--redis", "redis://127.0.0.1:%d" % free_port(), "--cpus", "0"],
                         rtprio=0)
        self.assertEqual(p.returncode, 2, p.stderr)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn("sched_priority = 50: SCHED_FIFO refused", lines[0])
        self.assertIn("RLIMIT_RTPRIO >= 50 (it is 0", lines[0])

    @ROOT_ONLY
    @NOT_ASAN
    def test_forbidden_mlock_exit_2(self):
        p = unprivileged(["--mlock", "--listen", "tcp://127.0.0.1:%d" % free_port(),
                          "--redis", "redis://127.0.0.1:%d" % free_port(), "--cpus", "0"],
                         memlock="0:0")
        self.assertEqual(p.returncode, 2, p.stderr)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn("mlock = yes: mlockall:", lines[0])
        self.assertIn("RLIMIT_MEMLOCK is 0 KiB", lines[0])
