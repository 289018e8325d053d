"""Where a project keeps what the release registry builds and deploys, read from its own source.

* :func:`parse_layout` - ``.release-registry.yaml`` at the repository root, checked against
  :data:`LAYOUT_SCHEMA` with every problem listed, and the defaults filled in (:mod:`.config`);
* :class:`ReleaseLayout` / :class:`ImageLayout` - the effective configuration a release is
  planned with, stored on the release as JSON (``to_json``/``from_json``).

Plain Python (no Django): the caller passes the defaults (``CHART_PATH``, the spec's image names).
"""

from releases.layout.config import (
    COMPONENTS,
    LAYOUT_FILE,
    LAYOUT_SCHEMA,
    MAX_LAYOUT_BYTES,
    ImageLayout,
    LayoutInvalid,
    ReleaseLayout,
    default_layout,
    parse_layout,
)

__all__ = [
    "COMPONENTS",
    "LAYOUT_FILE",
    "LAYOUT_SCHEMA",
    "MAX_LAYOUT_BYTES",
    "ImageLayout",
    "LayoutInvalid",
    "ReleaseLayout",
    "default_layout",
    "parse_layout",
]
