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
        # A primary starts a (diskless) full sync 5 s after a replica asks
        # by default, and a replica that never synced refuses to fail over
        # ("Disconnected from master for longer than allowed"): sync at once.
        kw["args"] = ["--repl-diskless-sync-delay", "0"] + list(kw.get("args", ()))
        self.nodes = [RedisServer(cluster=True, **kw)
                      for _ in range(primaries * (1 + replicas))]
        self.primaries_n = primaries
        self.replicas = replicas
        self._ids = {}  # port: cluster node id

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
        if not wait_for(self.replicas_synced, 60 * SLOW, interval=0.1):
            raise RuntimeError("replicas not in sync after create:\n%s" % self.describe())
        self._read_ids()
        return self

    def _replication_infos(self):
        """INFO replication of every live node, or None if one does not answer."""
        out = []
        for n in self.live():
            try:
                c = n.client(timeout=2)
                try:
                    out.append(c.cmd("INFO", "replication"))
                finally:
                    c.close()
            except (OSError, ConnectionError, RespError):
                return None
        return out

    def replicas_synced(self):
        """Every live replica has finished its sync and its link to its
        primary is up (INFO replication): only such a replica can take over
        when its primary fails."""
        infos = self._replication_infos()
        if infos is None:
            return False
        for info in infos:
            if "role:slave" in info and ("master_link_status:up" not in info
                                         or "master_sync_in_progress:0" not in info):
                return False
        return True

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

    # ---- who is who: node ids and what each node sees

    def live(self):
        """The nodes whose process runs (not killed or stopped)."""
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def _read_ids(self):
        for n in self.live():
            if n.port not in self._ids:
                c = n.client(timeout=5)
                try:
                    self._ids[n.port] = c.cmd("CLUSTER", "MYID")
                finally:
                    c.close()

    def node_id(self, node):
        """The node's cluster id (CLUSTER MYID). start() reads every node's
        while all run, so a killed node still has one."""
        if node.port not in self._ids:
            self._read_ids()
        return self._ids[node.port]

    def by_id(self, node_id):
        """The RedisServer with this cluster id, or None."""
        for n in self.nodes:
            if self._ids.get(n.port) == node_id:
                return n
        return None

    def view(self, via):
        """What node `via` sees: (cluster_state, {id: {"node": RedisServer or
        None, "flags": [...], "master": id or "-", "link": str, "ranges":
        ["lo-hi", ...], "slots": set, "migrating": {slot: id}, "importing":
        {slot: id}}}) from CLUSTER INFO and CLUSTER NODES. Raises
        OSError/ConnectionError/RespError if via does not answer."""
        c = via.client(timeout=5)
        try:
            info, text = c.pipeline([("CLUSTER", "INFO"), ("CLUSTER", "NODES")])
        finally:
            c.close()
        for r in (info, text):
            if isinstance(r, RespError):
                raise r
        state = re.search(r"cluster_state:(\w+)", info).group(1)
        out = {}
        for line in text.splitlines():
            f = line.split()
            if len(f) < 8:
                continue
            d = {"node": self.by_id(f[0]), "flags": f[2].split(","), "master": f[3],
                 "link": f[7], "ranges": [], "slots": set(), "migrating": {}, "importing": {}}
            for s in f[8:]:
                if s.startswith("["):
                    m = re.match(r"\[(\d+)-([<>])-(\w+)\]", s)
                    if m:
                        kind = "migrating" if m.group(2) == ">" else "importing"
                        d[kind][int(m.group(1))] = m.group(3)
                    continue
                d["ranges"].append(s)
                lo, _, hi = s.partition("-")
                d["slots"].update(range(int(lo), int(hi or lo) + 1))
            out[f[0]] = d
        return state, out

    def _any_view(self):
        for n in self.live():
            try:
                return self.view(n)
            except (OSError, ConnectionError, RespError):
                continue
        raise RuntimeError("no live cluster node answers")

    def primaries(self):
        """The live primaries that own slots, as a live node sees them."""
        _, nodes = self._any_view()
        return [d["node"] for d in nodes.values()
                if "master" in d["flags"] and d["slots"] and "fail" not in d["flags"]
                and d["node"] is not None and d["node"].proc.poll() is None]

    def replicas_of(self, primary):
        """The nodes that replicate `primary`, as a live node sees them."""
        pid = self.node_id(primary)
        _, nodes = self._any_view()
        return [d["node"] for d in nodes.values() if d["master"] == pid and d["node"]]

    def slots_of(self, node):
        """The slots `node` owns (sorted), as a live node sees them."""
        _, nodes = self._any_view()
        return sorted(nodes[self.node_id(node)]["slots"])

    def owner(self, slot):
        """The RedisServer owning `slot`, as a live node sees it, or None."""
        _, nodes = self._any_view()
        for d in nodes.values():
            if slot in d["slots"] and "master" in d["flags"]:
                return d["node"]
        return None

    def url(self, seeds=None, password=None, db=0, username=None):
        """A `--redis` URL naming seed nodes (RedisServers; default: all
        nodes): rediss:// for a TLS cluster, the nodes' password unless
        password is given ("" for none), and username (an ACL user)."""
        seeds = self.nodes if seeds is None else seeds
        first = self.nodes[0]
        pw = first.requirepass if password is None else password
        auth = "%s%s@" % (username or "", ":" + pw if pw else "") if pw or username else ""
        return "%s://%s%s/%d" % ("rediss" if first.tls else "redis", auth,
                                 ",".join("127.0.0.1:%d" % n.port for n in seeds), db)

    def on_every_node(self, *args):
        """Runs one command on every live node (ACL SETUSER, CONFIG SET:
        what a node does not share over the bus); returns the replies."""
        out = []
        for n in self.live():
            c = n.client()
            try:
                out.append(c.cmd(*args))
            finally:
                c.close()
        return out

    def settled(self):
        """Every live node says cluster_state:ok, no slot is migrating or
        importing, no failed primary owns slots, and every live node sees
        the same owner for every slot (what `redis-cli --cluster check` calls
        agreeing about the configuration)."""
        seen = None
        for n in self.live():
            try:
                state, nodes = self.view(n)
            except (OSError, ConnectionError, RespError):
                return False
            if state != "ok":
                return False
            owners = {}
            for nid, d in nodes.items():
                if d["migrating"] or d["importing"]:
                    return False
                if d["slots"]:
                    if "fail" in d["flags"] or "fail?" in d["flags"]:
                        return False
                    owners[nid] = tuple(sorted(d["ranges"]))
            if seen is None:
                seen = owners
            elif owners != seen:
                return False
        return seen is not None and sum(
            len(nodes[nid]["slots"]) for nid in seen) == 16384

    def wait_settled(self, timeout=60):
        if not wait_for(self.settled, timeout * SLOW, interval=0.2):
            raise AssertionError("cluster not settled after %gs:\n%s"
                                 % (timeout * SLOW, self.describe()))

    def describe(self):
        """CLUSTER NODES of every live node, for failure messages."""
        out = []
        for n in self.live():
            try:
                c = n.client(timeout=2)
                try:
                    out.append("node 127.0.0.1:%d:\n%s" % (n.port, c.cmd("CLUSTER", "NODES")))
                finally:
                    c.close()
            except (OSError, ConnectionError, RespError) as e:
                out.append("node 127.0.0.1:%d: %s" % (n.port, e))
        return "\n".join(out)

    def replicas_caught_up(self):
        """Every live primary's replicas have acknowledged its whole
        replication stream (their offsets equal master_repl_offset): a
        write the primary acknowledged is on its replica too."""
        infos = self._replication_infos()
        if infos is None:
            return False
        for info in infos:
            if "role:master" not in info:
                continue
            off = int(re.search(r"master_repl_offset:(\d+)", info).group(1))
            for m in re.finditer(r"slave\d+:.*?offset=(\d+)", info):
                if int(m.group(1)) != off:
                    return False
        return True

    # ---- failover

    def wait_failover(self, dead, slots, timeout=60):
        """After primary `dead` was killed (RedisServer.kill()): waits until
        every live node says cluster_state:ok and sees one live primary,
        other than `dead`, owning all of `slots` (dead's slots, read before
        the kill with slots_of()). Returns that primary; fails with every
        node's view if it does not happen within timeout * SLOW s."""
        dead_id = self.node_id(dead)
        want = set(slots)

        def promoted():
            who = None
            for n in self.live():
                try:
                    state, nodes = self.view(n)
                except (OSError, ConnectionError, RespError):
                    return None
                if state != "ok":
                    return None
                owner = [nid for nid, d in nodes.items() if want <= d["slots"]
                         and "master" in d["flags"] and "fail" not in d["flags"]]
                if len(owner) != 1 or owner[0] == dead_id or (who and owner[0] != who):
                    return None
                who = owner[0]
            node = self.by_id(who) if who else None
            return node if node is not None and node.proc.poll() is None else None

        got = wait_for(promoted, timeout * SLOW, interval=0.2)
        if got is None:
            raise AssertionError("no replica took over the slots of 127.0.0.1:%d within %gs:\n%s"
                                 % (dead.port, timeout * SLOW, self.describe()))
        return got

    # ---- resharding

    def run_cli(self, args, timeout=300):
        """redis-cli ARGS with the options the nodes need (TLS, password);
        returns its stdout, fails with its output if it exits non-zero."""
        cmd = [REDIS_CLI] + list(args) + self.cli_auth()
        out = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=timeout * SLOW)
        if out.returncode != 0:
            raise AssertionError("%s failed (exit %d):\n%s%s"
                                 % (" ".join(cmd), out.returncode, out.stdout[-3000:],
                                    out.stderr[-3000:]))
        return out.stdout

    def reshard(self, src, dst, nslots, pipeline=None, timeout=300):
        """`redis-cli --cluster reshard` of nslots slots from src to dst, as
        an operator does it (slot by slot: IMPORTING/MIGRATING, MIGRATE of
        the keys `pipeline` at a time, SETSLOT NODE on every primary).
        Returns redis-cli's output."""
        args = ["--cluster", "reshard", "127.0.0.1:%d" % src.port,
                "--cluster-from", self.node_id(src), "--cluster-to", self.node_id(dst),
                "--cluster-slots", str(nslots), "--cluster-yes"]
        if pipeline:
            args += ["--cluster-pipeline", str(pipeline)]
        return self.run_cli(args, timeout)

    def begin_migration(self, slots, src, dst):
        """Opens the migration of `slots` from src to dst by hand, in the
        order redis-cli uses: IMPORTING on dst, then MIGRATING on src. Keys
        stay on src until migrate_keys(); meanwhile src answers -ASK for any
        key of those slots it does not hold (a new key, or one migrated)."""
        cs, cd = src.client(), dst.client()
        try:
            for s in slots:
                cd.cmd("CLUSTER", "SETSLOT", s, "IMPORTING", self.node_id(src))
            for s in slots:
                cs.cmd("CLUSTER", "SETSLOT", s, "MIGRATING", self.node_id(dst))
        finally:
            cs.close()
            cd.close()

    def migrate_keys(self, slots, src, dst, batch=100):
        """MIGRATEs every key src holds in `slots` to dst (slots opened with
        begin_migration); returns how many keys moved."""
        moved = 0
        cs = src.client()
        try:
            for s in slots:
                for _round in range(100000):  # bounded: src takes no new keys here
                    keys = cs.cmd("CLUSTER", "GETKEYSINSLOT", s, batch)
                    if not keys:
                        break
                    args = ["MIGRATE", "127.0.0.1", dst.port, "", 0, 10000]
                    if src.requirepass is not None:
                        args += ["AUTH", src.requirepass]
                    cs.cmd(*(args + ["KEYS"] + keys))
                    moved += len(keys)
        finally:
            cs.close()
        return moved

    def finish_migration(self, slots, src, dst):
        """Gives `slots` to dst (their keys all migrated): SETSLOT NODE on
        dst, then src, then every other live primary, as redis-cli does."""
        order = [dst, src] + [n for n in self.primaries() if n not in (dst, src)]
        for n in order:
            c = n.client()
            try:
                for s in slots:
                    c.cmd("CLUSTER", "SETSLOT", s, "NODE", self.node_id(dst))
            finally:
                c.close()

    def cleanup(self):
        for n in self.nodes:
            n.cleanup()


