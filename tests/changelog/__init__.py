"""Tests of releases.changelog and releases.github.events (plain Python, no database)."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
R = "https://github.com/stianfro/threek8s"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")
