"""Shared by the routing tests: a client key, its fingerprint, a config writer."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

KEY_A = "sk-ant-api03-client-a"
FP_A = "sha256:" + hashlib.sha256(KEY_A.encode()).hexdigest()[:16]


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)
