"""Integration test harness for mdcache: real redis-server processes, the real
daemon, and a small stdlib-only RESP client. Every test starts its own Redis
and daemon on fresh loopback ports, so tests never share state.

Standard library only (Debian's /usr/bin/python3, no pip).
"""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MDCACHE_BIN = os.environ.get("MDCACHE_BIN", os.path.join(ROOT, "build", "mdcache"))
MDFEED_BIN = os.environ.get("MDFEED_BIN", os.path.join(ROOT, "build", "mdfeed"))
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"

# Sanitizer builds run several times slower: stretch every bound.
SLOW = 3.0 if os.environ.get("MD_SAN") == "1" else 1.0
CONVERGE_TIMEOUT = 60 * SLOW


# ---------------------------------------------------------------- ports


def free_port(kind="tcp"):
    """A loopback port that was free a moment ago (TCP or UDP)."""
    st = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, st) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until truthy; returns its value or None on timeout."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            return None
        time.sleep(interval)


# ---------------------------------------------------------------- RESP


class RespError(Exception):
    """An error reply from Redis ("-ERR ..."): returned in pipelines, raised by cmd()."""


class Resp:
    """Minimal RESP2 client: enough for GET/TTL/SCAN/INFO/CONFIG/CLIENT and pipelines."""

    def __init__(self, port=None, host="127.0.0.1", unix=None, timeout=10.0, tls=None,
                 server_hostname=None, password=None, username=None, db=None):
        """tls: an ssl.SSLContext (see tls_context()) to speak TLS; password (and
        username, for an ACL user): AUTH right after connecting; db: SELECT."""
        if unix:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(unix)
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
            if tls is not None:
                try:
                    self.sock = tls.wrap_socket(self.sock,
                                                server_hostname=server_hostname or host)
                except BaseException:
                    self.sock.close()
                    raise
        self.buf = b""
        try:
            if password is not None:
                if username is not None:
                    self.cmd("AUTH", username, password)
                else:
                    self.cmd("AUTH", password)
            if db is not None:
                self.cmd("SELECT", db)
        except BaseException:
            self.close()
            raise

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, (int, float)):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("redis closed the connection")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill()

    def _reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode("utf-8", "replace")
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._reply() for _ in range(n)]
        raise ConnectionError("bad RESP reply %r" % line)

    def pipeline(self, cmds):
        """Sends every command in one write; returns the replies (errors as RespError)."""
        if not cmds:
            return []
        self.sock.sendall(b"".join(self.encode(c) for c in cmds))
        return [self._reply() for _ in cmds]

    def cmd(self, *args):
        r = self.pipeline([args])[0]
        if isinstance(r, RespError):
            raise r
        return r

    def scan_all(self, pattern):
        keys, cursor = [], "0"
        while True:
            cursor, batch = self.cmd("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            keys.extend(batch)
            if cursor == "0":
                return sorted(set(keys))

    def get_many(self, keys, chunk=2000):
        out = {}
        keys = list(keys)
        for i in range(0, len(keys), chunk):
            part = keys[i:i + chunk]
            for k, v in zip(part, self.pipeline([("GET", k) for k in part])):
                out[k] = v
        return out

    def ttl_many(self, keys, chunk=2000):
        out = {}
        keys = list(keys)
        for i in range(0, len(keys), chunk):
            part = keys[i:i + chunk]
            for k, v in zip(part, self.pipeline([("TTL", k) for k in part])):
                out[k] = v
        return out


def tls_context(cafile=None, certfile=None, keyfile=None, verify=True):
    """A client-side SSLContext for Resp: verifies the server against cafile (and
    its name/IP) unless verify=False; presents certfile/keyfile when given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(cafile=cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if certfile:
        ctx.load_cert_chain(certfile, keyfile)
    return ctx


# ---------------------------------------------------------------- redis-server


class RedisServer:
    """A private redis-server on a free loopback port (and optionally a unix socket).

    tls: a tlscerts.Certs; the server then listens for TLS only (`--port 0
    --tls-port P`) with certs.server_crt (or cert/key given as tls_cert and
    tls_key, e.g. the expired one) and `--tls-auth-clients tls_auth_clients`.
    requirepass: a password for the default user. debug: `--enable-debug-command
    local` (DEBUG is off by default in 7.0). args: more redis-server arguments.
    prefix: argv put before redis-server's, e.g. ["taskset", "-c", "0"] to pin
    it from exec on (the bench). client() speaks TLS and AUTHs as the server
    requires (admin access)."""

    def __init__(self, unix=False, tls=None, tls_auth_clients="no", tls_cert=None,
                 tls_key=None, requirepass=None, debug=False, args=(), prefix=(),
                 cluster=False):
        self.dir = tempfile.mkdtemp(prefix="mdtest-redis-")
        self.port = None
        # cluster: a Redis Cluster node, its bus on a free port of its own
        # (the default, port + 10000, may be taken or past 65535).
        self.cluster = cluster
        self.bus_port = None
        self.unix = os.path.join(self.dir, "redis.sock") if unix else None
        self.proc = None
        self.log = os.path.join(self.dir, "redis.log")
        self.tls = tls
        self.tls_auth_clients = tls_auth_clients
        self.tls_cert = tls_cert or (tls.server_crt if tls else None)
        self.tls_key = tls_key or (tls.server_key if tls else None)
        self.requirepass = requirepass
        self.debug = debug
        self.args = list(args)
        self.prefix = list(prefix)
        # The admin password client() and the start-up probe use; a test that
        # changes requirepass at run time updates it (or passes its own).
        self.password = requirepass

    @property
    def url(self):
        if self.tls:
            return "rediss://127.0.0.1:%d/0" % self.port
        return "redis://127.0.0.1:%d/0" % self.port

    def _spawn(self, extra=()):
        args = self.prefix + [REDIS_SERVER, "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--daemonize", "no", "--logfile", self.log, "--protected-mode", "no"]
        if self.tls:
            args += ["--port", "0", "--tls-port", str(self.port),
                     "--tls-cert-file", self.tls_cert, "--tls-key-file", self.tls_key,
                     "--tls-ca-cert-file", self.tls.ca_crt,
                     "--tls-auth-clients", self.tls_auth_clients]
        else:
            args += ["--port", str(self.port)]
        if self.unix:
            args += ["--unixsocket", self.unix, "--unixsocketperm", "700"]
        if self.requirepass is not None:
            args += ["--requirepass", self.requirepass]
        if self.debug:
            args += ["--enable-debug-command", "local"]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-port", str(self.bus_port), "--cluster-node-timeout", "2000"]
            if self.requirepass is not None:
                args += ["--masterauth", self.requirepass]
            if self.tls:
                # The cluster bus (tls-cluster) always verifies the peer's
                # certificate, so a node dialling another must present one
                # made for client use: the server certificate is not.
                args += ["--tls-cluster", "yes", "--tls-replication", "yes",
                         "--tls-client-cert-file", self.tls.client_crt,
                         "--tls-client-key-file", self.tls.client_key]
        args += self.args + list(extra)
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self):
        for _attempt in range(5):
            self.port = free_port()
            if self.cluster:
                self.bus_port = free_port()
            self._spawn()
            if wait_for(self._pings, 10 * SLOW):
                return self
            self.kill()  # port taken in the meantime, most likely: try another
        raise RuntimeError("redis-server did not start; log:\n" + self.log_tail())

    def restart(self, extra_args=(), wait_ping=True, wait=True):
        """Starts a fresh server on the same port (after kill/stop), empty unless a
        SAVE left a dump in its dir (which it then loads); with
        extra_args for this run only (e.g. to make it load slowly). wait_ping=False
        returns once the process runs (a loading server answers -LOADING);
        wait=False returns at once, the caller timing the first answer itself
        (see wait_ping())."""
        self._spawn(extra_args)
        if not wait:
            return self
        pred = self._pings if wait_ping else self._answers
        if not wait_for(pred, 10 * SLOW):
            raise RuntimeError("redis-server did not restart; log:\n" + self.log_tail())
        return self

    def tls_context(self, client_cert=None, verify=None):
        """Context for a Resp to this server: verifies against the test CA (not
        for a server with an overridden, e.g. expired, certificate), presents the
        client certificate when the server asks for one."""
        if not self.tls:
            return None
        if verify is None:
            verify = self.tls_cert == self.tls.server_crt
        if client_cert is None:
            client_cert = self.tls_auth_clients != "no"
        return tls_context(self.tls.ca_crt,
                           self.tls.client_crt if client_cert else None,
                           self.tls.client_key if client_cert else None, verify)

    def ping(self, timeout=1.0):
        """A new admin connection that answered PING with PONG, else None."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        try:
            c = self.client(timeout=timeout)
        except (OSError, ConnectionError, RespError):
            return None
        try:
            if c.cmd("PING") == "PONG":
                return c
        except (OSError, ConnectionError, RespError):
            pass
        c.close()
        return None

    def wait_ping(self, timeout=10.0, interval=0.001):
        """Tries ping() every `interval` s until it answers: the open
        connection, or None after `timeout` s."""
        return wait_for(self.ping, timeout, interval)

    def _pings(self):
        c = self.ping()
        if c:
            c.close()
        return bool(c)

    def _answers(self):
        """The server accepts connections and replies (maybe with an error)."""
        if self.proc.poll() is not None:
            return False
        try:
            c = Resp(self.port, timeout=1, tls=self.tls_context())
            try:
                c.pipeline([("PING",)])
                return True
            finally:
                c.close()
        except (OSError, ConnectionError):
            return False

    def log_tail(self):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return "(no log)"

    def client(self, timeout=10.0, password=None, username=None, db=None):
        """An admin connection (TLS and AUTH as this server needs them)."""
        if password is None and username is None:
            password = self.password
        return Resp(self.port, timeout=timeout, tls=self.tls_context(), password=password,
                    username=username, db=db)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisCluster:
    """A Redis Cluster of private nodes on loopback: `primaries` primaries with
    `replicas` replicas each, made with `redis-cli --cluster create` (as an
    operator would). kw goes to every RedisServer (tls, requirepass, args...)."""

    def __init__(self, primaries=3, replicas=1, **kw):
        self.nodes = [RedisServer(cluster=True, **kw)
                      for _ in range(primaries * (1 + replicas))]
        self.primaries_n = primaries
        self.replicas = replicas

    def start(self):
        for n in self.nodes:
            n.start()
        first = self.nodes[0]
        cmd = [REDIS_CLI, "--cluster", "create"] + ["127.0.0.1:%d" % n.port for n in self.nodes]
        cmd += ["--cluster-replicas", str(self.replicas), "--cluster-yes"]
        cmd += self.cli_auth()
        out = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=60 * SLOW)
        if out.returncode != 0:
            raise RuntimeError("redis-cli --cluster create failed:\n%s%s"
                               % (out.stdout[-2000:], out.stderr[-2000:]))
        if not wait_for(self.healthy, 60 * SLOW, interval=0.2):
            raise RuntimeError("cluster not ok after create; node 0 says:\n%s"
                               % first.client().cmd("CLUSTER", "INFO"))
        return self

    def cli_auth(self):
        """redis-cli options to reach the nodes (TLS, password)."""
        n = self.nodes[0]
        opts = []
        if n.tls:
            opts += ["--tls", "--cacert", n.tls.ca_crt]
            if n.tls_auth_clients != "no":
                opts += ["--cert", n.tls.client_crt, "--key", n.tls.client_key]
        if n.requirepass is not None:
            opts += ["-a", n.requirepass, "--no-auth-warning"]
        return opts

    def healthy(self):
        """Every live node says cluster_state:ok and knows every primary with its
        replicas attached."""
        want = self.primaries_n * (1 + self.replicas)
        for n in self.nodes:
            if not n.proc or n.proc.poll() is not None:
                continue
            try:
                c = n.client(timeout=2)
                try:
                    info = c.cmd("CLUSTER", "INFO")
                    nodes = c.cmd("CLUSTER", "NODES")
                finally:
                    c.close()
            except (OSError, ConnectionError, RespError):
                return False
            if "cluster_state:ok" not in info:
                return False
            lines = [l.split() for l in nodes.splitlines() if l.strip()]
            if len([l for l in lines if l[7] == "connected"]) < want:
                return False
            # Replicas show up as primaries until they have attached.
            if len([l for l in lines if "slave" in l[2].split(",")]) < (
                    self.primaries_n * self.replicas):
                return False
        return True

    def shards(self, via=0):
        """{(host, port) of each primary: [(lo, hi), ...]} from CLUSTER SHARDS."""
        c = self.nodes[via].client()
        try:
            out = {}
            for shard in c.cmd("CLUSTER", "SHARDS"):
                m = dict(zip(shard[0::2], shard[1::2]))
                for node in m["nodes"]:
                    nm = dict(zip(node[0::2], node[1::2]))
                    if nm["role"] == "master" and nm["health"] == "online":
                        sl = m["slots"]
                        out[(nm["ip"], nm["port"])] = [(sl[i], sl[i + 1])
                                                       for i in range(0, len(sl), 2)]
            return out
        finally:
            c.close()

    def node_at(self, port):
        return next(n for n in self.nodes if n.port == port)

    def cleanup(self):
        for n in self.nodes:
            n.cleanup()


