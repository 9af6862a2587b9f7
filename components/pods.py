"""The Pod Security ``restricted`` profile as the platform writes it, once: the pod ``securityContext``
(``restricted_pod``), the container ``securityContext`` (``restricted_container``) and the writable ``/tmp`` that a
read-only root file system needs (``tmp_volume``, ``tmp_mount``).

``restricted`` (Kubernetes Pod Security Standards) asks of every container no privilege escalation and every
capability dropped, and of the pod or of every container ``runAsNonRoot`` and a seccomp profile. Where a pod or a
chart's value differs (no fixed UID, an ``fsGroup``, fields restated on the container), the caller says so with a
parameter. Pure data: no Pulumi (``serving.engines.base`` uses it, and ``config.serving`` imports that).
"""

from __future__ import annotations

RUNTIME_DEFAULT = {"type": "RuntimeDefault"}
TMP = "/tmp"


def restricted_pod(uid: int | None = None, *, gid: int | None = None, fs_group: int | None = None) -> dict:
    """A pod ``securityContext``: non-root, seccomp ``RuntimeDefault``, and ``runAsUser``/``runAsGroup``/``fsGroup``
    where given (no ``uid``: the image's own non-root user)."""
    context: dict = {"runAsNonRoot": True, "seccompProfile": dict(RUNTIME_DEFAULT)}
    for key, value in (("runAsUser", uid), ("runAsGroup", gid), ("fsGroup", fs_group)):
        if value is not None:
            context[key] = value
    return context


def restricted_container(read_only_root: bool = True, *, non_root: bool = False, seccomp: bool = False) -> dict:
    """A container ``securityContext``: no privilege escalation, every capability dropped, and a read-only root file
    system unless ``read_only_root`` is false. ``non_root`` and ``seccomp`` restate the pod's ``runAsNonRoot`` and
    seccomp ``RuntimeDefault`` on the container (together: it passes ``restricted`` whatever its pod sets)."""
    context: dict = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    if read_only_root:
        context["readOnlyRootFilesystem"] = True
    if non_root:
        context["runAsNonRoot"] = True
    if seccomp:
        context["seccompProfile"] = dict(RUNTIME_DEFAULT)
    return context


def tmp_volume(size_limit: str | None = None) -> dict:
    """The ``tmp`` emptyDir (at most ``size_limit``) that ``tmp_mount`` mounts."""
    return {"name": "tmp", "emptyDir": {"sizeLimit": size_limit} if size_limit else {}}


def tmp_mount() -> dict:
    """The ``tmp`` volume on ``/tmp``: HOME, caches and temporary files of a container with a read-only root."""
    return {"name": "tmp", "mountPath": TMP}
