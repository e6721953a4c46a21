"""Redis over TLS (issue #4): rediss:// against a real TLS-only redis-server
with certificates made at test time (tlscerts.py): verification against the
right CA, the wrong CA, an expired certificate, the server name (SNI), mutual
TLS, --insecure, the config-file form, and a reconnect over TLS after the
server was killed."""

import os
import signal

import tlscerts
from harness import (LONG_LIVENESS_INI, MdTestCase, free_port, run_mdcache_once, wait_keys)


class TlsTest(MdTestCase):
    def setUp(self):
        self.certs = tlscerts.get()

    def start_tls_redis(self, **kw):
        return self.start_redis(tls=self.certs, **kw)

    def start_fed(self, r, args=(), ini=LONG_LIVENESS_INI, redis_url=None):
        port = free_port()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % port], ini=ini,
                               args=list(args), redis_url=redis_url)
        return m, port

    def start_fails(self, url, args):
        """mdcache against url must exit 2 at start-up; returns its stderr."""
        listen = "tcp://127.0.0.1:%d?format=jsonl" % free_port()
        rc, _out, err = run_mdcache_once(["--redis", url, "--listen", listen, "--cpus", "0"]
                                         + list(args), timeout=20)
        self.assertEqual(rc, 2, "args %s: exit %s, want 2; stderr:\n%s" % (args, rc, err))
        return err

    def assert_tls_error(self, err, *needles):
        lines = [l for l in err.splitlines() if "TLS:" in l]
        self.assertEqual(len(lines), 1, "want one 'TLS:' line on stderr, got:\n%s" % err)
        self.assertTrue(lines[0].startswith("mdcache: redis 127.0.0.1:"), lines[0])
        for n in needles:
            self.assertIn(n, lines[0])
        return lines[0]

    def test_valid_ca_converges(self):
        """rediss:// verified against the test CA: 20k ticks over 400 symbols
        arrive exact, read back over TLS."""
        r = self.start_tls_redis()
        self.assertTrue(r.url.startswith("rediss://127.0.0.1:"))
        m, port = self.start_fed(r, ["--cacert", self.certs.ca_crt])
        expected = self.feed(port, "TLSA", "tls1", symbols=400, ticks=20000, seed=11)
        self.assertEqual(len(expected), 400)
        c = self.client(r)  # a TLS client, verifying the server
        wait_keys(c, expected, mdcache=m)
        names = [l for l in c.cmd("CLIENT", "LIST").splitlines() if "name=mdcache-w" in l]
        self.assertTrue(names, "no mdcache-w* connection in CLIENT LIST")
        fin = self.assert_clean_exit(m)
        self.assertEqual(fin["ticks_in"], 20000, fin)
        self.assertEqual(fin.get("handshake_failures", 0), 0, fin)

    def test_wrong_ca_exits_2(self):
        r = self.start_tls_redis()
        err = self.start_fails(r.url, ["--cacert", self.certs.wrong_ca_crt])
        self.assert_tls_error(err, "certificate verify failed")

    def test_expired_certificate_exits_2(self):
        r = self.start_tls_redis(tls_cert=self.certs.expired_crt,
                                 tls_key=self.certs.expired_key)
        err = self.start_fails(r.url, ["--cacert", self.certs.ca_crt])
        self.assert_tls_error(err, "certificate has expired")

    def test_tls_to_plain_port_exits_2(self):
        """rediss:// at a plain-text port: the server never answers the
        ClientHello (it waits for an inline command's end of line); the
        start-up check tells that apart from a dead server with a plain PING."""
        r = self.start_redis()
        url = "rediss://127.0.0.1:%d/0" % r.port
        err = self.start_fails(url, ["--insecure"])
        self.assert_tls_error(err, "does not speak TLS")

    def test_plain_to_tls_port_hints(self):
        """redis:// at a TLS-only port is reset by the server; mdcache starts
        (a reset may be transient) but says what is likely wrong."""
        r = self.start_tls_redis()
        m = self.start_mdcache(r, ["tcp://127.0.0.1:%d?format=jsonl" % free_port()],
                               redis_url="redis://127.0.0.1:%d/0" % r.port, cpus="0")
        self.assertIn("not reachable at start-up", m.log())
        self.assertIn("use rediss://", m.log())

    def test_sni_name_checked(self):
        """--sni is the name verified: a name the certificate lacks fails, one it
        has (localhost, while the URL says 127.0.0.1) works."""
        r = self.start_tls_redis()
        err = self.start_fails(r.url, ["--cacert", self.certs.ca_crt, "--sni", "wrong.example"])
        self.assert_tls_error(err, "hostname mismatch")

        m, port = self.start_fed(r, ["--cacert", self.certs.ca_crt, "--sni", "localhost"])
        expected = self.feed(port, "SNI", "sni", symbols=200, ticks=4000, seed=12)
        wait_keys(self.client(r), expected, mdcache=m)
        self.assert_clean_exit(m)

    def test_insecure_skips_verification(self):
        r = self.start_tls_redis()
        m, port = self.start_fed(r, ["--cacert", self.certs.wrong_ca_crt, "--insecure"])
        self.assertIn("TLS peer verification is OFF", m.log())
        expected = self.feed(port, "INS", "ins", symbols=200, ticks=4000, seed=13)
        wait_keys(self.client(r), expected, mdcache=m)
        self.assert_clean_exit(m)

    def test_mutual_tls(self):
        """A server that requires client certificates: with --cert/--key it
        converges; without, start-up fails with a TLS error."""
        r = self.start_tls_redis(tls_auth_clients="yes")
        err = self.start_fails(r.url, ["--cacert", self.certs.ca_crt])
        self.assert_tls_error(err)

        m, port = self.start_fed(r, ["--cacert", self.certs.ca_crt,
                                     "--cert", self.certs.client_crt,
                                     "--key", self.certs.client_key])
        expected = self.feed(port, "MTLS", "mtls", symbols=200, ticks=4000, seed=14)
        wait_keys(self.client(r), expected, mdcache=m)
        self.assert_clean_exit(m)

    def test_config_file_form(self):
        """The same options as [redis] keys of the INI file."""
        r = self.start_tls_redis(tls_auth_clients="yes")
        ini = LONG_LIVENESS_INI + ("[redis]\nurl = %s\ncacert = %s\nsni = localhost\n"
                                   "cert = %s\nkey = %s\n"
                                   % (r.url, self.certs.ca_crt, self.certs.client_crt,
                                      self.certs.client_key))
        port = free_port()
        m = self.start_mdcache(None, ["tcp://127.0.0.1:%d?format=jsonl" % port], ini=ini)
        expected = self.feed(port, "INI", "ini", symbols=200, ticks=4000, seed=15)
        wait_keys(self.client(r), expected, mdcache=m)
        self.assert_clean_exit(m)

        # --check-config prints them back and they load again.
        rc, out, err = run_mdcache_once(["-c", m.ini_path, "--listen",
                                         "tcp://127.0.0.1:%d" % port, "--check-config"])
        self.assertEqual(rc, 0, err)
        self.assertIn(self.certs.ca_crt, out)
        self.assertIn("localhost", out)

    def test_acl_user_over_tls(self):
        """AUTH as an ACL user and SELECT over TLS: rediss://user:pass@host/db."""
        r = self.start_tls_redis()
        c = self.client(r)
        c.cmd("ACL", "SETUSER", "mdc", "on", ">tls-pw-9", "~price:*", "+setex", "+set", "+ping",
              "+select", "+client|setname")
        m, port = self.start_fed(r, ["--cacert", self.certs.ca_crt],
                                 redis_url="rediss://mdc:tls-pw-9@127.0.0.1:%d/2" % r.port)
        expected = self.feed(port, "TACL", "tacl", symbols=200, ticks=4000, seed=18)
        wait_keys(self.client(r, db=2), expected, mdcache=m)
        self.assertEqual(c.cmd("DBSIZE"), 0, "keys landed in db 0")
        self.assert_clean_exit(m)
        self.assertNotIn("tls-pw-9", m.log())

    def test_tls_option_needs_rediss_url(self):
        listen = "tcp://127.0.0.1:%d?format=jsonl" % free_port()
        for opt in (["--cacert", self.certs.ca_crt], ["--insecure"], ["--sni", "localhost"],
                    ["--cert", self.certs.client_crt, "--key", self.certs.client_key]):
            rc, _out, err = run_mdcache_once(["--redis", "redis://127.0.0.1:%d/0" % free_port(),
                                              "--listen", listen] + opt, timeout=20)
            self.assertEqual(rc, 2, "%s with redis://: exit %s, want 2; stderr %r"
                             % (opt, rc, err))

    def test_unreadable_or_mismatched_files_exit_2(self):
        """A missing CA/cert/key file or a key that does not match the
        certificate: exit 2, one line starting 'mdcache: ' that names the option."""
        r = self.start_tls_redis()
        missing = os.path.join(self.tmpdir(), "missing.pem")
        cases = [(["--cacert", missing], "cacert"),
                 (["--cacert", self.certs.ca_crt, "--cert", missing,
                   "--key", self.certs.client_key], "cert"),
                 (["--cacert", self.certs.ca_crt, "--cert", self.certs.client_crt,
                   "--key", missing], "key"),
                 (["--cacert", self.certs.ca_crt, "--cert", self.certs.client_crt,
                   "--key", self.certs.server_key], "key")]
        for args, opt in cases:
            err = self.start_fails(r.url, args)
            lines = [l for l in err.splitlines() if l.startswith("mdcache: ")]
            self.assertEqual(len(lines), 1, "%s: want one 'mdcache: ' line, got:\n%s"
                             % (args, err))
            self.assertIn(opt, lines[0], "%s: the line should name %r" % (args, opt))

    def test_kill_and_restart_reconnects_over_tls(self):
        """kill -9 of a TLS redis-server mid-stream; ticks keep coming; a new,
        empty TLS server on the same port gets every key back."""
        r = self.start_tls_redis()
        m, port = self.start_fed(r, ["--cacert", self.certs.ca_crt])
        before = self.feed(port, "KA", "first", symbols=400, ticks=10000, seed=16)
        c = self.client(r)
        wait_keys(c, before, mdcache=m)
        c.close()

        r.proc.send_signal(signal.SIGKILL)
        r.proc.wait()
        during = self.feed(port, "KB", "second", symbols=400, ticks=10000, seed=17)
        m.wait_stats(lambda s: s.get("ticks_in", 0) >= 20000, 60)
        self.assertTrue(m.alive(), m.tail())

        r.restart()
        c = self.client(r)
        expected = dict(before)
        expected.update(during)
        wait_keys(c, expected, mdcache=m)
        m.wait_stats(lambda s: s.get("reconnects", 0) >= 1, 30)
        fin = self.assert_clean_exit(m)
        self.assertEqual(fin["ticks_in"], 20000, fin)