# ---------------------------------------------------------------- mdcache

COUNTER_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(-?[0-9]+(?:\.[0-9]+)?)")


def parse_counters(line):
    out = {}
    for k, v in COUNTER_RE.findall(line):
        out[k] = float(v) if "." in v else int(v)
    return out


class Mdcache:
    """The daemon under test, its stderr captured to a file."""

    def __init__(self, redis_url, listens=(), ini=None, args=(), cpus="0,1",
                 stats_interval=0.2, log_level="info", env=None):
        self.dir = tempfile.mkdtemp(prefix="mdtest-mdcache-")
        self.log_path = os.path.join(self.dir, "stderr.log")
        self.argv = [MDCACHE_BIN]
        if ini is not None:
            self.ini_path = os.path.join(self.dir, "mdcache.ini")
            with open(self.ini_path, "w") as f:
                f.write(ini)
            self.argv += ["-c", self.ini_path]
        if redis_url:
            self.argv += ["--redis", redis_url]
        for spec in listens:
            self.argv += ["--listen", spec]
        if cpus:
            self.argv += ["--cpus", cpus]
        if log_level:
            self.argv += ["--log-level", log_level]
        if stats_interval is not None:
            self.argv += ["--stats-interval", str(stats_interval)]
        self.argv += list(args)
        self.env = dict(os.environ)
        if env:
            self.env.update(env)
        self.proc = None
        self.returncode = None

    def start(self, wait_ready=True, timeout=20):
        self._logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._logf, env=self.env)
        if wait_ready:
            ok = wait_for(lambda: "ready:" in self.log() or self.proc.poll() is not None,
                          timeout * SLOW)
            if not ok or "ready:" not in self.log():
                rc = self.proc.poll()
                self.kill()
                raise AssertionError("mdcache did not log 'ready:' within %gs (exit %s)\n"
                                     "argv: %s\nlog:\n%s" % (timeout * SLOW, rc,
                                                             " ".join(self.argv), self.tail()))
        return self

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def tail(self, n=30):
        return "".join(self.log().splitlines(True)[-n:])

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _last(self, marker):
        found = None
        for line in self.log().splitlines():
            if marker in line:
                found = line
        return parse_counters(found.split(marker, 1)[1]) if found else None

    def stats(self):
        """Counters of the latest ' stats: ' line, or None."""
        return self._last(" stats: ")

    def final(self):
        """Counters of the ' final: ' line, or None."""
        return self._last(" final: ")

    def wait_stats(self, pred, timeout=30):
        """Waits for a stats line whose counters satisfy pred; returns them or fails."""
        got = wait_for(lambda: (lambda s: s if s and pred(s) else None)(self.stats()),
                       timeout * SLOW)
        if not got:
            raise AssertionError("stats never satisfied the condition within %gs; last: %s\n"
                                 "log tail:\n%s" % (timeout * SLOW, self.stats(), self.tail()))
        return got

    def wait_exit(self, timeout=20):
        """Waits for the daemon to exit by itself; returns its exit code, or None
        (and kills it) if it still runs after timeout * SLOW seconds."""
        try:
            self.returncode = self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        return self.returncode

    def signal(self, sig):
        self.proc.send_signal(sig)

    def terminate(self, timeout=15):
        """SIGTERM and wait; returns the exit code (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.kill()
                self.returncode = None
                return None
        self.returncode = self.proc.returncode
        return self.returncode

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self):
        self.kill()
        try:
            self._logf.close()
        except AttributeError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def run_mdcache_once(args, timeout=10, env=None):
    """Runs mdcache to completion (config checks, --version, ...): (rc, stdout, stderr).
    env: variables added to (or, with value None, removed from) the environment."""
    e = None
    if env:
        e = dict(os.environ)
        for k, v in env.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
    p = subprocess.run([MDCACHE_BIN] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout * SLOW, text=True, env=e)
    return p.returncode, p.stdout, p.stderr


# ---------------------------------------------------------------- mdfeed


def load_expect(path):
    out = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                out[d["key"]] = d["value"]
    return out


def run_mdfeed(args, expect_path=None, timeout=120):
    """Runs build/mdfeed; returns (summary counters, expected {key: value} or None)."""
    argv = [MDFEED_BIN] + list(args)
    if expect_path:
        argv += ["--expect", expect_path]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout * SLOW)
    if p.returncode != 0:
        raise AssertionError("mdfeed failed (exit %d): %s\n%s" % (p.returncode, " ".join(argv),
                                                                 p.stderr))
    summary = None
    for line in p.stdout.splitlines():
        if line.startswith("mdfeed:"):
            summary = parse_counters(line)
    if summary is None:
        raise AssertionError("mdfeed printed no summary: %r" % p.stdout)
    return summary, (load_expect(expect_path) if expect_path else None)


# ---------------------------------------------------------------- convergence


def mismatches(actual, expected, limit=10):
    lines = []
    for k in sorted(expected):
        if actual.get(k) != expected[k]:
            lines.append("  %s\n    expected %s\n    actual   %s" % (k, expected[k], actual.get(k)))
            if len(lines) >= limit:
                break
    return lines


def wait_keys(redis_client, expected, timeout=None, mdcache=None):
    """Polls until every key holds exactly its expected value; fails with the
    first mismatches (and the daemon's log tail) if that never happens."""
    timeout = CONVERGE_TIMEOUT if timeout is None else timeout
    end = time.monotonic() + timeout
    while True:
        actual = redis_client.get_many(expected.keys())
        bad = mismatches(actual, expected)
        if not bad:
            return actual
        if time.monotonic() >= end:
            nbad = sum(1 for k in expected if actual.get(k) != expected[k])
            msg = "%d of %d keys differ after %gs; first:\n%s" % (nbad, len(expected), timeout,
                                                                 "\n".join(bad))
            if mdcache is not None:
                msg += "\nmdcache stats: %s\nlog tail:\n%s" % (mdcache.stats(), mdcache.tail())
            raise AssertionError(msg)
        time.sleep(0.1)


def price_json(last=None, bid=None, ask=None, volume=None, high=None, low=None, ts_ms=None):
    """The exact value string mdcache writes; pass decimals as the strings the feed sent."""
    def v(x):
        return "null" if x is None else str(x)
    return ('{"Last":%s,"Bid":%s,"Ask":%s,"Volume":%s,"High":%s,"Low":%s,"Timestamp":%s}'
            % (v(last), v(bid), v(ask), v(volume), v(high), v(low), v(ts_ms)))


# ---------------------------------------------------------------- bin1, from docs/protocol.md

BIN1_MAGIC = 0xB1
BIN1_VERSION = 1
BIN1_QUOTE, BIN1_TRADE, BIN1_HEARTBEAT, BIN1_RESET = 1, 2, 3, 4
BIN1_POSITION, BIN1_ORDER, BIN1_BALANCE, BIN1_ACCOUNT = 5, 6, 7, 8
BIN1_F_SEQ, BIN1_F_TS = 1, 2
ABSENT = None


def bin1_dec(x):
    """'21000.25' -> 9 bytes (i64 mantissa, i8 exponent); None -> absent (exp -128)."""
    if x is None:
        return struct.pack("<qb", 0, -128)
    if isinstance(x, tuple):
        return struct.pack("<qb", x[0], x[1])
    s = str(x)
    if "." in s:
        ip, fp = s.split(".")
        return struct.pack("<qb", int(ip + fp), -len(fp))
    return struct.pack("<qb", int(s), 0)


def bin1_frame(ftype, symbol="", source="", seq=None, ts=None, body=b"", version=BIN1_VERSION,
               length=None, sym_len=None):
    sym = symbol.encode() if isinstance(symbol, str) else symbol
    src = source.encode() if isinstance(source, str) else source
    flags = (BIN1_F_SEQ if seq is not None else 0) | (BIN1_F_TS if ts is not None else 0)
    n = 24 + len(sym) + len(src) + len(body)
    hdr = struct.pack("<BBHBBBBQq", BIN1_MAGIC, version, n if length is None else length, ftype,
                      len(sym) if sym_len is None else sym_len, len(src), flags,
                      seq or 0, ts or 0)
    assert len(hdr) == 24
    return hdr + sym + src + body


def bin1_quote(symbol, bid, ask, bid_size=1, ask_size=1, seq=None, ts=None, source=""):
    return bin1_frame(BIN1_QUOTE, symbol, source, seq, ts,
                      bin1_dec(bid) + bin1_dec(ask) + bin1_dec(bid_size) + bin1_dec(ask_size))


def bin1_trade(symbol, price, size, seq=None, ts=None, source=""):
    return bin1_frame(BIN1_TRADE, symbol, source, seq, ts, bin1_dec(price) + bin1_dec(size))


def bin1_heartbeat(source, ts=None):
    return bin1_frame(BIN1_HEARTBEAT, "", source, None, ts)


def bin1_reset(symbol, source=""):
    return bin1_frame(BIN1_RESET, symbol, source)


def bin1_name(s):
    """A length-prefixed name in an account body: u8 length, bytes."""
    b = s.encode()
    return struct.pack("<B", len(b)) + b


def bin1_position(account, symbol, net_pos, avg_price=None, seq=None, ts=None, source=""):
    return bin1_frame(BIN1_POSITION, symbol, source, seq, ts,
                      bin1_name(account) + bin1_dec(net_pos) + bin1_dec(avg_price))


def bin1_order(account, order_id, symbol, side, status, qty=None, price=None, seq=None, ts=None,
               source=""):
    """side: 0 none, 1 buy, 2 sell; status: 1 working, 2 filled, 3 cancelled, 4 rejected."""
    return bin1_frame(BIN1_ORDER, symbol, source, seq, ts,
                      bin1_name(account) + bin1_name(order_id) + struct.pack("<BB", side, status)
                      + bin1_dec(qty) + bin1_dec(price))


def bin1_balance(account, cash=None, realized=None, unrealized=None, seq=None, ts=None, source=""):
    return bin1_frame(BIN1_BALANCE, "", source, seq, ts,
                      bin1_name(account) + bin1_dec(cash) + bin1_dec(realized)
                      + bin1_dec(unrealized))


def bin1_account(account, id_="", active=0, seq=None, ts=None, source=""):
    """active: 0 unknown, 1 no, 2 yes."""
    return bin1_frame(BIN1_ACCOUNT, "", source, seq, ts,
                      bin1_name(account) + bin1_name(id_) + struct.pack("<B", active))


# ---------------------------------------------------------------- jsonl


def jl(**fields):
    """One jsonl line from keyword fields; decimals given as str are sent as bare
    numbers (json would turn 21000.00 into 21000.0), as Q('1.5') as JSON strings."""
    parts = []
    for k, v in fields.items():
        k = "type" if k == "type_" else k
        if isinstance(v, Q):
            parts.append('"%s":"%s"' % (k, v.s))
        elif isinstance(v, Num):
            parts.append('"%s":%s' % (k, v.s))
        elif isinstance(v, str):
            parts.append('"%s":%s' % (k, json.dumps(v)))
        else:
            parts.append('"%s":%s' % (k, json.dumps(v)))
    return ("{" + ",".join(parts) + "}\n").encode()


class Num:
    """A number written verbatim into jsonl (keeps '21000.00')."""

    def __init__(self, s):
        self.s = s


class Q:
    """A number sent as a JSON string ("21000.25")."""

    def __init__(self, s):
        self.s = s


# ---------------------------------------------------------------- senders


def send_udp(port, payloads):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for p in payloads:
            s.sendto(p, ("127.0.0.1", port))


def send_stream(data, port=None, unix=None, chunks=None):
    """One connection; data sent as given (or as the list of chunks, one send() each)."""
    if unix:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(unix)
    else:
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with s:
        for c in (chunks if chunks is not None else [data]):
            if c:
                s.sendall(c)
        s.shutdown(socket.SHUT_WR)


# ---------------------------------------------------------------- base test case


# Liveness that never depends on the machine's speed: a source stays alive for
# two minutes, keys live for one.
LONG_LIVENESS_INI = "[keys]\nsource_timeout = 120\nprice_ttl = 60\n"


class MdTestCase(unittest.TestCase):
    """Starts Redis and the daemon per test, and always cleans both up."""

    def feed(self, port, prefix, source, symbols=400, ticks=20000, seed=1, fmt="jsonl"):
        """mdfeed over TCP to port, symbols PREFIX00000..; returns the expected
        {key: value} of this run alone (use distinct prefixes per run)."""
        path = os.path.join(self.tmpdir(), "%s.expect" % prefix)
        _, expected = run_mdfeed(["--target", "tcp://127.0.0.1:%d" % port, "--format", fmt,
                                  "--symbols", str(symbols), "--ticks", str(ticks),
                                  "--symbol-prefix", prefix, "--source", source,
                                  "--seed", str(seed)], path)
        return expected

    def start_cluster(self, primaries=3, replicas=1, **kw):
        cl = RedisCluster(primaries, replicas, **kw)
        self.addCleanup(cl.cleanup)
        return cl.start()

    def start_redis(self, unix=False, **kw):
        """kw: RedisServer's tls, tls_auth_clients, tls_cert, tls_key, requirepass,
        debug, args."""
        r = RedisServer(unix=unix, **kw)
        self.addCleanup(r.cleanup)
        return r.start()

    def start_mdcache(self, redis, listens=(), wait_ready=True, redis_url=None, **kw):
        m = Mdcache(redis_url or (redis.url if redis else None), listens=listens, **kw)
        self.addCleanup(m.cleanup)
        m.start(wait_ready=wait_ready)
        return m

    def client(self, redis, **kw):
        """kw: RedisServer.client's timeout, password, username, db."""
        c = redis.client(**kw)
        self.addCleanup(c.close)
        return c

    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="mdtest-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def assert_clean_exit(self, m, timeout=15):
        rc = m.terminate(timeout)
        self.assertEqual(rc, 0, "mdcache exit code %s after SIGTERM; log tail:\n%s"
                         % (rc, m.tail()))
        fin = m.final()
        self.assertIsNotNone(fin, "no ' final: ' line in mdcache's log:\n" + m.tail())
        return fin

    def assert_ttls(self, client, keys, lo=1, hi=5):
        ttls = client.ttl_many(keys)
        bad = {k: t for k, t in ttls.items() if not (lo <= t <= hi)}
        self.assertFalse(bad, "%d keys with TTL outside %d..%d, e.g. %s"
                         % (len(bad), lo, hi, list(bad.items())[:5]))
