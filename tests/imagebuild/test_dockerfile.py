"""final_base_image: the image the final stage is built FROM, table-driven."""

from __future__ import annotations

import pytest

from releases.imagebuild import DockerfileError, final_base_image

CASES: list[tuple[str, str, dict[str, str] | None, str]] = [
    ("single stage", "FROM python:3.12-slim\nRUN true\n", None, "python:3.12-slim"),
    ("scratch", "FROM scratch\nCOPY a /a\n", None, "scratch"),
    ("lower-case instruction", "from alpine:3.20\n", None, "alpine:3.20"),
    ("platform flag", "FROM --platform=linux/arm64 debian:12\n", None, "debian:12"),
    (
        "platform flag with variable and AS",
        "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\nRUN go build\n"
        "FROM --platform=$TARGETPLATFORM gcr.io/distroless/static:nonroot\nCOPY --from=build /x /x\n",
        None,
        "gcr.io/distroless/static:nonroot",
    ),
    (
        "final stage names an earlier stage",
        'FROM node:20 AS base\nFROM base AS deps\nRUN npm ci\nFROM deps\nCMD ["node"]\n',
        None,
        "node:20",
    ),
    ("stage names are case-insensitive", "FROM node:20 AS Base\nFROM BASE\n", None, "node:20"),
    (
        "multi-stage, final is a different image",
        "FROM golang:1.22 AS build\nFROM alpine:3.20 AS runtime\nCOPY --from=build /app /app\n",
        None,
        "alpine:3.20",
    ),
    ("ARG default", "ARG BASE=python:3.11\nFROM ${BASE}\n", None, "python:3.11"),
    ("ARG default, $VAR form", "ARG BASE=python:3.11\nFROM $BASE\n", None, "python:3.11"),
    ("ARG overridden by build arg", "ARG BASE=python:3.11\nFROM ${BASE}\n", {"BASE": "pypy:3"}, "pypy:3"),
    (
        "ARG parts",
        "ARG REGISTRY=docker.io/library\nARG VERSION=3.12\nFROM ${REGISTRY}/python:${VERSION}-slim\n",
        {"VERSION": "3.13"},
        "docker.io/library/python:3.13-slim",
    ),
    ("ARG without default gets build arg", "ARG TAG\nFROM redis:${TAG}\n", {"TAG": "7"}, "redis:7"),
    ("${VAR:-default} when unset", "ARG TAG\nFROM redis:${TAG:-7.2}\n", None, "redis:7.2"),
    ("${VAR:-default} when set", "ARG TAG=6\nFROM redis:${TAG:-7.2}\n", None, "redis:6"),
    ("${VAR:+alt}", "ARG SLIM=1\nFROM python:3.12${SLIM:+-slim}\n", None, "python:3.12-slim"),
    ("ARG default refers to ARG", "ARG V=3.12\nARG BASE=python:${V}\nFROM $BASE\n", None, "python:3.12"),
    ("quoted ARG default", 'ARG BASE="python:3.12"\nFROM $BASE\n', None, "python:3.12"),
    ("several ARGs on one line", "ARG A=alpine B=3.20\nFROM ${A}:${B}\n", None, "alpine:3.20"),
    (
        "ARG after FROM does not change later FROM",
        "ARG BASE=alpine:3.20\nFROM $BASE AS one\nARG BASE=debian:12\nFROM $BASE\n",
        None,
        "alpine:3.20",
    ),
    ("undeclared build arg ignored", "FROM alpine:${TAG:-3.19}\n", {"TAG": "3.20"}, "alpine:3.19"),
    (
        "line continuation",
        "FROM \\\n  --platform=linux/amd64 \\\n  alpine:3.20 \\\n  AS final\n",
        None,
        "alpine:3.20",
    ),
    (
        "comments, blank lines, comment inside continuation",
        "# syntax=docker/dockerfile:1\n\n# a comment\nFROM \\\n# inside\n  alpine:3.20\n  # indented\n",
        None,
        "alpine:3.20",
    ),
    (
        "escape directive",
        "# escape=`\nFROM `\n  mcr.microsoft.com/windows:ltsc2022\n",
        None,
        "mcr.microsoft.com/windows:ltsc2022",
    ),
    ("digest reference", "FROM alpine@sha256:" + "a" * 64 + "\n", None, "alpine@sha256:" + "a" * 64),
    ("registry with port", "FROM 127.0.0.1:5000/base/tiny:1 AS x\n", None, "127.0.0.1:5000/base/tiny:1"),
    ("CRLF line endings", "FROM alpine:3.20\r\nRUN true\r\n", None, "alpine:3.20"),
    ("UTF-8 BOM", "\ufeffFROM alpine:3.20\n", None, "alpine:3.20"),
    ("FROM word inside RUN is ignored", "FROM alpine:3.20\nRUN echo FROM evil:1\n", None, "alpine:3.20"),
]


@pytest.mark.parametrize(
    ("dockerfile", "build_args", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_final_base_image(dockerfile: str, build_args: dict[str, str] | None, expected: str) -> None:
    assert final_base_image(dockerfile, build_args) == expected


ERRORS: list[tuple[str, str, str]] = [
    ("no FROM", "RUN true\n", "no FROM"),
    ("empty", "", "no FROM"),
    ("FROM of an unset ARG", "ARG BASE\nFROM $BASE\n", "FROM without an image"),
    ("unknown FROM flag", "FROM --foo=bar alpine\n", "unknown FROM flag"),
    ("garbage after image", "FROM alpine extra words\n", "cannot parse"),
    ("${VAR:?} unset", "ARG B\nFROM ${B:?base image required}\n", "base image required"),
    ("unterminated quote", 'ARG B="alpine\nFROM $B\n', "unterminated"),
    ("missing brace", "FROM ${BASE\n", "missing '}'"),
]


@pytest.mark.parametrize(("dockerfile", "message"), [case[1:] for case in ERRORS], ids=[c[0] for c in ERRORS])
def test_final_base_image_errors(dockerfile: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=message.replace("$", r"\$").replace("{", r"\{")):
        final_base_image(dockerfile)
