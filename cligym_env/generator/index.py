"""Files of the package index by exact name, over its JSON simple API (PEP 691), without starting pip.

`pip download` of an sdist prepares its metadata first (a build environment: about 10 s a project), and every pip
start costs a second; a pack pins each file by name and hash, and a gold needs one known sdist, so the file can be
fetched as it is. An index that does not speak PEP 691, or lacks the file, gives None here and the caller falls
back to pip, whose whole configuration then applies.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urljoin

import requests
from packaging.utils import canonicalize_name

logger = logging.getLogger(__name__)

PYPI = "https://pypi.org/simple"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
TIMEOUT = 60.0


@functools.cache
def index_url() -> str:
    """The index pip would use: $PIP_INDEX_URL, else pip's configured index-url, else PyPI."""
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"]
    try:
        listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                                timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return PYPI
    found = re.findall(r"^\S*\.index-url='([^']+)'$", listed, flags=re.MULTILINE)
    return found[-1] if found else PYPI


_SESSION = requests.Session()  # one TLS set-up for all requests (loading the CA bundle costs 0.1 s each time)


@functools.cache
def files(project: str) -> dict[str, tuple[str, str]]:
    """filename -> (url, sha256) of every file the index lists for `project`; {} where it cannot say."""
    page = f"{index_url().rstrip('/')}/{canonicalize_name(project)}/"
    try:
        response = _SESSION.get(page, headers={"Accept": SIMPLE_JSON}, timeout=TIMEOUT)
        if response.status_code != 200 or not response.headers.get("content-type", "").startswith(SIMPLE_JSON):
            return {}
        listed = response.json()["files"]
        return {f["filename"]: (f["url"] if "://" in f["url"] else urljoin(response.url, f["url"]),
                                f["hashes"]["sha256"]) for f in listed if "sha256" in f.get("hashes", {})}
    except (requests.RequestException, ValueError, KeyError, TypeError) as error:
        logger.info("the index's JSON page of %s is not usable (%s); pip will be asked instead", project, error)
        return {}


def fetch(project: str, filename: str, folder: Path) -> Path | None:
    """`folder/filename` downloaded from the index and checked against the index's own sha256 (None if the index
    lacks it or the download fails). Written under a temporary name first: a reader never sees half a file."""
    listed = files(project).get(filename)
    if listed is None:
        return None
    url, sha256 = listed
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".partial-", delete=False) as partial:
        try:
            with _SESSION.get(url, stream=True, timeout=TIMEOUT) as response:
                response.raise_for_status()
                for chunk in response.iter_content(1 << 16):
                    digest.update(chunk)
                    partial.write(chunk)
        except requests.RequestException as error:
            logger.info("downloading %s failed (%s); pip will be asked instead", filename, error)
            os.unlink(partial.name)
            return None
    if digest.hexdigest() != sha256:
        logger.warning("%s from %s does not have the sha256 the index lists; discarded", filename, url)
        os.unlink(partial.name)
        return None
    os.replace(partial.name, folder / filename)
    return folder / filename
