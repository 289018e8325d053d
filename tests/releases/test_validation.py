"""Every validation rule of the spec, with a valid and an invalid case; the model and the admin
refuse the same input with the same words."""

from __future__ import annotations

import json

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import RequestFactory

from releases.admin.charts import ChartDependencyInline
from releases.choices import ChartState, ImageState
from releases.models import (
    ChartDependency,
    DockerImage,
    EnvironmentVariable,
    HelmChart,
    ReleaseArtifact,
    ReleaseVersion,
)
from tests.fixtures.factories import COMMIT, digest_of, make_chart, make_image, make_release

pytestmark = pytest.mark.django_db

NS = "ghcr.io/stianfro/threek8s"
GOOD_DIGEST = digest_of("x")


def base_values(model, context):
    if model is DockerImage:
        return {"name": "threek8s-backend", "tag": "3.0.0", "registry": NS, "architecture": ["amd64", "arm64"]}
    if model is HelmChart:
        return {"name": "threek8s", "chart_version": "1.0.0", "app_version": "1.0.0", "registry": f"{NS}/chart"}
    if model is ReleaseVersion:
        return {"version": "2.0.0", "commit_sha": COMMIT, "pr_number": 7}
    if model is EnvironmentVariable:
        return {"name": "API_URL", "default_value": "http://x", "description": "where", "scope": "both"}
    if model is ChartDependency:
        return {"chart": context["chart"], "name": "redis", "version": "^20.0.0", "repository": "oci://r.io/c"}
    if model is ReleaseArtifact:
        image = context["image"]
        return {
            "release": context["release"],
            "type": "docker-backend",
            "docker_image": image,
            "uri": image.pinned_uri,
            "checksum": image.digest,
            "size": 10,
        }
    raise AssertionError(model)


def as_form_data(values):
    data = {}
    for key, value in values.items():
        if hasattr(value, "pk"):
            data[key] = value.pk
        elif isinstance(value, (list, dict)):
            data[key] = json.dumps(value)
        elif isinstance(value, bool):
            if value:
                data[key] = "on"
        else:
            data[key] = value
    return data


@pytest.fixture
def context(db):
    release = make_release("1.0.0")
    image = make_image("threek8s-backend", "1.0.0", ImageState.AVAILABLE)
    make_image("threek8s-frontend", "1.0.0", ImageState.AVAILABLE)
    chart = make_chart("1.0.0")
    return {"release": release, "image": image, "chart": chart}


# (model, overrides, field with the error or None when valid, words the message must contain)
RULES = [
    # DockerImage: tag is semver or "latest"
    (DockerImage, {"tag": "1.4.0"}, None, ""),
    (DockerImage, {"tag": "latest"}, None, ""),
    (DockerImage, {"tag": "v1.4"}, "tag", "neither a semantic version"),
    (DockerImage, {"tag": "1.0.0+build.1"}, "tag", "use a pre-release such as 1.0.0-build.1"),
    # DockerImage: registry valid and under the namespace
    (DockerImage, {"registry": f"{NS}/sub"}, None, ""),
    (DockerImage, {"registry": "docker.io/library"}, "registry", "outside the registry namespace"),
    (DockerImage, {"registry": "not a url"}, "registry", "not a valid registry location"),
    # DockerImage: architectures include amd64, known platforms only
    (DockerImage, {"architecture": ["amd64"]}, None, ""),
    (DockerImage, {"architecture": ["arm64"]}, "architecture", "must include amd64"),
    (DockerImage, {"architecture": ["amd64", "sparc"]}, "architecture", "unknown architecture(s) sparc"),
    (DockerImage, {"name": "Threek8s Backend"}, "name", "not a valid repository name"),
    # HelmChart: semver versions; app version refers to existing images
    (HelmChart, {"chart_version": "1.0"}, "chart_version", "not a semantic version"),
    (HelmChart, {"app_version": "latest"}, "app_version", "not a semantic version"),
    (HelmChart, {"chart_version": "1.0.0+b"}, "chart_version", "cannot be part of an image or chart tag"),
    (HelmChart, {"app_version": "9.9.9", "chart_version": "9.9.9"}, "app_version", "does not exist"),
    (HelmChart, {"registry": "quay.io/x/chart"}, "registry", "outside the registry namespace"),
    # ReleaseVersion: semver, full git hash
    (ReleaseVersion, {"version": "2.0.0-rc.1"}, None, ""),
    (ReleaseVersion, {"version": "2.0"}, "version", "not a semantic version"),
    (ReleaseVersion, {"version": "2.0.0+build.1"}, "version", "Release Please never writes build metadata"),
    (ReleaseVersion, {"version": "2.0.0-" + "a" * 122}, None, ""),  # 128 characters: the longest tag
    (ReleaseVersion, {"commit_sha": "abc1234"}, "commit_sha", "not a full git commit hash"),
    (ReleaseVersion, {"commit_sha": "A" * 40}, "commit_sha", "not a full git commit hash"),
    (ReleaseVersion, {"pr_number": 0}, "pr_number", "positive pull request number"),
    # EnvironmentVariable: UPPER_SNAKE_CASE, description, default unless required
    (EnvironmentVariable, {"name": "NODE_ENV"}, None, ""),
    (EnvironmentVariable, {"name": "apiUrl"}, "name", "not UPPER_SNAKE_CASE"),
    (EnvironmentVariable, {"name": "API__URL"}, "name", "not UPPER_SNAKE_CASE"),
    (EnvironmentVariable, {"description": ""}, "description", "describe what API_URL configures"),
    (EnvironmentVariable, {"default_value": ""}, "default_value", "needs a default value"),
    (EnvironmentVariable, {"default_value": "", "required": True}, None, ""),
    # ChartDependency: version constraint and repository URL
    (ChartDependency, {"version": "~15.x"}, None, ""),
    (ChartDependency, {"version": "whatever"}, "version", "not a version constraint"),
    (ChartDependency, {"repository": "ftp//nope"}, "repository", "not a chart repository URL"),
    # ReleaseArtifact: checksum, URI, size, type consistency, same version
    (ReleaseArtifact, {"checksum": "sha256:1234"}, "checksum", "not a SHA-256 digest"),
    (ReleaseArtifact, {"checksum": GOOD_DIGEST}, "checksum", "differs from the artifact's digest"),
    (ReleaseArtifact, {"uri": "docker.io/x/y@" + GOOD_DIGEST}, "uri", "outside the registry namespace"),
    (ReleaseArtifact, {"size": 0}, "size", "positive"),
    (ReleaseArtifact, {"type": "docker-frontend"}, "docker_image", "points at threek8s-frontend"),
    (ReleaseArtifact, {"type": "helm-chart"}, "helm_chart", "must point at a Helm chart"),
]


