"""The decisions, as pure functions over parsed references and what we hold (:mod:`.records`).

:func:`assess` says of one reference whether it is ours and, if so, every reason not to trust it:
not published, withdrawn, unsigned where signing is configured, its tag moved in the registry,
a tag and digest that disagree. Verify reports it; :func:`judge_review` turns the assessments of
a review's images into the admission decision (refused, allowed, allowed with warnings) and the
JSONPatch that pins our tags.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..charts.images import allowed_by
from .admission import AdmissionRequest
from .records import CHART, INDEX, PLATFORM, ArtifactRecord, Finding, Records, Withdrawal
from .references import MOVING_TAG, Reference, ReferenceInvalid


@dataclass(frozen=True)
class Policy:
    """The settings a decision depends on (``REGISTRY_NAMESPACE``, ``SIGNING_KEY``, the trusted
    key ids, ``ADMISSION_ALLOWED_IMAGES``, ``ADMISSION_WARN_NAMESPACES``, ``ADMISSION_PIN_NAMESPACES``)."""

    namespace: str
    signing_required: bool = False
    trusted_keys: frozenset[str] = frozenset()
    allowed_images: tuple[str, ...] = ()
    warn_namespaces: tuple[str, ...] = ()
    pin_namespaces: tuple[str, ...] = ()

    def warns_in(self, namespace: str) -> bool:
        return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.warn_namespaces)

    def pins_in(self, namespace: str) -> bool:
        return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.pin_namespaces)


class Assessment(NamedTuple):
    """One reference judged: ``record`` is the artifact it names (``None``: not ours),
    ``problems`` every reason it is not to be trusted (empty: verified). A named tuple, like
    :class:`.records.ArtifactRecord`: a batch makes one per reference."""

    written: str
    reference: Reference | None
    ours: bool
    record: ArtifactRecord | None = None
    problems: tuple[str, ...] = ()
    signed: bool = False
    withdrawal: Withdrawal | None = None
    moved: Finding | None = None
    findings: tuple[Finding, ...] = ()

    @property
    def verified(self) -> bool:
        return self.ours and not self.problems


def _short(digest: str) -> str:
    return digest[:19] if digest.startswith("sha256:") else digest


def _unknown(reference: Reference, records: Records) -> str:
    if reference.digest:
        elsewhere = [r for r in records.by_digest.get(reference.digest, ()) if r.repository != reference.repository]
        if elsewhere:
            return f"unknown: {reference.digest} is ours, but in {elsewhere[0].repository}, not {reference.repository}"
        return f"unknown: we never published {reference.digest} in {reference.repository}"
    tag = reference.effective_tag
    if tag == MOVING_TAG:
        return (
            f"unknown: no version of {reference.repository} is published and not withdrawn, "
            f"so {MOVING_TAG} names nothing we stand behind"
        )
    return f"unknown: we never published {reference.repository}:{tag}"


def assess(reference: Reference, records: Records, policy: Policy) -> Assessment:
    """Whether ``reference`` is ours, and every reason not to trust it (see the module docstring)."""
    if reference.repository and not reference.under(policy.namespace):
        return Assessment(reference.written, reference, ours=False, problems=(f"not ours: outside {policy.namespace}",))
    record = records.resolve(reference)
    if record is None:
        return Assessment(reference.written, reference, ours=False, problems=(_unknown(reference, records),))
    problems: list[str] = []
    if reference.tag and reference.digest:
        recorded = records.tag_digest(record.repository, reference.tag)
        if recorded != record.index_digest:
            problems.append(
                f"tag and digest disagree: {reference.tag} is recorded as "
                f"{recorded or 'nothing of ours'}, and {_short(reference.digest)}… is {record.tag}"
            )
    if not record.published:
        if record.release_state:
            problems.append(f"not published: release {record.release} is {record.release_state}")
        else:
            problems.append(f"not published: {record.repository}:{record.tag} belongs to no published release")
    withdrawal = records.withdrawal_of(record)
    if withdrawal is not None:
        problems.append(f"withdrawn: release {record.release} was withdrawn ({withdrawal.reason})")
    signed = bool(record.signature) and record.signed_with in policy.trusted_keys
    if policy.signing_required and not signed:
        why = "no signature is recorded" if not record.signature else "its signature is by a key we do not trust"
        problems.append(f"unsigned: {why} for {record.digest}")
    moved = None
    if not reference.digest and reference.repository:
        if reference.effective_tag == MOVING_TAG and record.repository in records.latest_moving:
            problems.append(
                f"tag moved: {MOVING_TAG} is not yet where the last withdrawal or restore puts it "
                f"({records.latest_moving[record.repository]}); name the version or its digest"
            )
        moved = records.moved(record.repository, reference.effective_tag)
        if moved is not None:
            problems.append(
                f"tag moved: the registry was last seen answering {moved.actual or 'nothing'} for "
                f"{reference.effective_tag}, not the recorded {moved.expected}"
            )
    return Assessment(
        reference.written,
        reference,
        ours=True,
        record=record,
        problems=tuple(problems),
        signed=signed,
        withdrawal=withdrawal,
        moved=moved,
        findings=tuple(records.findings_of(record)),
    )


def invalid(written: str, error: ReferenceInvalid) -> Assessment:
    return Assessment(written, None, ours=False, problems=(f"does not parse: {error}",))


# -- admission ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageJudgement:
    """One container image of a review: ``refusal`` is why it may not run (empty: it may);
    ``pin`` the ``tag@digest`` form the mutating webhook writes (empty: leave it)."""

    where: str
    image: str
    pointer: str
    refusal: str = ""
    warning: str = ""
    pin: str = ""


@dataclass(frozen=True)
class ReviewDecision:
    """The answer to a review: ``allowed``, the refusal ``message`` (each image and why),
    ``warnings``, the JSONPatch operations, and ``outcome`` for the log and the metrics
    (``allowed``, ``refused``, ``warned``: refused but answered allowed in a warn namespace)."""

    allowed: bool
    outcome: str
    message: str = ""
    warnings: tuple[str, ...] = ()
    patch: tuple[dict[str, Any], ...] = ()
    images: tuple[ImageJudgement, ...] = field(default_factory=tuple)


def _judge_image(
    written: str, parsed: Reference | ReferenceInvalid, records: Records, policy: Policy
) -> tuple[str, str]:
    """``(refusal, pin)`` of one image."""
    if not written.strip():
        return "the container has no image", ""
    if isinstance(parsed, ReferenceInvalid):
        return f"does not parse: {parsed}", ""
    if not parsed.under(policy.namespace):
        if allowed_by(written, policy.allowed_images):
            return "", ""
        return f"outside {policy.namespace} and not allowed by ADMISSION_ALLOWED_IMAGES", ""
    assessment = assess(parsed, records, policy)
    if assessment.problems:
        return "; ".join(assessment.problems), ""
    pin = ""
    if not parsed.digest and assessment.record is not None:
        tagged = written if parsed.tag else f"{written}:{MOVING_TAG}"
        pin = f"{tagged}@{assessment.record.index_digest}"
    return "", pin


def judge_review(
    request: AdmissionRequest,
    parsed: Mapping[str, Reference | ReferenceInvalid],
    records: Records,
    policy: Policy,
    *,
    pin: bool = False,
) -> ReviewDecision:
    """The admission decision for ``request`` (``parsed``: each image as written, parsed).

    Every image under the namespace must be ours, published, not withdrawn, signed where signing
    is configured and, named by tag, at the digest we recorded; any other image must match
    ``ADMISSION_ALLOWED_IMAGES``. On an UPDATE, an image the old object already ran is judged
    but not refused (a warning): removing a finalizer or a label from a running workload whose
    release was since withdrawn must not be blocked. A refusal in a warn namespace is answered
    allowed with warnings. ``dryRun`` reviews are judged alike. ``pin``: the JSONPatch replacing
    each of our images named by tag only with ``tag@digest``.
    """
    if not request.inspected:
        return ReviewDecision(True, "allowed", warnings=(f"{request.kind} is not inspected by the release registry",))
    judged = []
    for image in request.images:
        refusal, pinned = _judge_image(image.reference, parsed.get(image.reference), records, policy)
        warning = ""
        if refusal and request.operation == "UPDATE" and image.reference in request.previous:
            warning = f"{image.where}: {image.reference}: {refusal} (already running, not refused on update)"
            refusal = ""
        judged.append(ImageJudgement(image.where, image.reference, image.pointer, refusal, warning, pinned))
    refusals = [f"{j.where}: {j.image or '(none)'}: {j.refusal}" for j in judged if j.refusal]
    warnings = [j.warning for j in judged if j.warning]
    patch = tuple({"op": "replace", "path": j.pointer, "value": j.pin} for j in judged if pin and j.pin)
    what = f"{request.kind} {request.namespace}/{request.name}".replace(" /", " ")
    if not refusals:
        return ReviewDecision(True, "allowed", warnings=tuple(warnings), patch=patch, images=tuple(judged))
    message = f"{what} refused by the release registry: " + "; ".join(refusals)
    if policy.warns_in(request.namespace):
        return ReviewDecision(
            True, "warned", message=message, warnings=tuple([*refusals, *warnings]), patch=patch, images=tuple(judged)
        )
    return ReviewDecision(
        False, "refused", message=message, warnings=tuple(warnings), patch=patch, images=tuple(judged)
    )


def parse_all(written: Iterable[str], **options: bool) -> dict[str, Reference | ReferenceInvalid]:
    """Each distinct reference parsed, or the error saying why it does not parse."""
    from .references import parse_reference

    parsed: dict[str, Reference | ReferenceInvalid] = {}
    for text in written:
        if text in parsed:
            continue
        try:
            parsed[text] = parse_reference(text, **options)
        except ReferenceInvalid as error:
            parsed[text] = error
    return parsed


__all__ = [
    "CHART",
    "INDEX",
    "PLATFORM",
    "Assessment",
    "ImageJudgement",
    "Policy",
    "ReviewDecision",
    "assess",
    "invalid",
    "judge_review",
    "parse_all",
]
