"""What Release Please's release commit says about its pull request. Plain Python.

Release Please merges its release PR; GitHub names the PR in the resulting commit's subject:
``chore(main): release 1.4.0 (#43)`` for a squash merge (the PR title, then ``(#43)``) and
``Merge pull request #43 from owner/release-please--branches--main`` for a merge commit.
"""

from __future__ import annotations

import re

__all__ = ["pr_number_from_subject"]

_SQUASH_SUFFIX = re.compile(r"\(#(\d{1,9})\)\s*\Z")
_MERGE_COMMIT = re.compile(r"\AMerge pull request #(\d{1,9}) from \S")


def pr_number_from_subject(subject: str) -> int | None:
    """The pull request a commit subject names (``... (#43)`` at its end, or ``Merge pull request
    #43 from ...``); ``None`` when it names none. Only the subject's end counts: ``fix #12 (#43)``
    is PR 43, and ``revert (#12) typo`` names none."""
    subject = subject.strip()
    match = _SQUASH_SUFFIX.search(subject) or _MERGE_COMMIT.match(subject)
    if match is None:
        return None
    number = int(match.group(1))
    return number if number > 0 else None
