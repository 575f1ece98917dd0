"""The layer contracts of pyproject.toml ([tool.importlinter]) hold on this tree, and each breaks on a forbidden import.

The second test is the proof that the check bites: it copies the library into a temporary folder, plants one import
of every forbidden kind, runs the same ``lint-imports`` as ``make test``, and expects each contract, and each planted
import, to be reported.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from testbed.shared import REPO

LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))

# file to plant in -> (the import planted, the contract it must break, the import as lint-imports reports it)
PLANTED = {
    "loaders/text.py": ("import pipelines.settings", "Loaders know nothing of pipelines", "loaders.text ->"),
    "pipelines/settings.py": (
        "import testbed.embedders",
        "The library knows nothing of the test bed",
        "pipelines.settings -> testbed.embedders",
    ),
    "pipelines/store/chroma.py": (
        "import pipelines.retrieve.retriever",
        "The data path runs one way",
        "pipelines.store.chroma -> pipelines.retrieve.retriever",
    ),
    "pipelines/retrieve/fusion.py": (
        "import pipelines.ingestion.writer",
        "The data path runs one way",
        "pipelines.retrieve.fusion -> pipelines.ingestion.writer",
    ),
    "pipelines/service/app.py": (
        "import pipelines.retrieve.lexical",
        "Surfaces (CLI, service, MCP, doctor) call the library only through its public",
        "pipelines.service.app -> pipelines.retrieve.lexical",
    ),
    "loaders/registry.py": ("import loaders.walk", "No import circles", "No cycles are allowed in loaders."),
}


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=cwd, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True
    )


def test_the_tree_keeps_every_contract() -> None:
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " broken" not in done.stdout.replace("0 broken", "")


def test_each_contract_breaks_on_a_planted_import(tmp_path: Path) -> None:
    for package in ("pipelines", "loaders", "testbed"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "tests").mkdir()
    for name in ("__init__.py", "contracts.py"):
        shutil.copy(REPO / "tests" / name, tmp_path / "tests" / name)
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    for path, (line, _, _) in PLANTED.items():
        with open(tmp_path / path, "a", encoding="utf-8") as module:
            module.write(f"\n{line}  # planted\n")

    done = lint_imports(tmp_path)

    assert done.returncode == 1, done.stdout + done.stderr
    broken = done.stdout.split("Broken contracts", 1)[1]
    for path, (_, contract, reported) in PLANTED.items():
        assert contract in broken, f"planting in {path} did not break {contract!r}"
        assert reported in broken, f"{reported!r} is not reported"