def model_errors(model, values):
    try:
        model(**values).full_clean()
    except ValidationError as error:
        return error.message_dict
    return {}


def admin_form_class(model, request, values):
    if model is ChartDependency:
        # Dependencies are edited inline on their chart.
        inline = ChartDependencyInline(HelmChart, admin.site)
        return inline.get_formset(request, values["chart"]).form
    return admin.site._registry[model].get_form(request, None)


def admin_errors(model, values):
    request = RequestFactory().get("/")
    request.user = User(is_superuser=True, is_staff=True)
    form_class = admin_form_class(model, request, values)
    data = as_form_data({k: v for k, v in values.items() if k in form_class.base_fields})
    if model is ReleaseVersion:
        data.update({"release_date_0": "2026-11-26", "release_date_1": "10:00:00"})
    form = form_class(data=data)
    form.is_valid()
    return {field: list(messages) for field, messages in form.errors.items()}


@pytest.mark.parametrize(("model", "overrides", "field", "words"), RULES)
def test_rule_is_enforced_alike_by_model_and_admin(context, model, overrides, field, words):
    values = {**base_values(model, context), **overrides}

    errors = model_errors(model, values)
    form_errors = admin_errors(model, values)

    if field is None:
        assert errors == {}
        assert form_errors == {}
    else:
        assert field in errors, errors
        assert any(words in message for message in errors[field]), errors[field]
        assert form_errors.get(field) == errors[field]


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("size", 0, "positive number of bytes"),
        ("digest", "sha256:ABC", "not a SHA-256 digest"),
        ("digest", "md5:" + "a" * 32, "not a SHA-256 digest"),
    ],
)
def test_pipeline_only_image_fields_are_validated(field, value, words):
    errors = model_errors(DockerImage, {"name": "threek8s-backend", "tag": "1.0.0", field: value})
    assert any(words in message for message in errors[field])


def test_available_image_requires_what_only_a_push_knows(db):
    errors = model_errors(DockerImage, {"name": "threek8s-backend", "tag": "1.0.0", "state": ImageState.AVAILABLE})
    assert set(errors) >= {"digest", "size", "build_date"}


def test_indexed_chart_requires_digest(context):
    errors = model_errors(HelmChart, {"chart_version": "1.0.1", "app_version": "1.0.0", "state": ChartState.INDEXED})
    assert "an indexed chart needs the digest" in errors["digest"][0]


def test_image_tag_cannot_be_created_twice(context):
    errors = model_errors(DockerImage, {"name": "threek8s-backend", "tag": "1.0.0"})
    assert "already exists" in errors["__all__"][0]
    assert "publish a new version instead" in errors["__all__"][0]


def test_artifact_version_must_match_release(context):
    other = make_image("threek8s-backend", "1.1.0", ImageState.AVAILABLE)
    values = {
        **base_values(ReleaseArtifact, context),
        "docker_image": other,
        "uri": other.pinned_uri,
        "checksum": other.digest,
    }
    errors = model_errors(ReleaseArtifact, values)
    assert "differs from release 1.0.0" in errors["release"][0]


@pytest.mark.parametrize(
    ("model", "field", "version"),
    [
        (ReleaseVersion, "version", "2.0.0-" + "a" * 123),
        (HelmChart, "chart_version", "2.0.0-" + "a" * 123),
        (DockerImage, "tag", "2.0.0-" + "a" * 123),
    ],
)
def test_a_version_longer_than_an_oci_tag_is_refused_saying_the_limit(context, model, field, version):
    errors = model_errors(model, {**base_values(model, context), field: version})
    assert any("at most 128 characters (the longest tag an OCI registry accepts)" in m for m in errors[field])
