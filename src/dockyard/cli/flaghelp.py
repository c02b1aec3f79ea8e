"""Every flag's one-line description, as the Docker CLI words it, and the ``Options:`` table of ``--help``.

Data, not code: ``HELP[(verb, "--flag")]`` is a verb's own wording, ``HELP["--flag"]`` the wording shared by the
verbs that do not have their own. Both help printers (``cli.flags`` for run/create/exec/build, ``cli.args`` for
the argparse verbs) take descriptions from here when a flag does not carry its own, and print each flag as
Docker does: ``  -e, --env list    Set environment variables`` with its default when it is not empty.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

HELP: dict[Any, str] = {
    # run / create (docker/cli cli/command/container/opts.go, run.go, create.go)
    "--add-host": "Add a custom host-to-IP mapping (host:ip)",
    ("run", "--attach"): "Attach to STDIN, STDOUT or STDERR",
    ("create", "--attach"): "Attach to STDIN, STDOUT or STDERR",
    "--cap-add": "Add Linux capabilities",
    "--cap-drop": "Drop Linux capabilities",
    "--cidfile": "Write the container ID to the file",
    "--cpu-shares": "CPU shares (relative weight)",
    "--cpu-period": "Limit CPU CFS (Completely Fair Scheduler) period",
    "--cpu-quota": "Limit CPU CFS (Completely Fair Scheduler) quota",
    "--cpus": "Number of CPUs",
    "--cpuset-cpus": "CPUs in which to allow execution (0-3, 0,1)",
    "--cpuset-mems": "MEMs in which to allow execution (0-3, 0,1)",
    "--detach": "Run container in background and print container ID",
    ("exec", "--detach"): "Detached mode: run command in the background",
    "--detach-keys": "Override the key sequence for detaching a container",
    "--dns": "Set custom DNS servers",
    "--domainname": "Container NIS domain name",
    "--entrypoint": "Overwrite the default ENTRYPOINT of the image",
    "--env": "Set environment variables",
    "--env-file": "Read in a file of environment variables",
    "--hostname": "Container host name",
    "--init": "Run an init inside the container that forwards signals and reaps processes",
    "--interactive": "Keep STDIN open even if not attached",
    "--ip": "IPv4 address (e.g., 172.30.100.104)",
    ("run", "--label"): "Set meta data on a container",
    ("create", "--label"): "Set meta data on a container",
    "--label-file": "Read in a line delimited file of labels",
    "--mac-address": "Container MAC address (e.g., 92:d0:c6:0a:29:33)",
    "--memory": "Memory limit",
    "--memory-reservation": "Memory soft limit",
    "--memory-swap": "Swap limit equal to memory plus swap: '-1' to enable unlimited swap",
    "--mount": "Attach a filesystem mount to the container",
    "--name": "Assign a name to the container",
    ("run", "--network"): "Connect a container to a network",
    ("create", "--network"): "Connect a container to a network",
    "--network-alias": "Add network-scoped alias for the container",
    "--oom-kill-disable": "Disable OOM Killer",
    "--pids-limit": "Tune container pids limit (set -1 for unlimited)",
    "--platform": "Set platform if server is multi-platform capable",
    "--privileged": "Give extended privileges to this container",
    ("exec", "--privileged"): "Give extended privileges to the command",
    "--publish": "Publish a container's port(s) to the host",
    "--publish-all": "Publish all exposed ports to random ports",
    ("run", "--pull"): 'Pull image before running ("always", "missing", "never")',
    ("create", "--pull"): 'Pull image before creating ("always", "missing", "never")',
    ("run", "--quiet"): "Suppress the pull output",
    ("create", "--quiet"): "Suppress the pull output",
    "--read-only": "Mount the container's root filesystem as read only",
    "--restart": "Restart policy to apply when a container exits",
    ("run", "--rm"): "Automatically remove the container and its associated anonymous volumes when it exits",
    ("create", "--rm"): "Automatically remove the container and its associated anonymous volumes when it exits",
    "--runtime": "Runtime to use for this container",
    "--security-opt": "Security Options",
    "--shm-size": "Size of /dev/shm",
    "--sig-proxy": "Proxy received signals to the process",
    ("stop", "--signal"): "Signal to send to the container",
    ("restart", "--signal"): "Signal to send to the container",
    ("kill", "--signal"): "Signal to send to the container",
    "--stop-signal": "Signal to stop the container",
    "--stop-timeout": "Timeout (in seconds) to stop a container",
    "--sysctl": "Sysctl options",
    "--tmpfs": "Mount a tmpfs directory",
    "--tty": "Allocate a pseudo-TTY",
    "--ulimit": "Ulimit options",
    "--userns": "User namespace to use (host, or keep-id when rootless)",
    "--user": "Username or UID (format: <name|uid>[:<group|gid>])",
    "--volume": "Bind mount a volume",
    "--volumes-from": "Mount volumes from the specified container(s)",
    "--workdir": "Working directory inside the container",
    "--health-cmd": "Command to run to check health",
    "--health-interval": "Time between running the check (ms|s|m|h) (default 0s)",
    "--health-retries": "Consecutive failures needed to report unhealthy",
    "--health-start-period": "Start period for the container to initialize before starting health-retries "
                             "countdown (ms|s|m|h) (default 0s)",
    "--health-timeout": "Maximum time to allow one check to run (ms|s|m|h) (default 0s)",
    "--health-on-failure": "Action to take once the container turns unhealthy (none, kill, restart, stop)",
    "--no-healthcheck": "Disable any container-specified HEALTHCHECK",
    "--help": "Print usage",
    # build (docker/cli cli/command/image/build.go)
    ("build", "--tag"): 'Name and optionally a tag in the "name:tag" format',
    ("build", "--file"): "Name of the Dockerfile (Default is \"PATH/Dockerfile\")",
    "--build-arg": "Set build-time variables",
    "--target": "Set the target build stage to build",
    "--no-cache": "Do not use cache when building the image",
    ("build", "--pull"): "Always attempt to pull a newer version of the image",
    ("build", "--quiet"): "Suppress the build output and print image ID on success",
    "--iidfile": "Write the image ID to the file",
    ("build", "--label"): "Set metadata for an image",
    ("build", "--network"): "Set the networking mode for the RUN instructions during build",
    "--progress": 'Set type of progress output ("auto", "plain", "tty", "quiet"). Use plain to show container '
                  "output",
    ("build", "--rm"): "Remove intermediate containers after a successful build",
    "--force-rm": "Always remove intermediate containers",
    # ps, images, logs, inspect, ... (docker/cli cli/command/*)
    ("ps", "--all"): "Show all containers (default shows just running)",
    ("ps", "--quiet"): "Only display container IDs",
    ("ps", "--latest"): "Show the latest created container (includes all states)",
    ("ps", "--last"): "Show n last created containers (includes all states)",
    ("ps", "--size"): "Display total file sizes",
    ("ps", "--filter"): "Filter output based on conditions provided",
    "--format": "Format output using a custom template",
    ("inspect", "--format"): "Format output using a custom template",
    "--no-trunc": "Don't truncate output",
    ("images", "--all"): "Show all images (default hides intermediate images)",
    ("images", "--quiet"): "Only show image IDs",
    ("images", "--digests"): "Show digests",
    ("images", "--filter"): "Filter output based on conditions provided",
    ("images", "--tree"): "List multi-platform images as a tree (EXPERIMENTAL)",
    ("history", "--quiet"): "Only show image IDs",
    ("history", "--human"): "Print sizes and dates in human readable format",
    "--filter": "Provide filter values",
    ("logs", "--follow"): "Follow log output",
    ("logs", "--timestamps"): "Show timestamps",
    ("logs", "--tail"): 'Number of lines to show from the end of the logs',
    ("logs", "--details"): "Show extra details provided to logs",
    "--since": "Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)",
    "--until": "Show logs before a timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 "
               "minutes)",
    ("inspect", "--size"): "Display total file sizes if the type is container",
    "--type": "Only inspect objects of the given type",
    ("start", "--attach"): "Attach STDOUT/STDERR and forward signals",
    ("start", "--interactive"): "Attach container's STDIN",
    "--time": "Seconds to wait before killing the container",
    ("rm", "--force"): "Force the removal of a running container (uses SIGKILL)",
    ("rm", "--volumes"): "Remove anonymous volumes associated with the container",
    ("rm", "--link"): "Remove the specified link",
    ("rmi", "--force"): "Force removal of the image",
    ("rmi", "--no-prune"): "Do not delete untagged parents",
    "--force": "Do not prompt for confirmation",
    ("top", "--all"): "Show all containers (default shows just running)",
    ("stats", "--all"): "Show all containers (default shows just running)",
    "--no-stream": "Disable streaming stats and only pull the first result",
    "--no-stdin": "Do not attach STDIN",
    ("cp", "--archive"): "Archive mode (copy all uid/gid information)",
    "--follow-link": "Always follow symbol link in SRC_PATH",
    ("cp", "--quiet"): "Suppress progress output during copy. Progress output is automatically suppressed if no "
                       "terminal is attached",
    "--author": 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")',
    "--change": "Apply Dockerfile instruction to the created image",
    ("commit", "--message"): "Commit message",
    "--pause": "Pause container during commit",
    "--output": "Write to a file, instead of STDOUT",
    ("import", "--message"): "Set commit message for imported image",
    ("load", "--input"): "Read from tar archive file, instead of STDIN",
    ("load", "--quiet"): "Suppress the load output",
    "--platform-load": "Load only the given platform",
    # compose (docker/compose cmd/compose/compose.go)
    ("compose", "--file"): "Compose configuration files",
    ("compose", "--profile"): "Specify a profile to enable",
    ("compose", "--project-directory"): "Specify an alternate working directory (default: the path of the, first "
                                        "specified, Compose file)",
    ("compose", "--project-name"): "Project name",
    # volume / network
    ("volume-create", "--driver"): "Specify volume driver name",
    ("volume-create", "--opt"): "Set driver specific options",
    ("volume-create", "--label"): "Set metadata for a volume",
    ("volume-create", "--name"): "Specify volume name",
    ("volume-ls", "--quiet"): "Only display volume names",
    ("volume-rm", "--force"): "Force the removal of one or more volumes",
    ("volume-prune", "--all"): "Remove all unused volumes, not just anonymous ones",
    ("network-create", "--driver"): "Driver to manage the Network",
    "--subnet": "Subnet in CIDR format that represents a network segment",
    "--gateway": "IPv4 or IPv6 Gateway for the master subnet",
    "--ip-range": "Allocate container ip from a sub-range",
    "--internal": "Restrict external access to the network",
    "--attachable": "Enable manual container attachment",
    ("network-create", "--label"): "Set metadata on a network",
    ("network-create", "--opt"): "Set driver specific options",
    "--ipv6": "Enable or disable IPv6 networking",
    "--ip6": "IPv6 address (e.g., 2001:db8::33)",
    "--alias": "Add network-scoped alias for the container",
    ("network-connect", "--link"): "Add link to another container",
    ("network-ls", "--quiet"): "Only display network IDs",
    ("network-disconnect", "--force"): "Force the container to disconnect from a network",
    "--verbose": "Verbose output for diagnostics",
    "--all": "Show all",
    "--quiet": "Only display IDs",
    "--label": "Set metadata",
    "--signal": "Signal to send",
    "--driver": "Driver to use",
    "--opt": "Set driver specific options",
    "--link": "Add link to another container",
    "--message": "Set the message",
    "--follow": "Follow output",
    "--timestamps": "Show timestamps",
    "--tail": "Number of lines to show from the end",
    "--size": "Display total file sizes",
    "--latest": "Show the latest created container",
    "--last": "Show n last created containers",
    "--human": "Print sizes and dates in human readable format",
    "--details": "Show extra details",
    "--attach": "Attach STDOUT/STDERR",
    "--archive": "Archive mode",
    "--digests": "Show digests",
    "--no-prune": "Do not delete untagged parents",
    "--input": "Read from tar archive file, instead of STDIN",
    "--volumes": "Remove anonymous volumes",
    "--disable-content-trust": "Skip image verification",
}


def describe(verb: str, names: list[str]) -> str:
    """The description of the flag called ``names`` (``["-e", "--env"]``) in ``verb``; "" when none is known."""
    longs = [n for n in names if n.startswith("--")] or names[-1:]
    for key in [(verb, n) for n in longs] + longs:
        if key in HELP:
            return HELP[key]
    return ""


def default_text(kind: str, default: Any) -> str:
    """Docker's ``(default ...)`` suffix: shown for a true bool, a non-empty string and a non-zero number."""
    if default is None or default is False or default == "" or default == [] or default == 0:
        return ""
    if default is True:
        return " (default true)"
    if isinstance(default, str):
        return f' (default "{default}")'
    return f" (default {default})"


def table(rows: list[tuple[list[str], str, str]]) -> str:
    """``Options:`` lines as Docker prints them, sorted by long name: ``rows`` are (names, type word, text)."""
    cells = []
    for names, word, text in sorted(rows, key=lambda r: next((n for n in r[0] if n.startswith("--")), r[0][-1])):
        shorts = [n for n in names if not n.startswith("--")]
        longs = [n for n in names if n.startswith("--")]
        left = (f"{shorts[0]}, " if shorts else "    ") + ", ".join(longs or shorts) + (f" {word}" if word else "")
        cells.append((left, text))
    width = max((len(left) for left, _ in cells), default=0) + 3
    return "".join(f"  {left.ljust(width)}{text}\n" for left, text in cells)
