"""Images: content-addressed tags, build caching, clear errors, idempotent bootstrap."""

from __future__ import annotations

import logging

import pytest

from cligym_env.images import BASE_IMAGE, PYTHON_IMAGE, ImageBuildError, bootstrap, build_environment, environment_tag
from cligym_env.runtime.sandbox import Sandbox
from cligym_env.tasks import Environment


def read_from_image(client, image: str, path: str) -> bytes | None:
    with Sandbox(image, client=client) as sandbox:
        return sandbox.read_file(path)


def test_tag_follows_content():
    one = Environment("FROM x\nRUN true\n", {"a.txt": b"1"})
    assert environment_tag(one) == environment_tag(Environment("FROM x\nRUN true\n", {"a.txt": b"1"}))
    assert environment_tag(one) != environment_tag(Environment("FROM x\nRUN true\n", {"a.txt": b"2"}))
    assert environment_tag(one) != environment_tag(Environment("FROM x\nRUN false\n", {"a.txt": b"1"}))


def test_build_once_then_cached(docker_client, caplog):
    environment = Environment(f"FROM {BASE_IMAGE}\nCOPY hello.txt /hello.txt\n", {"hello.txt": b"hi from test"})
    tag = environment_tag(environment)
    if any(tag in image.tags for image in docker_client.images.list()):
        docker_client.images.remove(tag, force=True)
    caplog.set_level(logging.DEBUG, logger="cligym_env.images.build")
    assert build_environment(docker_client, environment) == tag
    assert any("COPY hello.txt" in record.getMessage() for record in caplog.records), "the first call builds"
    caplog.clear()
    assert build_environment(docker_client, environment) == tag
    assert not caplog.records, "the second call reuses the image"
    assert read_from_image(docker_client, tag, "/hello.txt") == b"hi from test"
    docker_client.images.remove(tag, force=True)


def test_missing_base_image_says_how_to_build_it(docker_client):
    with pytest.raises(ImageBuildError, match="task demo: .*FROM cligym/nothing:here.*cligym images bootstrap"):
        build_environment(docker_client, Environment("FROM cligym/nothing:here\n"), what="task demo")


def test_failing_build_shows_the_log(docker_client):
    broken = Environment(f"FROM {BASE_IMAGE}\nRUN echo about-to-fail && exit 3\n")
    with pytest.raises(ImageBuildError, match="(?s)task bad: docker build failed.*about-to-fail"):
        build_environment(docker_client, broken, what="task bad")


def test_bootstrap_is_idempotent(docker_client, caplog):
    with caplog.at_level(logging.DEBUG, logger="cligym_env.images"):
        assert bootstrap(docker_client) == [BASE_IMAGE, PYTHON_IMAGE]
    assert caplog.messages == []  # both images exist: nothing is built again


def test_missing_base_is_rebuilt_from_its_saved_recipe(docker_client, cligym_home):
    """A task FROM a gold image this host lacks: the gold image is rebuilt from $CLIGYM_HOME/gold first."""
    gold_tag = "cligym/gold-recipe-test:1"
    recipe = cligym_home / "gold" / "demo-1.0"
    (recipe / "environment").mkdir(parents=True)
    (recipe / "gold.toml").write_text(f'project = "demo"\nimage = "{gold_tag}"\n')
    (recipe / "environment" / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY healthy.txt /healthy.txt\n")
    (recipe / "environment" / "healthy.txt").write_text("gold")
    task_environment = Environment(f"FROM {gold_tag}\nRUN echo broken > /healthy.txt\n")
    try:
        tag = build_environment(docker_client, task_environment, what="task demo-broken")
        assert read_from_image(docker_client, tag, "/healthy.txt") == b"broken\n"
        assert read_from_image(docker_client, gold_tag, "/healthy.txt") == b"gold"
    finally:
        for image in (environment_tag(task_environment), gold_tag):
            docker_client.images.remove(image, force=True)
