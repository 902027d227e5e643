"""A KubeSpawner made the way JupyterHub makes one, from a loaded configuration."""

from __future__ import annotations

from functools import partial

from jupyterhub import orm
from jupyterhub.objects import Hub
from jupyterhub.user import User
from kubernetes_asyncio.client import ApiClient
from traitlets.config import Config
from traitlets.utils.importstring import import_item

#: The worker Service's cluster address, as the API server would answer the hook's lookup.
WORKER_ADDRESS = "10.96.7.7"


async def _worker_address(_spawner, _name: str) -> str:
    return WORKER_ADDRESS


async def spawner_for(config: Config, username: str, server: str):
    """The spawner of ``username``'s named server ``server``, as ``User.spawners`` builds it.

    Must run inside an event loop: KubeSpawner binds its API client to the running loop.
    """
    db = orm.new_session_factory("sqlite://")()
    orm_user = orm.User(name=username)
    db.add(orm_user)
    db.commit()
    hub = Hub(ip="0.0.0.0", port=8082, base_url="/hub/")
    settings = {
        "config": config,
        "spawner_class": import_item(config.JupyterHub.spawner_class),
        "hub": hub,
        "allow_named_servers": True,
    }
    user = User(orm_user, settings)
    user._new_orm_spawner(server, server)
    return user.spawners[server]


async def spawned(spawner) -> tuple[dict, dict]:
    """The configured pre-spawn hook, with the worker's address given instead of asked of
    an API server, then KubeSpawner's own pod and home volume manifests as the API would
    receive them."""
    hook = spawner.pre_spawn_hook
    await partial(hook, find_service=_worker_address)(spawner)
    pod = await spawner.get_pod_manifest()
    async with ApiClient() as client:
        return (
            client.sanitize_for_serialization(pod),
            client.sanitize_for_serialization(spawner.get_pvc_manifest()),
        )


async def pod_manifest(spawner) -> dict:
    """The pod of :func:`spawned`."""
    pod, _ = await spawned(spawner)
    return pod
