#!/usr/bin/env bash
# Installs the Debian packages mdcache needs to build, test and run, and only
# those that are missing: a machine that has everything is left alone (no
# `apt-get update`, no sudo prompt) and gets one line of output.
set -u

PKGS=(gcc make pkg-config clang libclang-rt-14-dev
      libhiredis-dev liburing-dev libssl-dev libxxhash-dev libcmocka-dev libinih-dev
      redis-server redis-tools openssl python3 valgrind python3-redis)
# The Node baseline of the bench needs node and npm; any install will do
# (this machine's may come from elsewhere than Debian), Debian's if none.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    PKGS+=(nodejs npm)
fi

missing=()
for p in "${PKGS[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ "$status" == *" installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps: all ${#PKGS[@]} packages present"
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: apt-get not found; install by hand: ${missing[*]}" >&2
    exit 1
fi
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        echo "install-deps: not root and no password-less sudo; run as root: apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get update -q >/dev/null; then
    echo "install-deps: apt-get update failed" >&2
    exit 1
fi
# The redis-server package would start a system-wide instance on :6379; the
# tests and the demo run their own, so keep the packaged service from starting.
rc_d=/usr/sbin/policy-rc.d
made_rc_d=0
if [[ ! -e $rc_d ]] && [[ " ${missing[*]} " == *" redis-server "* ]]; then
    if printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$rc_d" >/dev/null 2>&1; then
        "${SUDO[@]}" chmod +x "$rc_d" && made_rc_d=1
    fi
fi
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
rc=$?
[[ $made_rc_d -eq 1 ]] && "${SUDO[@]}" rm -f "$rc_d"
if [[ $rc -ne 0 ]]; then
    echo "install-deps: apt-get install failed (exit $rc) for: ${missing[*]}" >&2
    exit 1
fi
echo "install-deps: done"
