"""Image references as a container runtime reads them: docker's reference grammar.

Parsed by ``docker-image-py`` (a port of ``github.com/distribution/reference``): the domain
defaults to ``docker.io``, a single name gets ``library/``, a reference may carry a tag, a digest
or both. :func:`parse_reference` wraps it into a small typed value and turns its errors into a
sentence that says how to write the reference.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from docker_image import reference as grammar

MOVING_TAG = "latest"
OCI_SCHEME = "oci://"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_HOW = "write it as [host[:port]/]path[:tag][@sha256:<64 hex digits>], e.g. ghcr.io/org/app:1.0.0"


class ReferenceInvalid(ValueError):
    """A reference that does not parse; the message names the problem and how to write it."""


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed reference: ``repository`` fully qualified (``docker.io/library/busybox``), ``tag``
    and ``digest`` as given (empty when absent). A bare digest has no repository."""

    written: str
    repository: str
    tag: str
    digest: str

    @property
    def registry(self) -> str:
        """The repository without its last path component (our ``registry`` column)."""
        return self.repository.rpartition("/")[0]

    @property
    def name(self) -> str:
        return self.repository.rpartition("/")[2]

    @property
    def effective_tag(self) -> str:
        """The tag a runtime pulls: the one given, or ``latest`` when neither tag nor digest is."""
        return self.tag or ("" if self.digest else MOVING_TAG)

    def under(self, namespace: str) -> bool:
        return self.repository.startswith(namespace.rstrip("/") + "/")


def parse_reference(text: object, *, bare_digest: bool = False, oci_scheme: bool = False) -> Reference:
    """``text`` as a :class:`Reference`; raises :class:`ReferenceInvalid` naming the problem.

    ``bare_digest`` accepts ``sha256:<hex>`` alone (verify: "which of our artifacts is this?");
    ``oci_scheme`` accepts Helm's ``oci://`` prefix of chart references.
    """
    if not isinstance(text, str):
        raise ReferenceInvalid(f"{text!r} is not a string; {_HOW}")
    written = text
    text = text.strip()
    if not text:
        raise ReferenceInvalid(f"the reference is empty; {_HOW}")
    if oci_scheme and text.startswith(OCI_SCHEME):
        text = text[len(OCI_SCHEME) :]
    if text.startswith("sha256:") and "/" not in text:
        if bare_digest and _DIGEST.match(text):
            return Reference(written, "", "", text)
        if bare_digest:
            raise ReferenceInvalid(f"{written!r}: a digest is sha256: followed by 64 lowercase hex digits")
    parsed = _normalized(text)
    if isinstance(parsed, tuple):
        return Reference(written, *parsed)
    if isinstance(parsed, grammar.NameContainsUppercase):
        raise ReferenceInvalid(f"{written!r}: the repository name must be lowercase; {_HOW}")
    if isinstance(parsed, grammar.NameTooLong):
        raise ReferenceInvalid(f"{written!r}: the repository name is longer than 255 characters")
    raise ReferenceInvalid(f"{written!r} is not an image reference ({parsed}); {_HOW}")


#: Longer than any reference docker accepts (a 255-character name, a 128-character tag, a sha512
#: digest): such text is read afresh each time, so callers cannot fill the cache with large strings.
CACHED_REFERENCE_LENGTH = 600


def _normalized(text: str) -> tuple[str, str, str] | grammar.InvalidReference:
    """docker's reading of ``text``: (repository, tag, digest), or the grammar's error. Kept for
    text of a reference's length: a cluster's reviews name the same few hundred images again and
    again, and the grammar's regular expressions cost more than the rest of a review's Python."""
    return _read_kept(text) if len(text) <= CACHED_REFERENCE_LENGTH else _read(text)


def _read(text: str) -> tuple[str, str, str] | grammar.InvalidReference:
    try:
        parsed = grammar.Reference.parse_normalized_named(text)
    except grammar.InvalidReference as error:
        return error.with_traceback(None)  # kept without the frames it was raised in
    return parsed["name"], parsed["tag"] or "", parsed["digest"] or ""


_read_kept = functools.lru_cache(maxsize=4096)(_read)
