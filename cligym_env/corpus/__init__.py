"""Task packs: a generated corpus shipped as text (pack.py), built from a registry (build.py), installed into a
registry without Docker (install.py), with its quality report (report.py)."""

from cligym_env.corpus.pack import PACKS_DIR, SPLITS, Pack, load_pack

__all__ = ["PACKS_DIR", "SPLITS", "Pack", "load_pack"]
