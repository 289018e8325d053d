"""The version sort key orders by semver in a database whose collation is ICU ``en-US``, where
punctuation does not sort like ASCII (the old keys put ``1.0.0`` before ``1.0.0-rc.1`` there).

The test creates its own database (``LOCALE_PROVIDER icu``), talks to it with psycopg directly,
and drops it at the end."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator

import psycopg
import pytest
import semver
from django.conf import settings
from django.db import connection
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from releases.models import ReleaseVersion
from releases.versions import MAX_VERSION_LENGTH, SORT_KEY_MAX_LENGTH, version_sort_key
from tests.fixtures.services import service_missing
from tests.releases.test_versions import LONGEST, PRECEDENCE

ICU_EN_US = "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'"


def _connect(dbname: str) -> psycopg.Connection:
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db.get("HOST") or None,
        port=db.get("PORT") or None,
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        dbname=dbname,
        autocommit=True,
    )


@pytest.fixture(scope="module")
def icu_database() -> Iterator[psycopg.Connection]:
    """A table ``versions(version text, sort_key <the model's key column type>)`` in a new database
    with an ICU en-US collation."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        service_missing("needs PostgreSQL (DATABASE_URL=postgres://...) to create an ICU database")
    name = f"versions_icu_{os.getpid()}"
    column_type = ReleaseVersion._meta.get_field("version_order").db_type(connection)
    with _connect("postgres") as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' {ICU_EN_US}")
        try:
            with _connect(name) as icu:
                provider, locale = icu.execute(
                    "SELECT datlocprovider, daticulocale FROM pg_database WHERE datname = current_database()"
                ).fetchone()
                assert (provider, locale) == ("i", "en-US")
                icu.execute(f"CREATE TABLE versions (version text PRIMARY KEY, sort_key {column_type} NOT NULL)")
                yield icu
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_order(icu: psycopg.Connection, versions: list[str]) -> list[str]:
    icu.execute("TRUNCATE versions")
    with icu.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO versions (version, sort_key) VALUES (%s, %s)", [(v, version_sort_key(v)) for v in versions]
        )
    return [row[0] for row in icu.execute("SELECT version FROM versions ORDER BY sort_key").fetchall()]


def semver_order(versions: list[str]) -> list[str]:
    return sorted(versions, key=functools.cmp_to_key(lambda a, b: semver.Version.parse(a).compare(b)))


def test_the_icu_database_really_reorders_punctuation(icu_database: psycopg.Connection) -> None:
    # What broke the old keys ("...~" for a release, "...!" for a pre-release): not ASCII order.
    ordered = icu_database.execute("SELECT k FROM unnest(ARRAY['a.~', 'a.1!']) AS k ORDER BY k").fetchall()
    assert [row[0] for row in ordered] == ["a.~", "a.1!"]


def test_precedence_table_is_the_icu_database_order(icu_database: psycopg.Connection) -> None:
    assert database_order(icu_database, list(reversed(PRECEDENCE))) == PRECEDENCE
    with_longest = [*PRECEDENCE, LONGEST]
    assert database_order(icu_database, with_longest) == semver_order(with_longest)


_number = st.one_of(st.integers(0, 12), st.integers(0, 10**20)).map(str)
_numeric_identifier = st.one_of(st.integers(0, 12), st.integers(0, 10**12)).map(str)
# Few characters, so that generated identifiers share prefixes and hyphens often.
_alphanumeric_identifier = st.text(alphabet="-0123aAbzZ", min_size=1, max_size=6).filter(lambda s: not s.isdigit())
_prerelease = st.lists(st.one_of(_numeric_identifier, _alphanumeric_identifier), max_size=4)


@st.composite
def versions(draw: st.DrawFn) -> str:
    core = ".".join(draw(_number) if draw(st.booleans()) else draw(st.sampled_from("0123")) for _ in range(3))
    identifiers = draw(_prerelease)
    return f"{core}-{'.'.join(identifiers)}" if identifiers else core


_version_lists = st.lists(
    versions().filter(lambda v: len(v) <= MAX_VERSION_LENGTH), min_size=2, max_size=12, unique=True
)


@given(_version_lists)
@hypothesis_settings(max_examples=300, deadline=None, database=None)
def test_sort_key_order_is_semver_order(generated: list[str]) -> None:
    assert sorted(generated, key=version_sort_key) == semver_order(generated)
    assert all(len(version_sort_key(v)) <= SORT_KEY_MAX_LENGTH for v in generated)


@given(_version_lists)
@hypothesis_settings(max_examples=200, deadline=None, database=None)
def test_icu_database_order_is_semver_order(icu_database: psycopg.Connection, generated: list[str]) -> None:
    assert database_order(icu_database, generated) == semver_order(generated)
