#!/usr/bin/env python3
"""Rootless containers (issue 17), dockyard vs rootless podman as the same ordinary user, side by side in one run.

    bench/bench_rootless.py [--runs N] [--user NAME]

``run --rm busybox true`` as the user (default network: slirp4netns on both sides; then ``--network none``).
Goal: dockyard <= 0.5x rootless podman. Each side has the user's own store (dockyard's ~/.local/share/dockyard,
podman's ~/.local/share/containers) with busybox imported from cache/busybox.tar as the user.

The user is made as the rootless tests make theirs (tests/cli/test_rootless.py: useradd, a subordinate id range
in /etc/subuid and /etc/subgid) and removed at the end; ``--user NAME`` reuses an existing user with subordinate
ids instead (only its stores are removed). Commands run as the user through ``setpriv`` (no PAM session, so the
same small cost on both sides) with XDG_RUNTIME_DIR a private 0700 directory. /dev/net/tun is made 0666 for the
run (slirp4netns opens it as the user) and put back as found. ``DYTRACE=FILE`` (a file the user can write) is
passed on to dockyard, which appends its timing marks there (src/dockyard/trace.py): where the time goes.

Prints medians and ratios dockyard/podman. Not a test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import stat
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOCKYARD, REPO, report, timed  # noqa: E402

sys.path.insert(0, str(REPO))


class Side:
    """Commands as the user: setpriv to its uid/gid/groups with a clean environment."""

    def __init__(self, name: str, made: object | None) -> None:
        pw = pwd.getpwnam(name)
        self.name, self.uid, self.gid, self.home = name, pw.pw_uid, pw.pw_gid, Path(pw.pw_dir)
        self.made = made  # the tests' User when this bench made the user (removed at the end), else None
        self.xdg = Path(f"/run/user/{self.uid}")  # where logind puts it (dockyard's socket paths fit under it)
        self.made_xdg = not self.xdg.exists()
        self.xdg.mkdir(parents=True, exist_ok=True)
        os.chown(self.xdg, self.uid, self.gid)
        os.chmod(self.xdg, 0o700)
        self.conf = self.home / ".dyb-containers.conf"
        import resource  # podman's default ulimits are above this host's hard limits (bench/common.py Podman)

        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
        self.conf.write_text(f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", '
                             f'"nproc={nproc}:{nproc}"]\n[engine]\ncgroup_manager = "cgroupfs"\n'
                             'events_logger = "file"\n')
        os.chown(self.conf, self.uid, self.gid)
        self.env = {"HOME": str(self.home), "USER": name, "LOGNAME": name, "XDG_RUNTIME_DIR": str(self.xdg),
                    "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "CONTAINERS_CONF": str(self.conf)}
        if os.environ.get("DYTRACE"):
            self.env["DYTRACE"] = os.environ["DYTRACE"]
        self.podman_driver: list[str] = []

    def cmd(self, *args: str) -> list[str]:
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--", *args]

    def dy(self, *args: str) -> list[str]:
        return self.cmd(DOCKYARD, *args)

    def pm(self, *args: str) -> list[str]:
        return self.cmd("podman", *self.podman_driver, *args)

    def run(self, argv: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(argv, capture_output=True, text=True, env=self.env, cwd="/")

    def must(self, argv: list[str]) -> str:
        p = self.run(argv)
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {p.stderr.strip()}")
        return p.stdout

    def load_busybox(self) -> None:
        tar = self.home / "busybox.tar"
        shutil.copyfile(REPO / "cache" / "busybox.tar", tar)
        os.chown(tar, self.uid, self.gid)
        self.must(self.dy("import", "--change", 'CMD ["sh"]', str(tar), "busybox:latest"))
        if self.run(self.pm("images")).returncode != 0:
            self.podman_driver = ["--storage-driver", "vfs"]
        self.must(self.pm("import", "--change", 'CMD ["sh"]', str(tar), "localhost/busybox:latest"))
        tar.unlink()

    def clean(self) -> None:
        """The user's stores: dockyard's containers and images, podman's (podman system reset), the run dirs."""
        ids = self.run(self.dy("ps", "-aq")).stdout.split()
        if ids:
            self.run(self.dy("rm", "-f", *ids))
        self.run(self.pm("system", "reset", "-f"))
        if self.made is not None:
            self.made.remove()  # kills its processes by pid, userdel -r, its subuid/subgid lines
        else:
            for pid in _pids_of(self.uid):  # the pause processes both sides leave behind
                try:
                    if Path(f"/proc/{pid}/comm").read_text().strip() in ("catatonit", "podman pause", "pause",
                                                                         "dockyard-pause"):
                        os.kill(pid, 9)
                except (FileNotFoundError, ProcessLookupError):
                    pass
            shutil.rmtree(self.home / ".local/share/dockyard", ignore_errors=True)
            shutil.rmtree(self.home / ".local/share/containers", ignore_errors=True)
            shutil.rmtree(f"/tmp/dockyard-{self.uid}", ignore_errors=True)
            self.conf.unlink(missing_ok=True)
        if self.made_xdg:
            shutil.rmtree(self.xdg, ignore_errors=True)


def _pids_of(uid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.stat(f"/proc/{d}").st_uid == uid:
                    out.append(int(d))
            except FileNotFoundError:
                pass
    return out


def alternate(runs: int, side: Side, dy_cmd: list[str], pm_cmd: list[str]) -> tuple[list[float], list[float]]:
    dy: list[float] = []
    pm: list[float] = []
    for _ in range(2):  # warm: podman's pause process and storage, dockyard's user namespace holder
        timed(dy_cmd, side.env)
        timed(pm_cmd, side.env)
    for _ in range(runs):
        dy.append(timed(dy_cmd, side.env))
        pm.append(timed(pm_cmd, side.env))
    return dy, pm


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--user", default="", help="an existing user with subordinate ids (else one is made)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (to make the user and run as it)")
    if shutil.which("podman") is None:
        sys.exit("podman is not installed: nothing to compare with")
    made = None
    if a.user:
        name = a.user
    else:
        from tests.cli.test_rootless import _new_user  # the rootless tests' user: useradd + its own id range

        made = _new_user()
        name = made.name
    tun_mode = stat.S_IMODE(os.stat("/dev/net/tun").st_mode)
    os.chmod("/dev/net/tun", 0o666)
    side = Side(name, made)
    rows = []
    try:
        side.load_busybox()
        for net in ([], ["--network", "none"]):
            dy, pm = alternate(a.runs, side, side.dy("run", "--rm", *net, "busybox", "true"),
                               side.pm("run", "--rm", *net, "busybox", "true"))
            rows.append((" ".join(["rootless run --rm", *net, "busybox true"]), dy, pm, 0.5))
        pm_driver = side.podman_driver or ["(default storage driver)"]
    finally:
        side.clean()
        os.chmod("/dev/net/tun", tun_mode)
    report(rows)
    print(f"\nuser {name} (uid {side.uid}); podman {' '.join(pm_driver)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
