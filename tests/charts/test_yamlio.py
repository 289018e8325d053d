"""YAML aliases cannot blow up: expansion is counted from the parser's events and refused."""

from __future__ import annotations

import json

import pytest
import yaml

from releases.charts.yamlio import (
    MAX_YAML_ALIAS_EXPANSIONS,
    YamlExpansionError,
    describe_yaml_error,
    load_all_yaml,
    load_yaml,
)


def alias_bomb(levels: int, width: int = 9) -> str:
    """The "billion laughs": each level lists the previous one ``width`` times (width**levels values)."""
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_with_the_line_of_the_alias() -> None:
    bomb = alias_bomb(7)  # 272 bytes; expanded, 39 MB of JSON
    assert len(bomb) < 400

    with pytest.raises(YamlExpansionError) as refused:
        load_yaml(bomb)

    described = describe_yaml_error(refused.value)
    assert described.startswith("line 5, column ")
    assert f"more than {MAX_YAML_ALIAS_EXPANSIONS:,} alias uses" in described
    assert isinstance(refused.value, yaml.YAMLError)  # callers that catch YAMLError still catch it


def test_expanded_values_limit_counts_nested_aliases() -> None:
    with pytest.raises(YamlExpansionError, match=r"more than 1,000 values \(the limit"):
        load_yaml(alias_bomb(4), max_alias_nodes=1_000, max_alias_expansions=10**9)


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(YamlExpansionError, match=r"alias \*loop is inside its own anchor &loop"):
        load_yaml("a: &loop\n  b: [1, *loop]\n")


def test_ordinary_aliases_and_merge_keys_still_load() -> None:
    text = (
        "defaults: &defaults\n  replicas: 2\n  tags: [a, b]\n"
        "frontend:\n  <<: *defaults\n  port: 80\n"
        "backend: *defaults\n"
    )

    values = load_yaml(text)

    assert values["frontend"] == {"replicas": 2, "tags": ["a", "b"], "port": 80}
    assert values["backend"] == {"replicas": 2, "tags": ["a", "b"]}
    assert json.loads(json.dumps(values)) == values


def test_values_written_out_are_not_limited_by_the_alias_limits() -> None:
    text = "".join(f"key{i}: [1, 2, 3]\n" for i in range(2_000))  # 8,000 values, no alias

    assert len(load_yaml(text, max_alias_nodes=10, max_alias_expansions=1)) == 2_000


def test_limits_apply_to_each_document_of_a_stream() -> None:
    document = "a: &a [1, 2, 3]\nb: [*a, *a]\n"  # 2 alias uses, 8 expanded values
    stream = "---\n".join([document] * 5)

    assert len(list(load_all_yaml(stream, max_alias_nodes=8, max_alias_expansions=2))) == 5
    with pytest.raises(YamlExpansionError):
        list(load_all_yaml(stream, max_alias_nodes=8, max_alias_expansions=1))


def test_syntax_errors_are_still_pyyaml_errors() -> None:
    with pytest.raises(yaml.YAMLError) as error:
        load_yaml("a: [1, 2\n")
    assert not isinstance(error.value, YamlExpansionError)
