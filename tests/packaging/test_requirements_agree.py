"""requirements.txt and pyproject.toml name the same packages, and agree on their versions.

pyproject.toml states the supported range of each dependency; requirements.txt installs what CI
tests: a pin (``==``) there must lie in pyproject's range, any other constraint must be the same
as pyproject's. Packages of pyproject's optional extras (pytest of ``test``) may appear in
requirements.txt too, under the same rule.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]


def requirement_lines(text: str) -> list[Requirement]:
    """The requirements of a requirements.txt (comments and blank lines skipped)."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [Requirement(line) for line in lines if line]


def by_name(requirements: list[Requirement]) -> dict[str, SpecifierSet]:
    return {canonicalize_name(r.name): r.specifier for r in requirements}


def disagreements(
    pinned: dict[str, SpecifierSet], declared: dict[str, SpecifierSet], extras: dict[str, SpecifierSet]
) -> list[str]:
    """One line per package on which the two files disagree."""
    problems = [
        f"{name}: in pyproject.toml, not in requirements.txt" for name in sorted(set(declared) - set(pinned))
    ]
    for name, specifier in sorted(pinned.items()):
        allowed = declared.get(name, extras.get(name))
        if allowed is None:
            problems.append(f"{name}: in requirements.txt, not in pyproject.toml")
            continue
        exact = [s for s in specifier if s.operator == "=="]
        if len(exact) == 1 and len(specifier) == 1:
            if not allowed.contains(exact[0].version, prereleases=True):
                problems.append(
                    f"{name}: requirements.txt pins {exact[0].version}, outside pyproject's {allowed}"
                )
        elif specifier != allowed:
            problems.append(
                f"{name}: requirements.txt says {specifier or 'any'}, pyproject.toml {allowed or 'any'}"
            )
    return problems


def test_requirements_txt_agrees_with_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = by_name([Requirement(line) for line in project["dependencies"]])
    extras = by_name(
        [Requirement(line) for group in project["optional-dependencies"].values() for line in group]
    )
    pinned = by_name(requirement_lines((ROOT / "requirements.txt").read_text(encoding="utf-8")))
    assert disagreements(pinned, declared, extras) == []


def test_disagreements_are_found() -> None:
    declared = by_name([Requirement("torch>=2.2"), Requirement("numpy>=1.26"), Requirement("scipy>=1.11")])
    pinned = by_name(
        requirement_lines(
            "# tested versions\ntorch==2.1.0\nNumPy>=1.20  # a comment\nscipy==1.11.4\npytest>=8\nrich\n"
        )
    )
    extras = by_name([Requirement("pytest>=8.0")])
    assert disagreements(pinned, declared, extras) == [
        "numpy: requirements.txt says >=1.20, pyproject.toml >=1.26",
        "rich: in requirements.txt, not in pyproject.toml",
        "torch: requirements.txt pins 2.1.0, outside pyproject's >=2.2",
    ]
    assert (
        disagreements(by_name([Requirement("torch==2.14.1")]), by_name([Requirement("torch>=2.2")]), {}) == []
    )
    assert disagreements({}, by_name([Requirement("tqdm>=4.66")]), {}) == [
        "tqdm: in pyproject.toml, not in requirements.txt"
    ]
