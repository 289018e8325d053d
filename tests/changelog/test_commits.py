"""The release PR named by a Release Please release commit's subject."""

from __future__ import annotations

import pytest

from releases.changelog import pr_number_from_subject


@pytest.mark.parametrize(
    ("subject", "number"),
    [
        ("chore(main): release 1.4.0 (#43)", 43),
        ("chore(main): release threek8s 1.4.0 (#7)  ", 7),
        ("chore: release main (#1204)", 1204),
        ("fix: closes #12 (#43)", 43),
        ("Merge pull request #88 from stianfro/release-please--branches--main", 88),
        ("chore(main): release 1.4.0", None),
        ("revert (#12) typo", None),
        ("chore(main): release 1.4.0 (#0)", None),
        ("", None),
    ],
)
def test_pr_number_is_read_from_the_end_of_the_subject(subject, number):
    assert pr_number_from_subject(subject) == number
