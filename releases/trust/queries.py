"""The SQL of :mod:`.records`, composed once per database vendor (PostgreSQL and SQLite).

Each statement's text is the same at every call, whatever the number of references: the tags are
one JSON array parameter, the digests one text array on PostgreSQL (:func:`digests_parameter`),
so PostgreSQL keeps one prepared statement of each, planned once per connection. Each image or
chart row carries its release's newest withdrawal record and its open findings as JSON; its
columns are those of :class:`.records.Row`, in order.
"""

from __future__ import annotations

import functools
import json

from django.db import connection

from ..choices import MOVING_TAG, ChartState, ImageState, WithdrawalAction

FINDING_FIELDS = ("type", "severity", "repository", "tag", "expected", "actual", "detail", "first_seen", "last_seen")


def _object(pairs: dict[str, str]) -> str:
    function = "json_build_object" if connection.vendor == "postgresql" else "json_object"
    arguments = ", ".join(f"'{key}', {value}" for key, value in pairs.items())
    return f"{function}({arguments})"


def _utc_text(column: str) -> str:
    """The timestamp ``column`` as ISO 8601 text in UTC on PostgreSQL, which :func:`.records._when` reads in
    C: the loader of timezone-aware timestamps Django gives psycopg is Python (2 us a row)."""
    if connection.vendor != "postgresql":
        return column
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""


def _withdrawal_object(alias: str) -> str:
    """A withdrawal record (table alias ``alias``) as the JSON object :mod:`.records` reads."""
    return _object({field: f"{alias}.{field}" for field in ("action", "reason", "actor", "created")})


def _withdrawal_sql() -> str:
    """The newest withdrawal record of the row's release (``a.release_id``), as a JSON object."""
    return (
        f"(SELECT {_withdrawal_object('w')} FROM releases_releasewithdrawal w WHERE w.release_id = a.release_id "
        "ORDER BY w.sequence DESC LIMIT 1)"
    )


def _newest_withdrawals_join() -> tuple[str, str]:
    """For a batch, what :func:`_withdrawal_sql` answers, as ``(column, join)``: the newest record
    of every release that has one, hashed once and joined on ``a.release_id``, where the subquery
    runs once per row (15% of the batch query's server time at 100 references). Withdrawals are
    few: a row per withdraw or restore."""
    join = (
        "LEFT JOIN (SELECT DISTINCT ON (w.release_id) w.release_id, w.action, w.reason, w.actor, w.created "
        "FROM releases_releasewithdrawal w ORDER BY w.release_id, w.sequence DESC) wd ON wd.release_id = a.release_id"
    )
    return f"CASE WHEN wd.release_id IS NOT NULL THEN {_withdrawal_object('wd')} END", join


def _findings_sql(condition: str) -> str:
    """The open findings matching ``condition`` (over ``f``), as a JSON array, oldest first."""
    record = _object({field: f"f.{field}" for field in FINDING_FIELDS})
    where = f"FROM releases_auditfinding f WHERE f.resolved_at IS NULL AND ({condition})"
    if connection.vendor == "postgresql":
        return f"(SELECT json_agg({record} ORDER BY f.first_seen, f.id) {where})"
    return f"(SELECT json_group_array(json(x)) FROM (SELECT {record} AS x {where} ORDER BY f.first_seen, f.id))"


#: What the latest candidates exclude: the versions withdrawn now (their newest record withdraws).
WITHDRAWN_VERSIONS = (
    "SELECT wr.version FROM releases_releasewithdrawal ww JOIN releases_releaseversion wr ON wr.id = ww.release_id "
    f"WHERE ww.action = '{WithdrawalAction.WITHDRAW}' AND ww.sequence = "
    "(SELECT MAX(w2.sequence) FROM releases_releasewithdrawal w2 WHERE w2.release_id = ww.release_id)"
)


