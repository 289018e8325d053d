"""Which platforms an engine can run a ``RUN`` step of: its own, and those qemu emulates for it.

A build that needs a platform the engine cannot run would fail at its first ``RUN`` with
``exec format error``; the pipeline asks here first and fails before building, naming the platform
and the fix. The kernel decides what runs: natively its own architecture, and through binfmt_misc
every architecture with a registered, enabled interpreter. The interpreter must be registered with
the F flag (opened once at registration), or it is not found inside the build's container.

Only an engine on this host (a ``unix://`` socket) shares our kernel, so only there can we read its
binfmt_misc; for another engine we know only its own architecture.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")

# docker info's Architecture (uname -m) -> the platforms it runs natively.
NATIVE = {
    "x86_64": ("linux/amd64", "linux/386"),
    "aarch64": ("linux/arm64", "linux/arm/v7", "linux/arm/v6"),
    "armv7l": ("linux/arm/v7", "linux/arm/v6"),
    "s390x": ("linux/s390x",),
    "ppc64le": ("linux/ppc64le",),
    "riscv64": ("linux/riscv64",),
}
# binfmt_misc entry names Debian's qemu-user-static registers -> the platforms they run.
QEMU_ENTRIES = {
    "qemu-aarch64": ("linux/arm64",),
    "qemu-arm": ("linux/arm/v7", "linux/arm/v6"),
    "qemu-x86_64": ("linux/amd64",),
    "qemu-i386": ("linux/386",),
    "qemu-s390x": ("linux/s390x",),
    "qemu-ppc64le": ("linux/ppc64le",),
    "qemu-riscv64": ("linux/riscv64",),
}
_ALIASES = {"linux/arm64/v8": "linux/arm64", "linux/amd64/v1": "linux/amd64", "linux/arm/v8": "linux/arm64"}


@dataclass(frozen=True)
class EnginePlatforms:
    """What an engine can run: ``native`` and ``emulated`` platforms, and how we know (``source``)."""

    native: tuple[str, ...]
    emulated: tuple[str, ...]
    source: str

    @property
    def runnable(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.native, *self.emulated)))

    def missing(self, requested: list[str] | tuple[str, ...]) -> list[str]:
        """The requested platforms this engine cannot run a RUN step of."""
        runnable = set(self.runnable)
        return [platform for platform in requested if normalise(platform) not in runnable]

    def as_dict(self) -> dict[str, object]:
        return {"native": list(self.native), "emulated": list(self.emulated), "source": self.source}


def normalise(platform: str) -> str:
    platform = platform.strip().lower()
    return _ALIASES.get(platform, platform)


def binfmt_platforms(binfmt_dir: Path = BINFMT_DIR) -> tuple[str, ...]:
    """Platforms run by an enabled qemu entry registered with the F flag in ``binfmt_dir``."""
    found: list[str] = []
    for entry, platforms in QEMU_ENTRIES.items():
        try:
            text = (binfmt_dir / entry).read_text()
        except OSError:
            continue
        lines = text.splitlines()
        enabled = bool(lines) and lines[0].strip() == "enabled"
        flags = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("flags:")), "")
        if enabled and "F" in flags:
            found.extend(platforms)
    return tuple(found)


def engine_platforms(docker_host: str, architecture: str, binfmt_dir: Path = BINFMT_DIR) -> EnginePlatforms:
    """The platforms the engine at ``docker_host`` (whose ``docker info`` says ``architecture``) runs."""
    native = NATIVE.get(architecture, (f"linux/{architecture}",))
    if not docker_host.startswith("unix://"):
        return EnginePlatforms(
            native, (), f"native only: {docker_host} is not on this host, its binfmt_misc is unknown"
        )
    emulated = tuple(p for p in binfmt_platforms(binfmt_dir) if p not in native)
    return EnginePlatforms(native, emulated, f"{architecture} kernel, binfmt_misc at {binfmt_dir}")


def emulation_fix(platforms: list[str]) -> str:
    """What to do when ``platforms`` cannot run (said in the failure and in readiness)."""
    return (
        f"the engine cannot run {', '.join(platforms)}: install Debian's qemu-user-static and binfmt-support on "
        "the engine's host (bin/setup does), so binfmt_misc registers qemu with the F flag"
    )
