"""make install / uninstall into a DESTDIR: what lands where, that the
installed daemon runs and accepts the installed configuration, that the
systemd unit names the installed paths and does not restart into a
configuration error, that an operator's edited configuration survives a
reinstall and an uninstall."""

import os
import subprocess

from harness import MDCACHE_BIN, ROOT, MdTestCase

BUILD = os.path.dirname(MDCACHE_BIN)


def make(*args):
    p = subprocess.run(["make", "--no-print-directory", "-C", ROOT, "BUILD=" + BUILD] + list(args),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise AssertionError("make %s failed:\n%s%s" % (" ".join(args), p.stdout[-3000:],
                                                       p.stderr[-3000:]))
    return p.stdout


def unit_lines(path):
    with open(path) as f:
        return dict(l.strip().split("=", 1) for l in f
                    if "=" in l and not l.lstrip().startswith("#"))


class InstallTest(MdTestCase):
    def installed(self, dest, *rel):
        return os.path.join(dest, *[r.lstrip("/") for r in rel])

    def test_install_reinstall_uninstall(self):
        dest = os.path.join(self.tmpdir(), "root")
        make("install", "DESTDIR=" + dest, "PREFIX=/usr")
        bins = ["mdcache", "mdcache-inspect", "mdcache-replay"]
        for b in bins:
            p = self.installed(dest, "/usr/bin", b)
            self.assertTrue(os.access(p, os.X_OK), p)
        # The test generator is not a product tool.
        self.assertFalse(os.path.exists(self.installed(dest, "/usr/bin/mdfeed")))
        ini = self.installed(dest, "/etc/mdcache/mdcache.ini")
        out = subprocess.run([self.installed(dest, "/usr/bin/mdcache"), "-c", ini,
                              "--check-config"], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("configuration OK", out.stderr)
        for b in bins[1:]:
            h = subprocess.run([self.installed(dest, "/usr/bin", b), "--help"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(h.returncode, 0, h.stderr)
            self.assertIn("usage", (h.stdout + h.stderr).lower())

        unit = unit_lines(self.installed(dest, "/usr/lib/systemd/system/mdcache.service"))
        self.assertEqual(unit["ExecStart"], "/usr/bin/mdcache -c /etc/mdcache/mdcache.ini")
        self.assertEqual(unit["RestartPreventExitStatus"], "2")
        self.assertEqual(unit["Restart"], "on-failure")
        self.assertEqual(unit["KillSignal"], "SIGTERM")
        self.assertNotIn("@", "".join(unit.values()))
        for doc in ("README.md", "docs/cluster.md", "docs/tools.md", "docs/mdcache.example.ini"):
            self.assertTrue(os.path.isfile(self.installed(dest, "/usr/share/doc/mdcache", doc)),
                            doc)

        # The operator edits the configuration; a reinstall keeps it and
        # leaves the new example beside it.
        with open(ini, "a") as f:
            f.write("\n; edited by the operator\n")
        with open(ini) as f:
            edited = f.read()
        out = make("install", "DESTDIR=" + dest, "PREFIX=/usr")
        self.assertIn("keeping", out)
        with open(ini) as f:
            self.assertEqual(f.read(), edited)
        self.assertTrue(os.path.isfile(ini + ".example"))

        make("uninstall", "DESTDIR=" + dest, "PREFIX=/usr")
        for b in bins:
            self.assertFalse(os.path.exists(self.installed(dest, "/usr/bin", b)), b)
        self.assertFalse(os.path.exists(
            self.installed(dest, "/usr/lib/systemd/system/mdcache.service")))
        self.assertFalse(os.path.exists(self.installed(dest, "/usr/share/doc/mdcache")))
        with open(ini) as f:
            self.assertEqual(f.read(), edited)

    def test_prefix_and_dirs(self):
        dest = os.path.join(self.tmpdir(), "root")
        make("install", "DESTDIR=" + dest, "PREFIX=/opt/md", "SYSCONFDIR=/opt/md/etc")
        self.assertTrue(os.access(self.installed(dest, "/opt/md/bin/mdcache"), os.X_OK))
        self.assertTrue(os.path.isfile(self.installed(dest, "/opt/md/etc/mdcache/mdcache.ini")))
        unit = unit_lines(self.installed(dest, "/opt/md/lib/systemd/system/mdcache.service"))
        self.assertEqual(unit["ExecStart"], "/opt/md/bin/mdcache -c /opt/md/etc/mdcache/mdcache.ini")
        self.assertEqual(unit["EnvironmentFile"], "-/opt/md/etc/default/mdcache")
