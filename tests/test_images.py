"""Images: content-addressed tags, build caching, clear errors, idempotent bootstrap."""

from __future__ import annotations

import pytest

from cligym_env.images import BASE_IMAGE, PYTHON_IMAGE, ImageBuildError, bootstrap, build_environment, environment_tag
from cligym_env.tasks import Environment


def test_tag_follows_content():
    one = Environment("FROM x\nRUN true\n", {"a.txt": b"1"})
    assert environment_tag(one) == environment_tag(Environment("FROM x\nRUN true\n", {"a.txt": b"1"}))
    assert environment_tag(one) != environment_tag(Environment("FROM x\nRUN true\n", {"a.txt": b"2"}))
    assert environment_tag(one) != environment_tag(Environment("FROM x\nRUN false\n", {"a.txt": b"1"}))


def test_build_once_then_cached(docker_client):
    environment = Environment(f"FROM {BASE_IMAGE}\nCOPY hello.txt /hello.txt\n", {"hello.txt": b"hi from test"})
    tag = environment_tag(environment)
    if any(tag in image.tags for image in docker_client.images.list()):
        docker_client.images.remove(tag, force=True)
    logs: list[str] = []
    assert build_environment(docker_client, environment, log=logs.append) == tag
    assert logs, "the first call builds"
    logs.clear()
    assert build_environment(docker_client, environment, log=logs.append) == tag
    assert not logs, "the second call reuses the image"
    assert docker_client.containers.run(tag, ["cat", "/hello.txt"], remove=True) == b"hi from test"
    docker_client.images.remove(tag, force=True)


def test_missing_base_image_says_how_to_build_it(docker_client):
    with pytest.raises(ImageBuildError, match="task demo: .*FROM cligym/nothing:here.*cligym images bootstrap"):
        build_environment(docker_client, Environment("FROM cligym/nothing:here\n"), what="task demo")


def test_failing_build_shows_the_log(docker_client):
    broken = Environment(f"FROM {BASE_IMAGE}\nRUN echo about-to-fail && exit 3\n")
    with pytest.raises(ImageBuildError, match="(?s)task bad: docker build failed.*about-to-fail"):
        build_environment(docker_client, broken, what="task bad")


def test_bootstrap_is_idempotent(docker_client):
    lines: list[str] = []
    assert bootstrap(docker_client, log=lines.append) == [BASE_IMAGE, PYTHON_IMAGE]
    assert lines == []  # both images exist: nothing is built again
