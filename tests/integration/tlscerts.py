"""Test certificates, made at test time with the openssl CLI (EC P-256 keys,
fast) in a temporary directory, once per test process.

    certs = tlscerts.get()
    certs.ca_crt, certs.server_crt, certs.server_key,       # good CA, server for
                                                           # DNS:localhost + IP:127.0.0.1
    certs.client_crt, certs.client_key,                    # client cert, good CA
    certs.wrong_ca_crt,                                    # an unrelated CA
    certs.expired_crt, certs.expired_key                   # server cert by the good CA,
                                                           # valid 2020-01-01..2020-01-02

openssl 3.0's `x509 -req` cannot back-date a certificate, so the expired one
is issued with `openssl ca -startdate/-enddate` and a minimal CA config.
Standard library only.
"""

import atexit
import os
import shutil
import subprocess
import tempfile
import threading

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

_lock = threading.Lock()
_certs = None


class Certs:
    pass


def _run(args, cwd):
    p = subprocess.run([OPENSSL] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed (%d):\n%s%s" % (" ".join(args), p.returncode,
                                                            p.stdout, p.stderr))
    return p.stdout


def _key(d, name):
    path = os.path.join(d, name + ".key")
    _run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
          "-out", path], d)
    os.chmod(path, 0o600)
    return path


def _ca(d, name, cn):
    key = _key(d, name)
    crt = os.path.join(d, name + ".crt")
    _run(["req", "-x509", "-new", "-key", key, "-sha256", "-days", "3650", "-subj",
          "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", crt], d)
    return crt, key


def _leaf(d, name, cn, ca_crt, ca_key, ext):
    """A leaf certificate signed by ca_crt/ca_key, valid for ten years from now."""
    key = _key(d, name)
    csr = os.path.join(d, name + ".csr")
    crt = os.path.join(d, name + ".crt")
    extfile = os.path.join(d, name + ".ext")
    with open(extfile, "w") as f:
        f.write(ext)
    _run(["req", "-new", "-key", key, "-subj", "/CN=" + cn, "-out", csr], d)
    _run(["x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
          "-days", "3650", "-sha256", "-extfile", extfile, "-out", crt], d)
    return crt, key


SERVER_EXT = ("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
              "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
CLIENT_EXT = ("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
              "extendedKeyUsage=clientAuth\n")


def _expired(d, ca_crt, ca_key):
    """A server certificate (same names as the good one) that expired in 2020."""
    cadir = os.path.join(d, "ca-db")
    os.mkdir(cadir)
    open(os.path.join(cadir, "index.txt"), "w").close()
    with open(os.path.join(cadir, "serial"), "w") as f:
        f.write("1000\n")
    conf = os.path.join(cadir, "ca.cnf")
    with open(conf, "w") as f:
        f.write("""[ ca ]
default_ca = testca
[ testca ]
dir = %(dir)s
database = $dir/index.txt
serial = $dir/serial
new_certs_dir = $dir
certificate = %(crt)s
private_key = %(key)s
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
x509_extensions = server_ext
[ anything ]
commonName = supplied
[ server_ext ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
""" % {"dir": cadir, "crt": ca_crt, "key": ca_key})
    key = _key(d, "expired")
    csr = os.path.join(d, "expired.csr")
    crt = os.path.join(d, "expired.crt")
    _run(["req", "-new", "-key", key, "-subj", "/CN=localhost", "-out", csr], d)
    _run(["ca", "-batch", "-config", conf, "-notext", "-startdate", "20200101000000Z",
          "-enddate", "20200102000000Z", "-in", csr, "-out", crt], d)
    return crt, key


def _make():
    d = tempfile.mkdtemp(prefix="mdtest-certs-")
    atexit.register(shutil.rmtree, d, True)
    c = Certs()
    c.dir = d
    c.ca_crt, c.ca_key = _ca(d, "ca", "mdcache test CA")
    c.wrong_ca_crt, c.wrong_ca_key = _ca(d, "wrong-ca", "mdcache unrelated CA")
    c.server_crt, c.server_key = _leaf(d, "server", "localhost", c.ca_crt, c.ca_key,
                                       SERVER_EXT)
    c.client_crt, c.client_key = _leaf(d, "client", "mdcache test client", c.ca_crt, c.ca_key,
                                       CLIENT_EXT)
    c.expired_crt, c.expired_key = _expired(d, c.ca_crt, c.ca_key)
    return c


def get():
    """The test certificates, made on first use (about a second) and cached."""
    global _certs
    with _lock:
        if _certs is None:
            _certs = _make()
        return _certs


if __name__ == "__main__":
    c = get()
    for k in sorted(vars(c)):
        print(k, getattr(c, k))
    print(_run(["x509", "-in", c.expired_crt, "-noout", "-dates", "-ext", "subjectAltName"],
               c.dir))
    print(_run(["verify", "-CAfile", c.ca_crt, c.server_crt, c.client_crt], c.dir))