# ---------------------------------------------------------------- cluster keys


def _crc16_table():
    t = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = (c << 1) ^ 0x1021 if c & 0x8000 else c << 1
        t.append(c & 0xFFFF)
    return t


_CRC16 = _crc16_table()
CLUSTER_SLOTS = 16384


def key_slot(key):
    """A key's Redis Cluster slot: CRC16-XMODEM mod 16384 of the key, or of
    its hash tag (what lies between the first '{' and the next '}', if not
    empty), as CLUSTER KEYSLOT computes it."""
    k = key.encode() if isinstance(key, str) else key
    s = k.find(b"{")
    if s >= 0:
        e = k.find(b"}", s + 1)
        if e > s + 1:
            k = k[s + 1:e]
    crc = 0
    for b in k:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ b) & 0xFF]
    return crc % CLUSTER_SLOTS


class ClusterClient:
    """Reads a RedisCluster as a cluster-aware client does: the slot map from
    CLUSTER SLOTS of any live node, every key read from the primary owning
    its slot (one pipeline per node); -MOVED re-reads the map and the key
    from its new owner, -ASK is followed with ASKING. get_many() and
    ttl_many() never raise for a node that is down or answers with an
    error: the key's value is then a string starting with '<' (no value
    mdcache writes), so wait_keys() and the like keep polling."""

    def __init__(self, cluster, timeout=10.0):
        self.cluster = cluster
        self.timeout = timeout
        self.conns = {}    # port: Resp
        self.owner = None  # slot: RedisServer or None

    def close(self):
        for c in self.conns.values():
            c.close()
        self.conns = {}

    def _conn(self, node):
        c = self.conns.get(node.port)
        if c is None:
            c = self.conns[node.port] = node.client(timeout=self.timeout)
        return c

    def _drop(self, node):
        c = self.conns.pop(node.port, None)
        if c:
            c.close()

    def refresh(self):
        """Reads the slot map from the first live node that answers; False
        if none does."""
        for n in self.cluster.live():
            try:
                slots = self._conn(n).cmd("CLUSTER", "SLOTS")
            except (OSError, ConnectionError, RespError):
                self._drop(n)
                continue
            owner = [None] * CLUSTER_SLOTS
            for ent in slots:
                lo, hi, prim = ent[0], ent[1], ent[2]
                node = self.cluster.by_id(prim[2]) if len(prim) > 2 else None
                if node is None:
                    node = next((x for x in self.cluster.nodes if x.port == prim[1]), None)
                owner[lo:hi + 1] = [node] * (hi - lo + 1)
            self.owner = owner
            return True
        self.owner = None
        return False

    def _ask(self, err, cmd, key):
        """Follows '-ASK slot host:port' once."""
        port = int(err.rsplit(":", 1)[1])
        node = next((x for x in self.cluster.nodes if x.port == port), None)
        if node is None:
            return "<%s: unknown node>" % err
        try:
            r = self._conn(node).pipeline([("ASKING",), (cmd, key)])[1]
        except (OSError, ConnectionError):
            self._drop(node)
            return "<unreachable 127.0.0.1:%d>" % port
        return "<%s>" % r if isinstance(r, RespError) else r

    def run(self, cmd, keys, chunk=2000):
        """{key: reply to `CMD key`} for every key, each sent to its owner."""
        out = {}
        pending = list(keys)
        for attempt in range(5):
            if self.owner is None or attempt > 0:
                self.refresh()
            groups = {}
            for k in pending:
                node = self.owner[key_slot(k)] if self.owner else None
                if node is None:
                    out[k] = "<slot %d unowned>" % key_slot(k)
                else:
                    groups.setdefault(node, []).append(k)
            retry = []
            for node, ks in groups.items():
                try:
                    c = self._conn(node)
                    replies = []
                    for i in range(0, len(ks), chunk):
                        replies += c.pipeline([(cmd, k) for k in ks[i:i + chunk]])
                except (OSError, ConnectionError):
                    self._drop(node)
                    self.owner = None
                    for k in ks:
                        out[k] = "<unreachable 127.0.0.1:%d>" % node.port
                    continue
                for k, r in zip(ks, replies):
                    if isinstance(r, RespError):
                        msg = str(r)
                        if msg.startswith("MOVED "):
                            retry.append(k)
                        elif msg.startswith("ASK "):
                            out[k] = self._ask(msg, cmd, k)
                        else:
                            out[k] = "<%s>" % msg
                    else:
                        out[k] = r
            if not retry:
                return out
            pending = retry
        for k in pending:
            out[k] = "<still MOVED after 5 map refreshes>"
        return out

    def get_many(self, keys):
        return self.run("GET", keys)

    def ttl_many(self, keys):
        return self.run("TTL", keys)

    def owners(self):
        """The RedisServers owning slots, per the current map."""
        if self.owner is None:
            self.refresh()
        seen = []
        for n in self.owner or []:
            if n is not None and n not in seen:
                seen.append(n)
        return seen

    def scan_all(self, pattern):
        """SCAN MATCH pattern over every primary."""
        keys = set()
        for n in self.owners():
            keys.update(self._conn(n).scan_all(pattern))
        return sorted(keys)

    def dbsizes(self):
        """{port: DBSIZE} of every primary."""
        return {n.port: self._conn(n).cmd("DBSIZE") for n in self.owners()}


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