def _image_select(condition: str, *, source: str = "releases_dockerimage", latest: bool = False) -> str:
    """Images matching ``condition`` with their release, its withdrawal and their open findings;
    ``latest``: also the findings of the repository's ``latest`` tag and where a withdrawal's move
    of ``latest`` stands (``LatestTag``)."""
    extra_tags = f" OR f.tag = '{MOVING_TAG}'" if latest else ""
    # The tag first: most open findings fail it, and are spared the concatenation (per image row).
    findings = _findings_sql(
        f"f.docker_image_id = i.id OR ((f.tag = i.tag{extra_tags}) AND f.repository = i.registry || '/' || i.name)"
    )
    moving = (
        f"(SELECT {_object({'state': 'lt.state', 'reason': 'lt.reason'})} FROM releases_latesttag lt "
        "WHERE lt.registry = i.registry AND lt.name = i.name)"
        if latest
        else "NULL"
    )
    return (
        "SELECT i.id, i.registry, i.name, i.tag, i.component, i.state, i.digest, i.platform_digests, "
        f"i.signed_with, i.signatures, a.release_id, r.version, r.state, {_utc_text('r.published_at')}, "
        f"{_withdrawal_sql()}, {findings}, {moving} "
        f"FROM {source} i "
        "LEFT JOIN releases_releaseartifact a ON a.docker_image_id = i.id "
        "LEFT JOIN releases_releaseversion r ON r.id = a.release_id "
        f"WHERE i.state = '{ImageState.AVAILABLE}' AND ({condition})"
    )


def _image_batch_select(condition: str) -> str:
    """What :func:`_image_select` answers (PostgreSQL), for a batch: the images matching ``condition``
    first, then the open findings of all of them at once, by image and by tag, in two hash joins
    over the open findings, where :func:`_image_select` scans the open findings once per image row,
    and the releases' newest withdrawals in one more (:func:`_newest_withdrawals_join`). Those scans
    cost less for a few references; from :data:`.records.BATCH_REFERENCES`, this does."""
    record = _object({field: f"f.{field}" for field in FINDING_FIELDS})
    withdrawal, newest_withdrawals = _newest_withdrawals_join()
    open_finding = "JOIN releases_auditfinding f ON f.resolved_at IS NULL AND"
    # Only the columns read: the others (build log, scan findings, provenance) are large.
    columns = (
        "i.id, i.registry, i.name, i.tag, i.component, i.state, i.digest, i.platform_digests, "
        "i.signed_with, i.signatures"
    )
    return (
        f"WITH i AS MATERIALIZED (SELECT {columns} "
        f"FROM releases_dockerimage i WHERE i.state = '{ImageState.AVAILABLE}' AND ({condition})), "
        f"found AS (SELECT x.image_id, json_agg({record} ORDER BY f.first_seen, f.id) AS findings FROM ("
        f"SELECT i.id AS image_id, f.id AS finding_id FROM i {open_finding} f.docker_image_id = i.id "
        f"UNION SELECT i.id, f.id FROM i {open_finding} f.tag = i.tag AND f.repository = i.registry || '/' || i.name"
        ") x JOIN releases_auditfinding f ON f.id = x.finding_id GROUP BY x.image_id) "
        f"SELECT {columns}, a.release_id, r.version, r.state, {_utc_text('r.published_at')}, "
        f"{withdrawal}, found.findings, NULL "
        "FROM i LEFT JOIN found ON found.image_id = i.id "
        "LEFT JOIN releases_releaseartifact a ON a.docker_image_id = i.id "
        f"LEFT JOIN releases_releaseversion r ON r.id = a.release_id {newest_withdrawals}"
    )


def _wanted_sql() -> str:
    """The (registry, name, tag) triples asked for, as a relation ``w``, from one parameter: a
    JSON array of triples (a list of text dumps element by element in psycopg's Python code,
    JSON in ``json``'s C)."""
    if connection.vendor == "postgresql":
        return "(SELECT e->>0 AS registry, e->>1 AS name, e->>2 AS tag FROM jsonb_array_elements(%s::jsonb) e) AS w"
    return (
        "(SELECT json_extract(value, '$[0]') AS registry, json_extract(value, '$[1]') AS name, "
        "json_extract(value, '$[2]') AS tag FROM json_each(%s)) AS w"
    )


#: The digests, one parameter: on PostgreSQL a text array (:func:`digests_parameter`), which
#: its index conditions take as it is, where unnesting a JSON array cost each condition a subplan.
_DIGESTS = "%s::text[]"


def digests_parameter(digests: list[str], vendor: str) -> str:
    """The digests as :func:`_digest_in` and :func:`_platform_condition` take them: a PostgreSQL
    array literal (built here: psycopg dumps a list element by element in Python), else JSON."""
    if vendor != "postgresql":
        return json.dumps(digests)
    quoted = ('"' + digest.replace("\\", "\\\\").replace('"', '\\"') + '"' for digest in digests)
    return "{" + ",".join(quoted) + "}"


