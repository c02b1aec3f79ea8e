"""The state root's configuration file, ``<root>/daemon.json`` (Docker's daemon.json keys), read in one place.

dockyard has no daemon, but Docker's daemon options that describe *where* things live are kept in Docker's file:
the registry client reads ``registry-mirrors`` and ``insecure-registries`` (``images.registry``), the overlay
driver ``cluster-store`` and ``cluster-advertise`` (``network.overlay``). A missing file is an empty object; a file
that is not a JSON object is refused with one line naming it.

Cluster settings, strongest first: the global flags ``--cluster-store``/``--cluster-advertise`` (the CLI exports
them to its environment, so that the monitors and helper processes it starts see them too), the environment
(``DOCKYARD_CLUSTER_STORE``, ``DOCKYARD_CLUSTER_ADVERTISE``), then daemon.json::

    {"cluster-store": "etcd://10.0.0.5:2379,10.0.0.6:2379", "cluster-advertise": "10.0.0.7"}
"""

from __future__ import annotations

import os
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard import jsonc as json
from dockyard.errors import InvalidArgument

STORE_ENV, ADVERTISE_ENV = "DOCKYARD_CLUSTER_STORE", "DOCKYARD_CLUSTER_ADVERTISE"


def json_object(path: str, context: str) -> dict[str, Any]:
    """The JSON object in ``path`` ({} when the file is missing); InvalidArgument ``"<context>: <reason>"`` when it
    cannot be read or is not an object."""
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (ValueError, OSError) as e:
        raise InvalidArgument(f"{context}: {e}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{context}: not a JSON object")
    return data


def daemon_json(root: str, what: str = "the engine") -> dict[str, Any]:
    """``<root>/daemon.json`` as a dict ({} when missing); InvalidArgument naming the file when unreadable."""
    path = os.path.join(root, "daemon.json")
    return json_object(path, f"unable to configure {what} from {path}")


def cluster_settings(root: str) -> tuple[str, str]:
    """(cluster store URL, advertise address), each "" when not configured (environment, then daemon.json)."""
    store, adv = os.environ.get(STORE_ENV, ""), os.environ.get(ADVERTISE_ENV, "")
    if not (store and adv):
        data = daemon_json(root, "the cluster")
        for key, cur in (("cluster-store", store), ("cluster-advertise", adv)):
            v = data.get(key, "")
            if not isinstance(v, str):
                raise InvalidArgument(f"{os.path.join(root, 'daemon.json')}: {key} must be a string")
        store = store or data.get("cluster-store", "")
        adv = adv or data.get("cluster-advertise", "")
    return store, adv
