"""The API reference is complete: every public name, and every public method of every
public class, has an entry on a rendered page of the documentation site.

The site is built here as ``make docs`` builds it (strict), into a temporary
directory; a method inherited from a private base must be rendered on each public
class that has it (``inherited_members``), a method of a public base on that base.
"""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import relay_anyio
import relay_anyio.lowlevel
import relay_anyio.testing

ROOT = Path(__file__).resolve().parent.parent
MODULES: tuple[types.ModuleType, ...] = (relay_anyio, relay_anyio.testing, relay_anyio.lowlevel)


def _exported() -> dict[object, str]:
    names: dict[object, str] = {}
    for module in MODULES:
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isclass(value) or inspect.isfunction(value):
                names.setdefault(value, f"{module.__name__}.{name}")
    return names


def _anchors(site: Path) -> set[str]:
    html = "".join(p.read_text() for p in (site / "reference").rglob("index.html"))
    return set(re.findall(r'id="([\w.]+)"', html))


def missing_entries(anchors: set[str]) -> list[str]:
    """Public names and methods without an entry among ``anchors``."""
    exported = _exported()
    missing: list[str] = []
    for value, qualname in exported.items():
        if qualname not in anchors:
            missing.append(qualname)
            continue
        if not inspect.isclass(value):
            continue
        public_bases = [exported[k] for k in value.__mro__ if k in exported]
        for attr in dir(value):
            if attr.startswith("_"):
                continue
            raw = inspect.getattr_static(value, attr)
            if isinstance(raw, staticmethod | classmethod):
                raw = raw.__func__
            if not inspect.isfunction(raw) or not raw.__module__.startswith("relay_anyio"):
                continue
            if not any(f"{base}.{attr}" in anchors for base in public_bases):
                missing.append(f"{qualname}.{attr}")
    return missing


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    if mkdocs is None:
        pytest.fail("mkdocs is not installed: pip install -e '.[test]'")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [mkdocs, "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.mark.timeout(300)
def test_every_public_name_and_method_has_a_reference_entry(site: Path) -> None:
    anchors = _anchors(site)
    assert "relay_anyio.Call.play" in anchors  # the walk reads real pages
    assert missing_entries(anchors) == []


def test_the_check_finds_a_missing_entry() -> None:
    assert "relay_anyio.Call.play" in missing_entries({"relay_anyio.Call"})
    assert "relay_anyio.RelayClient" in missing_entries(set())
