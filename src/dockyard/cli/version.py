"""``version`` and ``info`` (``engine.system``)."""

from __future__ import annotations

from dockyard.cli.main import Context


def main(ctx: Context, argv: list[str]) -> int:
    if ctx.verb == "version":
        from dockyard import __version__
        from dockyard.engine.system import go_arch

        print(f"Client:\n Version:    {__version__}\n OS/Arch:    linux/{go_arch()}\n\n"
              f"Engine (daemonless):\n Version:    {__version__}\n Runtime:    dockyard (built-in), runc, crun\n"
              f" Root:       {ctx.root}")
        return 0
    from dockyard.engine.system import info

    i = info(ctx.store)
    print(f"Containers: {i.containers}\n Running: {i.containers_running}\n Paused: {i.containers_paused}\n"
          f" Stopped: {i.containers_stopped}\nImages: {i.images}\n"
          f"Server Version: {i.server_version}\nStorage Driver: {i.storage_driver}\n"
          + "".join(f" {k}: {v}\n" for k, v in i.driver_status) +
          f"Logging Driver: {i.logging_driver}\nCgroup Version: {i.cgroup_version}\n"
          f"Runtimes: {' '.join(i.runtimes)}\nDefault Runtime: {i.default_runtime}\n"
          f"Kernel Version: {i.kernel_version}\nOperating System: {i.operating_system}\n"
          f"Architecture: {i.architecture}\nCPUs: {i.cpus}\nDockyard Root Dir: {ctx.root}")
    if "name=rootless" in i.security_options:
        print("Security Options:\n rootless\n  user namespace: container root is this user, other ids its "
              "subordinate range\n  network: slirp4netns\n  cgroups: none (resource limits need cgroup v2 "
              "with delegation)" if i.cgroup_version == "1" else "Security Options:\n rootless")
    import sys

    sys.stdout.flush()
    for w in i.warnings:  # as Docker's info: warnings on stderr after the report
        sys.stderr.write(f"WARNING: {w}\n")
    return 0
