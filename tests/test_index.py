"""Files straight from the package index (PyPI itself), and the fall-back to pip where the index cannot say."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cligym_env.generator import index, wheelhouse

SDIST = "iniconfig-2.0.0.tar.gz"


@pytest.fixture(autouse=True)
def _fresh_listings():
    index.files.cache_clear()
    yield
    index.files.cache_clear()  # after monkeypatch has put the real function back (it was set up later)


def test_a_pinned_sdist_comes_from_the_index_with_its_listed_hash(tmp_path: Path) -> None:
    url, sha256 = index.files("iniconfig")[SDIST]
    path = index.fetch("IniConfig", SDIST, tmp_path)  # any spelling of the name: the index canonicalizes it
    assert path == tmp_path / SDIST and hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    assert url.startswith("https://") and not list(tmp_path.glob(".partial-*"))


def test_a_file_whose_bytes_differ_from_the_listed_hash_is_discarded(tmp_path: Path) -> None:
    index.files("iniconfig")[SDIST] = (index.files("iniconfig")[SDIST][0], "0" * 64)  # the cached listing, forged
    assert index.fetch("iniconfig", SDIST, tmp_path) is None and not list(tmp_path.iterdir())


def test_an_index_without_json_pages_gives_nothing_and_pip_is_asked(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(index, "index_url", lambda: "https://pypi.org/no-such-index")
    assert index.files("iniconfig") == {} and index.fetch("iniconfig", SDIST, tmp_path) is None
    monkeypatch.setattr(wheelhouse.paths, "cache_dir", lambda: tmp_path / "cache")
    asked = []
    monkeypatch.setattr(wheelhouse, "_pip", lambda *args: asked.append(args) or _pip_failed())
    with pytest.raises(Exception, match="iniconfig==2.0.0"):
        wheelhouse.fetch_sdist("iniconfig", "2.0.0")
    assert asked and asked[0][0] == "download"


def test_the_gold_builder_takes_the_release_sdist_from_the_index(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(wheelhouse.paths, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(wheelhouse, "_pip", lambda *args: pytest.fail(f"pip was started: {args}"))
    assert wheelhouse.fetch_sdist("iniconfig", "2.0.0").name == SDIST


def test_pip_configuration_names_the_index(monkeypatch) -> None:
    index.index_url.cache_clear()
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    try:
        assert index.index_url() == "https://mirror.example/simple"
    finally:
        index.index_url.cache_clear()


def _pip_failed():
    import subprocess

    return subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution found for iniconfig==2.0.0")
