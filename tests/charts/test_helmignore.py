""".helmignore rules, matched as Helm matches them."""

from __future__ import annotations

from pathlib import Path

import pytest

from releases.charts import IgnoreRules, IgnoreSyntaxError, chart_files

# (rules, path, is_dir, ignored)
CASES = [
    (["*.bak"], "a.bak", False, True),
    (["*.bak"], "templates/deep/a.bak", False, True),  # no slash: base name
    (["*.bak"], "a.yaml", False, False),
    (["ci/"], "ci", True, True),
    (["ci/"], "ci", False, False),  # dir-only rule, a file named ci
    (["templates/*.txt"], "templates/NOTES.txt", False, True),
    (["templates/*.txt"], "templates/sub/NOTES.txt", False, False),  # * never crosses /
    (["/secrets"], "secrets", False, True),
    (["/secrets"], "templates/secrets", False, False),
    (["secret?.yaml"], "secret1.yaml", False, True),
    (["[abc].yaml"], "b.yaml", False, True),
    (["[^abc].yaml"], "d.yaml", False, True),
    (["[^abc].yaml"], "a.yaml", False, False),
    (["# comment", "", "  *.tmp  "], "x.tmp", False, True),
    ([], "templates/.hidden", False, True),  # Helm's default rule
    ([], "templates/visible.yaml", False, False),
    # Helm's negation: a path NOT matching a negated rule is ignored.
    (["!keep.yaml"], "other.yaml", False, True),
    (["!keep.yaml"], "keep.yaml", False, False),
]


@pytest.mark.parametrize(("rules", "path", "is_dir", "ignored"), CASES)
def test_rules(rules: list[str], path: str, is_dir: bool, ignored: bool) -> None:
    assert IgnoreRules(rules).ignored(path, is_dir) is ignored


@pytest.mark.parametrize("rule", ["**/*.bak", "[ab", "a\\"])
def test_refused_rules(rule: str) -> None:
    with pytest.raises(IgnoreSyntaxError):
        IgnoreRules([rule])


def test_ignored_directories_are_not_descended(tmp_path: Path) -> None:
    (tmp_path / "build" / "inner").mkdir(parents=True)
    (tmp_path / "build" / "inner" / "x.yaml").write_text("")
    (tmp_path / "Chart.yaml").write_text("")
    (tmp_path / ".helmignore").write_text("build/\n")
    assert chart_files(tmp_path) == [".helmignore", "Chart.yaml"]
