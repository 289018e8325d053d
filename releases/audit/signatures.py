"""Which cosign ``.sig``/``.att`` tags an audit run reads (plain Python, no Django).

Every run knows whether each signature and attestation tag exists from one ``tags/list`` per
repository (:class:`TagListing`); a tag's content (its digest, compared with the one recorded
when it was verified) is read again one run in ``every`` (:func:`content_due`), the digests spread
evenly over the runs, so a run asks the registry a fraction of a request per signature.

Why existence every run but content in turn: nobody without the signing key can make a
signature that verifies, so a ``.sig`` replaced behind our back can only make verification fail
(a denial, found within ``every`` runs); a deleted one is found by the next run.
"""

from __future__ import annotations

from releases.oci import RegistryClient, RegistryError


class TagListing:
    """The tags of each repository, listed once (``tags/list``, following its pagination)."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client
        self._tags: dict[str, frozenset[str] | None] = {}

    def listed(self, repository: str, tag: str) -> bool | None:
        """Whether ``tag`` is listed in ``repository``; ``None`` when the listing failed (unknown)."""
        if repository not in self._tags:
            try:
                self._tags[repository] = frozenset(self.client.list_tags(repository))
            except (RegistryError, ValueError):  # ValueError: a body that is not the JSON asked for
                self._tags[repository] = None  # each tag is then asked on its own, which says why
        tags = self._tags[repository]
        return None if tags is None else tag in tags


def content_due(digest: str, run_number: int, every: int) -> bool:
    """Whether run ``run_number`` reads the signature content of ``digest`` again: every run when
    ``every`` is 1, else once in any ``every`` consecutive runs."""
    if every <= 1:
        return True
    return int(digest.removeprefix("sha256:")[:12], 16) % every == run_number % every
