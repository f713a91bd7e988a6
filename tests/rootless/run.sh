#!/usr/bin/env bash
# Run the rootless tests (tests/integration/rootless) as an unprivileged user, from root.
#
# Why a script: rootless containers are only rootless when the engine really runs without root,
# so the tests must run under another uid. As root this script, idempotently:
#   1. creates the user (default nbdock-rootless; useradd only if missing), with a subordinate
#      uid/gid range in /etc/subuid and /etc/subgid so newuidmap maps `-u 1000` (usermod only if
#      the user has none);
#   2. gives it a private, writable state: NBDOCK_ROOT, XDG_RUNTIME_DIR and TMPDIR under one
#      fresh directory in /tmp, removed at the end (as root: the containers leave files owned by
#      subordinate ids there);
#   3. finds a Python the user may execute: the project's venv, or, when that venv's interpreter
#      sits where the user cannot reach (pyenv under /root, mode 700), a throwaway venv of a
#      system Python of the same version that loads the project venv's site-packages;
#   4. runs pytest on the rootless tests as that user, with a clean environment (CI passed on),
#      and exits with pytest's status.
# Extra arguments go to pytest.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${NBDOCK_VENV:-$REPO/.venv}
RUN_AS=${NBDOCK_ROOTLESS_USER:-nbdock-rootless}
SUBID_COUNT=65536

log() { printf '[rootless %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "$*"; exit 2; }

[ "$(id -u)" = 0 ] || die "run me as root: I create the unprivileged user the tests run as"
for tool in useradd usermod runuser newuidmap newgidmap; do
  command -v "$tool" >/dev/null || die "missing $tool (Debian packages passwd, util-linux, uidmap)"
done

ensure_user() {
  if ! id -u "$RUN_AS" >/dev/null 2>&1; then
    log "useradd $RUN_AS"
    useradd --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
      "$RUN_AS"
  fi
}

# The next free start after every range already in $1 (at least 100000, as login.defs says).
next_free_subid() {
  awk -F: 'BEGIN { end = 100000 } NF == 3 && $2 + $3 > end { end = $2 + $3 } END { print end }' \
    "$1" 2>/dev/null || echo 100000
}

ensure_subids() {
  local file=$1 flag=$2 uid
  uid=$(id -u "$RUN_AS")
  touch "$file"
  if grep -qE "^($RUN_AS|$uid):[0-9]+:[1-9][0-9]*$" "$file"; then
    return 0
  fi
  local start
  start=$(next_free_subid "$file")
  log "usermod $flag $start-$((start + SUBID_COUNT - 1)) $RUN_AS"
  usermod "$flag" "$start-$((start + SUBID_COUNT - 1))" "$RUN_AS"
}

# Prints the python the user should run, building a shim venv under $1 if needed.
user_python() {
  local work=$1
  if runuser -u "$RUN_AS" -- "$VENV/bin/python" -c 'import nbdock, pytest' >/dev/null 2>&1; then
    echo "$VENV/bin/python"
    return 0
  fi
  [ -x "$VENV/bin/python" ] || die "no venv at $VENV (run ./dev setup first)"
  local version site candidate
  version=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  for candidate in "$(command -v "python$version" || true)" "/usr/bin/python$version" \
                   "/usr/local/bin/python$version"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    runuser -u "$RUN_AS" -- "$candidate" -c 'pass' >/dev/null 2>&1 || continue
    log "venv interpreter unreachable for $RUN_AS; using $candidate with $site"
    runuser -u "$RUN_AS" -- "$candidate" -m venv --without-pip "$work/venv" >&2
    local shim_site
    shim_site=$(runuser -u "$RUN_AS" -- "$work/venv/bin/python" -c \
      'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    # An "import" line in a .pth runs at startup: it adds the project venv's site-packages
    # *as a site dir*, so its own .pth files (the editable nbdock install) are honoured.
    echo "import site; site.addsitedir('$site')" >"$shim_site/nbdock-project-venv.pth"
    runuser -u "$RUN_AS" -- "$work/venv/bin/python" -c 'import nbdock, pytest' >&2 \
      || die "the shim venv cannot import nbdock and pytest"
    echo "$work/venv/bin/python"
    return 0
  done
  die "no python$version that $RUN_AS may execute (the venv's is $(readlink -f "$VENV/bin/python"))"
}

ensure_user
ensure_subids /etc/subuid --add-subuids
ensure_subids /etc/subgid --add-subgids

WORK=$(mktemp -d /tmp/nbdock-rootless.XXXXXX)
cleanup() {
  umount "$WORK/run" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
chmod 755 "$WORK"
for sub in root run tmp home venv; do
  install -d -m 700 -o "$RUN_AS" -g "$(id -g "$RUN_AS")" "$WORK/$sub"
done
# XDG_RUNTIME_DIR as systemd makes it (/run/user/UID): a small nosuid,nodev tmpfs of the user's.
# Its flags are locked inside a user namespace, which the read-only volume test relies on.
mount -t tmpfs -o "nosuid,nodev,size=16m,mode=700,uid=$(id -u "$RUN_AS"),gid=$(id -g "$RUN_AS")" \
  nbdock-rootless-run "$WORK/run"
PYTHON=$(user_python "$WORK")

log "pytest tests/integration/rootless as $RUN_AS (uid $(id -u "$RUN_AS"))"
cd "$REPO"
set +e
runuser -u "$RUN_AS" -- env -i \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME="$WORK/home" USER="$RUN_AS" LOGNAME="$RUN_AS" LANG=C.UTF-8 \
  CI="${CI:-}" \
  NBDOCK_ROOT="$WORK/root" \
  XDG_RUNTIME_DIR="$WORK/run" \
  TMPDIR="$WORK/tmp" \
  NBDOCK_CGROUP_PARENT="nbdock-rootless-$(id -u "$RUN_AS")" \
  PYTHONDONTWRITEBYTECODE=1 \
  "$PYTHON" -m pytest -q -p no:cacheprovider tests/integration/rootless \
    --ignore=tests/integration/rootless/test_run_as_user.py "$@"
status=$?
set -e
exit "$status"