class MdfeedRun:
    """build/mdfeed in the background: a long stream, bounded by its own
    --ticks and --duration, for a test that acts while it flows (kills a
    node, moves slots). stop() sends SIGTERM: mdfeed stops after the tick
    it is on, flushes, writes --expect for exactly the ticks it sent and
    prints its summary. Call kill() in a cleanup."""

    def __init__(self, args, expect_path):
        self.expect_path = expect_path
        self.argv = [MDFEED_BIN] + list(args) + ["--expect", expect_path]
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def running(self):
        return self.proc.poll() is None

    def stop(self, timeout=60):
        """Ends the stream (if it still runs): (summary, expected)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout=120):
        """Waits for the stream to end by itself: (summary, expected)."""
        try:
            out, err = self.proc.communicate(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("mdfeed still ran after %gs: %s"
                                 % (timeout * SLOW, " ".join(self.argv)))
        if self.proc.returncode != 0:
            raise AssertionError("mdfeed failed (exit %d): %s\n%s"
                                 % (self.proc.returncode, " ".join(self.argv), err))
        summary = None
        for line in out.splitlines():
            if line.startswith("mdfeed:"):
                summary = parse_counters(line)
        if summary is None:
            raise AssertionError("mdfeed printed no summary: %r" % out)
        return summary, load_expect(self.expect_path)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


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