def _digest_in(column: str) -> str:
    """``column`` is one of the digests (one parameter, :func:`digests_parameter`)."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY({_DIGESTS})"
    return f"{column} IN (SELECT value FROM json_each(%s))"


def _platform_condition() -> str:
    """Rows (``p``) whose ``platform_digests`` ({platform: {"digest": ...}}) hold one of the
    digests: on PostgreSQL the expression the GIN index of migration 0023 is built on."""
    if connection.vendor == "postgresql":
        return f"jsonb_path_query_array(p.platform_digests, '$.*.digest') ?| {_DIGESTS}"
    return (
        "EXISTS (SELECT 1 FROM json_each(p.platform_digests) pd "
        "WHERE json_extract(pd.value, '$.digest') IN (SELECT value FROM json_each(%s)))"
    )


@functools.cache
def statements(vendor: str) -> dict[str, str]:
    """The queries of :func:`.records.gather`, composed once per database vendor: the same text at every
    call, whatever the number of references (each list is one array parameter), so PostgreSQL keeps
    one prepared statement of each. ``images_batch`` answers what ``images`` does, for batches."""
    by_digest, by_tag, by_platform = (
        f"SELECT d.id FROM releases_dockerimage d WHERE {_digest_in('d.digest')}",
        f"SELECT t.id FROM {_wanted_sql()} JOIN releases_dockerimage t "
        "ON t.tag = w.tag AND t.name = w.name AND t.registry = w.registry",
        f"SELECT p.id FROM releases_dockerimage p WHERE {_platform_condition()}",
    )
    if vendor == "postgresql":
        # The ids as an array the primary key's index scan takes (it skips duplicates itself):
        # no hash aggregate and semi-join to set up at every review.
        wanted_images = f"i.id = ANY(ARRAY({by_digest} UNION ALL {by_tag} UNION ALL {by_platform}))"
    else:
        wanted_images = f"i.id IN ({by_digest} UNION {by_tag} UNION {by_platform})"
    images = _image_select(wanted_images)
    images_batch = _image_batch_select(wanted_images) if vendor == "postgresql" else images
    charts = _chart_select(
        "h.id IN ("
        f"SELECT d.id FROM releases_helmchart d WHERE {_digest_in('d.digest')} "
        f"UNION SELECT t.id FROM {_wanted_sql()} JOIN releases_helmchart t "
        "ON t.chart_version = w.tag AND t.name = w.name AND t.registry = w.registry)"
    )
    # Per repository, the highest published version that is neither a pre-release nor withdrawn.
    dash = "strpos(c.tag, '-')" if vendor == "postgresql" else "instr(c.tag, '-')"
    ranked = (
        "(SELECT * FROM (SELECT c.*, ROW_NUMBER() OVER (PARTITION BY c.registry, c.name ORDER BY c.tag_order DESC) "
        f"AS newest FROM releases_dockerimage c WHERE c.state = '{ImageState.AVAILABLE}' AND c.tag <> '{MOVING_TAG}' "
        f"AND {dash} = 0 AND c.tag NOT IN ({WITHDRAWN_VERSIONS}) AND EXISTS (SELECT 1 FROM {_wanted_sql()} "
        "WHERE w.registry = c.registry AND w.name = c.name)) candidates WHERE newest = 1)"
    )
    latest = _image_select("1 = 1", source=ranked, latest=True)
    return {"images": images, "images_batch": images_batch, "charts": charts, "latest": latest}


def _chart_select(condition: str) -> str:
    findings = _findings_sql(
        "f.helm_chart_id = h.id OR (f.tag = h.chart_version AND f.repository = h.registry || '/' || h.name)"
    )
    return (
        "SELECT h.id, h.registry, h.name, h.chart_version, 'chart', h.state, h.digest, NULL, h.signed_with, "
        f"h.signatures, a.release_id, r.version, r.state, {_utc_text('r.published_at')}, "
        f"{_withdrawal_sql()}, {findings}, NULL "
        "FROM releases_helmchart h "
        "LEFT JOIN releases_releaseartifact a ON a.helm_chart_id = h.id "
        "LEFT JOIN releases_releaseversion r ON r.id = a.release_id "
        f"WHERE h.state = '{ChartState.INDEXED}' AND ({condition})"
    )
