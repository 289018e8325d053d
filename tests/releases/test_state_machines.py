"""The three state machines are exactly the spec's graphs (plus ``retry``), every other move is
refused, transitions are recorded, and concurrent transitions have exactly one winner."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.utils import timezone
from django_fsm import TransitionNotAllowed
from django_fsm.signals import pre_transition

from releases.choices import ChartState, ImageState, ReleaseState
from releases.models import DockerImage, HelmChart, ReleaseVersion, StateTransition
from releases.transitions import TransitionRefused, fire_transition
from tests.fixtures.factories import digest_of, make_chart, make_image, make_published_set, make_release

IS, CS, RS = ImageState, ChartState, ReleaseState

GRAPHS = {
    DockerImage: {
        (IS.QUEUED, "start_build"): IS.BUILDING,
        (IS.BUILDING, "start_scan"): IS.SCANNING,
        (IS.SCANNING, "start_push"): IS.PUSHING,
        (IS.PUSHING, "mark_available"): IS.AVAILABLE,
        (IS.QUEUED, "fail"): IS.FAILED,
        (IS.BUILDING, "fail"): IS.FAILED,
        (IS.SCANNING, "fail"): IS.FAILED,
        (IS.PUSHING, "fail"): IS.FAILED,
        (IS.FAILED, "retry"): IS.QUEUED,
    },
    HelmChart: {
        (CS.VALIDATING, "start_packaging"): CS.PACKAGING,
        (CS.PACKAGING, "start_upload"): CS.UPLOADING,
        (CS.UPLOADING, "mark_indexed"): CS.INDEXED,
        (CS.VALIDATING, "reject"): CS.INVALID,
        (CS.PACKAGING, "reject"): CS.INVALID,
        (CS.UPLOADING, "reject"): CS.INVALID,
        (CS.INVALID, "retry"): CS.VALIDATING,
    },
    ReleaseVersion: {
        (RS.DRAFT, "submit"): RS.PENDING,
        (RS.DRAFT, "refuse_plan"): RS.FAILED,  # .release-registry.yaml cannot be used: nothing is planned
        (RS.PENDING, "start_build"): RS.BUILDING,
        (RS.BUILDING, "start_publishing"): RS.PUBLISHING,
        (RS.PUBLISHING, "mark_published"): RS.PUBLISHED,
        (RS.PENDING, "fail"): RS.FAILED,
        (RS.BUILDING, "fail"): RS.FAILED,
        (RS.PUBLISHING, "fail"): RS.FAILED,
        (RS.FAILED, "retry"): RS.PENDING,
    },
}
STATES = {DockerImage: ImageState, HelmChart: ChartState, ReleaseVersion: ReleaseState}


def all_pairs():
    for model, graph in GRAPHS.items():
        transitions = sorted({name for _, name in graph})
        for state in STATES[model].values:
            for name in transitions:
                yield pytest.param(model, state, name, graph.get((state, name)), id=f"{model.__name__}-{state}-{name}")


def row_in_state(model, state):
    """A row in ``state`` whose guards pass, plus the field changes its pushing transitions record."""
    if model is DockerImage:
        return make_image("threek8s-backend", "2.0.0", state), {
            "digest": digest_of("pushed"),
            "size": 42,
            "build_date": timezone.now(),
        }
    if model is HelmChart:
        make_image("threek8s-frontend", "1.0.0", IS.AVAILABLE)
        make_image("threek8s-backend", "1.0.0", IS.AVAILABLE)
        return make_chart("1.0.1", state, app_version="1.0.0"), {"digest": digest_of("chart")}
    release, *_ = make_published_set("1.0.0")
    ReleaseVersion.objects.filter(pk=release.pk).update(state=state)
    return ReleaseVersion.objects.get(pk=release.pk), {}


def test_graphs_are_exactly_the_spec_plus_retry():
    for model, graph in GRAPHS.items():
        declared = {(t.source, t.name, t.target) for t in model._meta.get_field("state").get_all_transitions(model)}
        assert declared == {(source, name, target) for (source, name), target in graph.items()}, model


@pytest.mark.django_db
@pytest.mark.parametrize(("model", "state", "name", "target"), all_pairs())
def test_every_pair_is_allowed_or_refused_as_the_graph_says(model, state, name, target):
    row, changes = row_in_state(model, state)

    if target is None:
        with pytest.raises(TransitionRefused, match=f"cannot {name} from state {state}"):
            fire_transition(model, row.pk, name, changes=changes)
        with pytest.raises(TransitionNotAllowed):
            getattr(model.objects.get(pk=row.pk), name)()
        assert model.objects.get(pk=row.pk).state == state
        assert not StateTransition.objects.exists()
    else:
        fired = fire_transition(model, row.pk, name, task="test", reason="table", changes=changes)
        assert fired.state == target
        assert model.objects.get(pk=row.pk).state == target
        log = StateTransition.objects.get()
        assert (log.source, log.target, log.transition, log.task, log.reason) == (state, target, name, "test", "table")


@pytest.mark.django_db
def test_direct_assignment_to_state_is_refused():
    image = make_image()
    with pytest.raises(AttributeError, match="Direct state modification is not allowed"):
        image.state = ImageState.AVAILABLE
    assert DockerImage.objects.get(pk=image.pk).state == ImageState.QUEUED


@pytest.mark.django_db
def test_chart_cannot_start_packaging_before_its_images_are_available():
    make_image("threek8s-frontend", "1.0.0", IS.AVAILABLE)
    make_image("threek8s-backend", "1.0.0", IS.PUSHING)
    chart = make_chart("1.0.0")

    with pytest.raises(TransitionRefused) as refused:
        fire_transition(HelmChart, chart.pk, "start_packaging")

    assert refused.value.reasons == [
        "image threek8s-backend:1.0.0 is pushing, not available; charts are published only after their images"
    ]
    assert HelmChart.objects.get(pk=chart.pk).state == CS.VALIDATING


@pytest.mark.django_db
def test_release_is_never_published_without_artifacts():
    release = make_release("1.0.0")
    ReleaseVersion.objects.filter(pk=release.pk).update(state=RS.PUBLISHING)

    with pytest.raises(TransitionRefused) as refused:
        fire_transition(ReleaseVersion, release.pk, "mark_published")

    assert "release 1.0.0 has no artifacts" in refused.value.reasons[0]
    assert ReleaseVersion.objects.get(pk=release.pk).state == RS.PUBLISHING


@pytest.mark.django_db
def test_image_cannot_become_available_without_push_results():
    image = make_image(state=IS.PUSHING)
    with pytest.raises(TransitionRefused) as refused:
        fire_transition(DockerImage, image.pk, "mark_available")
    assert "the index digest is not recorded yet; push the image index first" in refused.value.reasons
    assert DockerImage.objects.get(pk=image.pk).state == IS.PUSHING


@pytest.mark.django_db
def test_failing_records_the_reason():
    image = make_image(state=IS.BUILDING)
    fire_transition(DockerImage, image.pk, "fail", task="build", reason="COPY failed: file not found")
    image.refresh_from_db()
    assert image.failure_reason == "COPY failed: file not found"
    assert image.state_transitions.get().reason == "COPY failed: file not found"


RACES = [
    pytest.param(DockerImage, IS.QUEUED, "start_build", IS.BUILDING, id="image-start_build"),
    pytest.param(HelmChart, CS.UPLOADING, "reject", CS.INVALID, id="chart-reject"),
    pytest.param(ReleaseVersion, RS.FAILED, "retry", RS.PENDING, id="release-retry"),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("model", "state", "name", "target"), RACES)
def test_concurrent_transitions_have_exactly_one_winner(postgres_only, model, state, name, target):
    # Given a row, and two workers that have both loaded it before either writes
    row, _ = row_in_state(model, state)
    both_loaded = threading.Barrier(2, timeout=10)

    def wait_for_the_other(sender, instance, **kwargs):
        if instance.pk == row.pk:
            both_loaded.wait()

    pre_transition.connect(wait_for_the_other)
    outcomes: dict[str, str] = {}

    def worker(label: str) -> None:
        try:
            fire_transition(model, row.pk, name, task=label)
            outcomes[label] = "won"
        except TransitionRefused as refused:
            outcomes[label] = "; ".join(refused.reasons)
        finally:
            connection.close()

    # When both fire the same transition at once, each on its own database connection
    threads = [threading.Thread(target=worker, args=(f"worker-{i}",)) for i in (1, 2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
    finally:
        pre_transition.disconnect(wait_for_the_other)

    # Then exactly one wins, the other is refused, and one transition is recorded
    assert sorted(outcomes.values())[-1] == "won"
    assert list(outcomes.values()).count("won") == 1, outcomes
    loser = next(v for v in outcomes.values() if v != "won")
    assert f"another worker moved it out of {state} first" in loser
    assert model.objects.get(pk=row.pk).state == target
    assert StateTransition.objects.filter(object_id=row.pk, transition=name).count() == 1


def test_readme_state_diagrams_are_drawn_from_the_models():
    from pathlib import Path

    from releases.management.commands.state_diagrams import diagrams

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert diagrams() in readme, "README's state diagrams are stale: paste `manage.py state_diagrams`"
