"""/images, /build, /volumes, /networks, /system/df: each parses, calls the engine, formats Docker's JSON.

A build and ``network connect``/``disconnect`` fork in their caller (RUN steps, the network's DNS server): the
service runs them through ``engine.helper`` in a fresh process, never by forking itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from dockyard import jsonc as json
from dockyard.api.server import Reply, Request, StreamReply
from dockyard.errors import InvalidArgument, NotImplementedYet


def _fdict(req: Request) -> dict[str, list[str]]:
    from dockyard.api.containers import _filters

    out: dict[str, list[str]] = {}
    for k, v in _filters(req):
        out.setdefault(k, []).append(v)
    return out


def _body(req: Request) -> dict[str, Any]:
    b = req.json({})
    if not isinstance(b, dict):
        raise InvalidArgument("invalid JSON body: want an object")
    return b


def _t(d: dict[str, Any], key: str, typ: type, default: Any) -> Any:
    v = d.get(key)
    if v is None:
        return default
    if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
        raise InvalidArgument(f"invalid type for {key}: want {typ.__name__}, got {type(v).__name__}")
    if typ is dict and not all(isinstance(x, str) for x in v.values()):
        raise InvalidArgument(f"invalid type for {key}: want a map of strings")
    return v


def _jline(d: dict[str, Any]) -> bytes:
    return json.dumps(d).encode() + b"\r\n"


def _upload(req: Request) -> Any:
    import io

    return io.BytesIO(req.body) if isinstance(req.body, bytes) else req.body


# ---- images ----------------------------------------------------------------------------------------------------
def _image_json(req: Request, i: Any, containers: int = -1) -> dict[str, Any]:
    d = {"Id": i.id, "ParentId": i.parent, "RepoTags": i.repo_tags, "RepoDigests": i.repo_digests,
         "Created": int(i.created), "Size": i.size, "SharedSize": -1, "Labels": i.labels or None,
         "Containers": containers}
    if req.before("1.44"):  # VirtualSize left the API in 1.44, as dockerd drops it
        d["VirtualSize"] = i.size
    return d


def images_list(api: Any, req: Request) -> Any:
    from dockyard.engine import images

    return [_image_json(req, i) for i in images.list_images(api.store, _fdict(req), all=req.flag("all"))]


def image_inspect(api: Any, req: Request, name: str) -> Any:
    from dockyard.engine import images

    d = images.inspect_image(api.store, name)
    if req.before("1.44") and "VirtualSize" not in d:
        d = {**d, "VirtualSize": d.get("Size", 0)}
    return d


def image_history(api: Any, req: Request, name: str) -> Any:
    from dockyard.engine import images

    return [{"Id": h.id, "Created": int(h.created), "CreatedBy": h.created_by, "Tags": h.tags or None,
             "Size": h.size, "Comment": h.comment} for h in images.history(api.store, name)]


def image_tag(api: Any, req: Request, name: str) -> Reply:
    from dockyard.engine import images

    repo = req.arg("repo")
    if not repo:
        raise InvalidArgument("repository name (repo) is required")
    images.tag_image(api.store, name, repo + (":" + req.arg("tag") if req.arg("tag") else ""))
    return Reply(201, b"")


def image_remove(api: Any, req: Request, name: str) -> Any:
    from dockyard.engine import images

    return [{k: v} for k, v in images.remove_image(api.store, name, force=req.flag("force"),
                                                     prune=not req.flag("noprune"))]


def images_prune(api: Any, req: Request) -> Any:
    from dockyard.engine import images

    f = _fdict(req)
    dangling = f.pop("dangling", ["true"])
    rep = images.prune_images(api.store, all=dangling[-1].lower() in ("false", "0"), filters=f)
    return {"ImagesDeleted": [{k: v} for k, v in rep.deleted] or None, "SpaceReclaimed": rep.reclaimed}


def image_create(api: Any, req: Request) -> StreamReply:
    """POST /images/create: ``fromSrc=-`` imports the body (a rootfs tar); pulling waits for registry support."""
    from dockyard.engine import images

    src = req.arg("fromSrc")
    if not src:
        raise NotImplementedYet(f"pull of {req.arg('fromImage')!r}: dockyard has no registry client yet "
                                "(import, load or build the image)")
    repo, tag = req.arg("repo"), req.arg("tag")
    ref = (repo + (":" + tag if tag else "")) if repo else None
    changes = req.query.get("changes", [])
    images.check_import(ref, req.arg("platform"))
    source = _upload(req) if src == "-" else src
    iid = images.import_image(api.store, source, ref, changes=changes, message=req.arg("message"),
                              platform=req.arg("platform"))
    return StreamReply(iter([_jline({"status": iid})]))


def images_save(api: Any, req: Request, name: str = "") -> StreamReply:
    from dockyard.api.files import writer_stream
    from dockyard.engine import images

    names = [name] if name else req.query.get("names", [])
    if not names:
        raise InvalidArgument("no image names given (names=...)")
    images.check_save(api.store, names)
    return StreamReply(writer_stream(lambda f: images.save_images(api.store, names, f)), "application/x-tar")


def images_load(api: Any, req: Request) -> StreamReply:
    from dockyard.engine import images

    quiet = req.flag("quiet")
    events = list(images.load_images(api.store, _upload(req), platform=req.arg("platform")))
    out = []
    for e in events:
        if e.kind == "replaced":
            out.append(f"The image {e.tag} already exists, renaming the old one with ID {e.old_id} to empty string")
        elif e.tag:
            out.append(f"Loaded image: {e.tag}")
        else:
            out.append(f"Loaded image ID: {e.image_id}")
    return StreamReply(iter([_jline({"stream": ln + "\n"}) for ln in out]) if not quiet or out else iter([b""]))


# ---- build -----------------------------------------------------------------------------------------------------
def _jmap(req: Request, key: str) -> dict[str, str]:
    raw = req.arg(key)
    if not raw:
        return {}
    try:
        d = json.loads(raw)
    except ValueError:
        raise InvalidArgument(f"invalid {key}: not JSON") from None
    if not isinstance(d, dict):
        raise InvalidArgument(f"invalid {key}: want a JSON object")
    return {str(k): "" if v is None else str(v) for k, v in d.items()}


_STEP = re.compile(r"\[(?:[^\]]* )?(\d+/\d+)\] (.*)", re.S)


def _familiar(ref: str) -> str:
    for p in ("docker.io/library/", "docker.io/"):
        if ref.startswith(p):
            return ref[len(p):]
    return ref


def build(api: Any, req: Request) -> StreamReply:
    """POST /build: a tar context in the body, Docker's classic-builder JSON lines out. Errors of the build come
    in the stream (``{"error", "errorDetail"}``, what the docker CLI prints); the build runs in a helper."""
    import os

    from dockyard.engine import build as eb
    from dockyard.engine import helper

    if req.arg("remote"):
        raise NotImplementedYet("build from a remote context: send the context as a tar")
    if req.flag("pull"):
        raise InvalidArgument("pull: dockyard has no registry to pull from (import or build the base image)")
    quiet = req.flag("q")
    ctx = eb.extract_context(_upload(req))
    kw: dict[str, Any] = {"tags": req.query.get("t", []), "build_args": _jmap(req, "buildargs"),
                          "target": req.arg("target") or None, "no_cache": req.flag("nocache"),
                          "labels": _jmap(req, "labels"), "platform": req.arg("platform")}
    df = req.arg("dockerfile")
    if df:
        p = os.path.normpath(os.path.join(ctx, df))
        if not p.startswith(ctx + os.sep):
            eb.remove_context(ctx)
            raise InvalidArgument(f"the Dockerfile ({df}) must be within the build context")
        kw["dockerfile_path"] = p
    mode = req.arg("networkmode")
    if mode and mode != "default":
        kw["network"] = mode

    def body() -> Iterator[bytes]:
        yield b""
        try:
            for ev in helper.build(api.root, ctx, **kw):
                if isinstance(ev, eb.BuildFinished):
                    yield _jline({"aux": {"ID": ev.image_id}})
                    if not quiet:
                        yield _jline({"stream": f"Successfully built {ev.image_id.split(':')[-1][:12]}\n"})
                        for t in ev.tags:
                            yield _jline({"stream": f"Successfully tagged {_familiar(t)}\n"})
                    continue
                if quiet:
                    continue
                if isinstance(ev, eb.StepStarted):
                    m = _STEP.fullmatch(ev.text)
                    if m:  # "[stage-0 2/4] COPY a /a" -> the classic builder's "Step 2/4 : COPY a /a"
                        yield _jline({"stream": f"Step {m.group(1)} : {m.group(2)}\n"})
                elif isinstance(ev, eb.StepOutput):
                    if not ev.text.startswith("naming to "):
                        yield _jline({"stream": ev.text + "\n"})
                elif isinstance(ev, eb.StepCached):
                    yield _jline({"stream": " ---> Using cache\n"})
                elif isinstance(ev, eb.BuildWarning):
                    yield _jline({"stream": ev.text + "\n"})
        except Exception as e:  # noqa: BLE001 - in the stream, as dockerd
            yield _jline({"errorDetail": {"message": str(e)}, "error": str(e)})
        finally:
            eb.remove_context(ctx)

    return StreamReply(body())


# ---- volumes ---------------------------------------------------------------------------------------------------
def volumes_list(api: Any, req: Request) -> Any:
    from dockyard.engine import volumes

    vols = volumes.list_volumes(api.store, _fdict(req))
    return {"Volumes": [volumes.inspect_volume(api.store, v.name) for v in vols], "Warnings": []}


def volume_create(api: Any, req: Request) -> Reply:
    from dockyard.api.routes import created
    from dockyard.engine import volumes

    b = _body(req)
    v = volumes.create_volume(api.store, _t(b, "Name", str, "") or None, _t(b, "Driver", str, "") or "local",
                              _t(b, "DriverOpts", dict, {}), _t(b, "Labels", dict, {}))
    return created(volumes.inspect_volume(api.store, v.name))


def volume_inspect(api: Any, req: Request, name: str) -> Any:
    from dockyard.engine import volumes

    return volumes.inspect_volume(api.store, name)


def volume_remove(api: Any, req: Request, name: str) -> None:
    from dockyard.engine import volumes

    volumes.remove_volume(api.store, name, force=req.flag("force"))


def volumes_prune(api: Any, req: Request) -> Any:
    from dockyard.engine import volumes

    f = _fdict(req)
    all_ = f.pop("all", ["false"])[-1].lower() in ("true", "1")
    rep = volumes.prune_volumes(api.store, all=all_, filters=f)
    return {"VolumesDeleted": rep.deleted or None, "SpaceReclaimed": rep.reclaimed}


# ---- networks --------------------------------------------------------------------------------------------------
def networks_list(api: Any, req: Request) -> Any:
    from dockyard.engine import networks

    return [networks.inspect_network(api.store, n.id) for n in networks.list_networks(api.store, _fdict(req))]


def network_inspect(api: Any, req: Request, id: str) -> Any:
    from dockyard.engine import networks

    return networks.inspect_network(api.store, id)


def network_create(api: Any, req: Request) -> Reply:
    from dockyard.api.routes import created
    from dockyard.engine import networks

    b = _body(req)
    name = _t(b, "Name", str, "")
    if not name:
        raise InvalidArgument("network name (Name) is required")
    ipam = b.get("IPAM") or {}
    if not isinstance(ipam, dict):
        raise InvalidArgument("invalid type for IPAM: want an object")
    cfgs = ipam.get("Config") or []
    if not isinstance(cfgs, list) or not all(isinstance(c, dict) for c in cfgs):
        raise InvalidArgument("invalid type for IPAM.Config: want a list of objects")
    if ipam.get("Driver") not in (None, "", "default"):
        raise InvalidArgument(f"IPAM driver {ipam['Driver']!r} is not supported by dockyard")
    pick = lambda k: [_t(c, k, str, "") for c in cfgs if c.get(k)]  # noqa: E731
    n = networks.create_network(api.store, name, driver=_t(b, "Driver", str, "") or "bridge", subnets=pick("Subnet"),
                                gateways=pick("Gateway"), ip_ranges=pick("IPRange"),
                                internal=_t(b, "Internal", bool, False), ipv6=_t(b, "EnableIPv6", bool, False),
                                labels=_t(b, "Labels", dict, {}), options=_t(b, "Options", dict, {}))
    return created({"Id": n.id, "Warning": ""})


def network_remove(api: Any, req: Request, id: str) -> None:
    from dockyard.engine import networks

    networks.remove_network(api.store, id)


def networks_prune(api: Any, req: Request) -> Any:
    from dockyard.engine import networks

    rep = networks.prune_networks(api.store, _fdict(req))
    return {"NetworksDeleted": rep.deleted or None}


def network_connect(api: Any, req: Request, id: str) -> None:
    from dockyard.engine import helper, networks

    b = _body(req)
    ctr = _t(b, "Container", str, "")
    if not ctr:
        raise InvalidArgument("Container is required")
    ep = b.get("EndpointConfig") or {}
    if not isinstance(ep, dict):
        raise InvalidArgument("invalid type for EndpointConfig: want an object")
    aliases = ep.get("Aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise InvalidArgument("invalid type for EndpointConfig.Aliases: want a list of strings")
    ipc = ep.get("IPAMConfig") or {}
    ip = ipc.get("IPv4Address", "") if isinstance(ipc, dict) else ""
    if not isinstance(ip, str):
        raise InvalidArgument("invalid type for IPAMConfig.IPv4Address: want a string")
    networks.find_network(api.store, id)  # a 404 without starting a helper
    helper.call(api.root, "connect_network", ref=id, container=ctr, aliases=aliases, ip=ip)


def network_disconnect(api: Any, req: Request, id: str) -> None:
    from dockyard.engine import helper, networks

    b = _body(req)
    ctr = _t(b, "Container", str, "")
    if not ctr:
        raise InvalidArgument("Container is required")
    networks.find_network(api.store, id)
    helper.call(api.root, "disconnect_network", ref=id, container=ctr, force=_t(b, "Force", bool, False))


# ---- system df -------------------------------------------------------------------------------------------------
def system_df(api: Any, req: Request) -> Any:
    from dockyard.api.containers import _row_json
    from dockyard.engine import filters, system, volumes

    du = system.disk_usage(api.store)
    rows = filters.list_containers(api.store, all=True, size=True)
    return {"LayersSize": du.layers_size,
            "Images": [_image_json(req, i, du.image_containers.get(i.id, 0)) for i in du.images],
            "Containers": [_row_json(r, True) for r in rows],
            "Volumes": [{**volumes.inspect_volume(api.store, u.volume.name),
                         "UsageData": {"Size": u.size, "RefCount": u.ref_count}} for u in du.volumes],
            "BuildCache": []}


def register(r: Any) -> None:
    r.add("GET", "/images/json", images_list)
    r.add("POST", "/images/create", image_create)
    r.add("POST", "/images/load", images_load)
    r.add("GET", "/images/get", images_save)
    r.add("POST", "/images/prune", images_prune)
    r.add("POST", "/build", build)
    r.add("GET", "/images/{name*}/json", image_inspect)
    r.add("GET", "/images/{name*}/history", image_history)
    r.add("GET", "/images/{name*}/get", images_save)
    r.add("POST", "/images/{name*}/tag", image_tag)
    r.add("DELETE", "/images/{name*}", image_remove)
    r.add("GET", "/volumes", volumes_list)
    r.add("POST", "/volumes/create", volume_create)
    r.add("POST", "/volumes/prune", volumes_prune)
    r.add("GET", "/volumes/{name}", volume_inspect)
    r.add("DELETE", "/volumes/{name}", volume_remove)
    r.add("GET", "/networks", networks_list)
    r.add("POST", "/networks/create", network_create)
    r.add("POST", "/networks/prune", networks_prune)
    r.add("GET", "/networks/{id}", network_inspect)
    r.add("DELETE", "/networks/{id}", network_remove)
    r.add("POST", "/networks/{id}/connect", network_connect)
    r.add("POST", "/networks/{id}/disconnect", network_disconnect)
    r.add("GET", "/system/df", system_df)
