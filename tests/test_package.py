"""What is deployed: .funcignore keeps dev files out, requirements.txt matches runtime imports, host.json suits Flex."""
from __future__ import annotations

import ast
import fnmatch
import importlib.util
import json
import re
import sys
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Set, Tuple

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_PACKAGES = ("orchestrators", "activities", "shared")
RUNTIME_SOURCES = [ROOT / "function_app.py"] + sorted(
    path for package in RUNTIME_PACKAGES for path in (ROOT / package).rglob("*.py"))
LOCAL_MODULES = {"function_app", *RUNTIME_PACKAGES}

# What .funcignore must list (gitignore syntax, as Core Tools and azd read it).
REQUIRED_IGNORES = [
    "node_modules", ".venv", ".venv-infra", "tests", "bench", ".azurite", "docs", "infra", "tools", "scripts", ".ci",
    ".git*", ".azure", "requirements-*.txt", "package.json", "package-lock.json", "local.settings*.json", "*.md",
    "azure.yaml",
]


def _funcignore_rules() -> List[Tuple[bool, str]]:
    """(negated, pattern) for each rule of .funcignore, in order."""
    rules = []
    for line in (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), line.lstrip("!").rstrip("/")))
    return rules


def _is_ignored(path: str, rules: List[Tuple[bool, str]]) -> bool:
    """gitignore's rule for a file: the last matching pattern wins; a pattern without '/' matches any path component."""
    parts = path.split("/")
    ignored = False
    for negated, pattern in rules:
        if "/" in pattern.strip("/"):
            anchored = pattern.lstrip("/").split("/")
            hit = len(parts) >= len(anchored) and all(map(fnmatch.fnmatchcase, parts, anchored))
        else:
            hit = any(fnmatch.fnmatchcase(part, pattern.lstrip("/")) for part in parts)
        if hit:
            ignored = not negated
    return ignored


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _required_distributions() -> Dict[str, str]:
    """Canonical distribution name → the line of requirements.txt that pins it."""
    found = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            found[_canonical(re.split(r"[<>=!~\[; ]", line, 1)[0])] = line
    return found


def _runtime_imports() -> Dict[str, Set[str]]:
    """Every module the runtime code imports (absolute imports, anywhere in a file) → the files that import it."""
    imports: Dict[str, Set[str]] = {}
    for source in RUNTIME_SOURCES:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), filename=str(source))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for name in names:
                imports.setdefault(name, set()).add(str(source.relative_to(ROOT)))
    return imports


def _file_owners() -> Dict[Path, str]:
    """Each installed file → the canonical name of the distribution that installed it."""
    owners = {}
    for distribution in metadata.distributions():
        for file in distribution.files or []:
            owners[Path(distribution.locate_file(file)).resolve()] = _canonical(distribution.metadata["Name"])
    return owners


def _distribution_of(module: str, owners: Dict[Path, str]) -> str:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin not in (None, "namespace"), f"{module} is not installed as a module"
    owner = owners.get(Path(spec.origin).resolve())
    assert owner is not None, f"no installed distribution owns {spec.origin} ({module})"
    return owner


def test_funcignore_lists_every_development_path():
    patterns = {pattern for negated, pattern in _funcignore_rules() if not negated}
    assert [pattern for pattern in REQUIRED_IGNORES if pattern not in patterns] == []


def test_funcignore_keeps_the_runtime_in_and_everything_else_out():
    rules = _funcignore_rules()
    shipped = ["function_app.py", "host.json", "requirements.txt", "shared/settings.py", "shared/api/request.py",
               "activities/export_steps.py", "orchestrators/export_orchestrator.py", "shared/__init__.py"]
    kept_out = ["README.md", "docs/deploy.md", "tests/test_package.py", "tests/__init__.py",
                "bench/export_throughput.py", "tools/store_loader.py", "infra/main.bicep", "infra/main.parameters.json",
                "azure.yaml",
                "requirements-dev.txt", "requirements-tools.txt", "requirements-infra.txt", "local.settings.json",
                "local.settings.sample.json", "package.json", "package-lock.json", "node_modules/.bin/azurite",
                ".venv/bin/python", ".venv-infra/bin/checkov", ".azure/dev/.env", ".azurite/__azurite_db_blob__.json",
                ".ci/run", "scripts/test", ".gitignore", ".github/workflows/ci.yml", "shared/__pycache__/x.pyc"]
    assert [path for path in shipped if _is_ignored(path, rules)] == []
    assert [path for path in kept_out if not _is_ignored(path, rules)] == []


def test_runtime_code_imports_nothing_that_is_not_deployed():
    local = {name.split(".")[0] for name in _runtime_imports()} - set(sys.stdlib_module_names)
    assert {"tools", "tests", "bench"} & local == set()


def test_requirements_list_exactly_the_distributions_the_runtime_imports():
    owners = _file_owners()
    imported: Dict[str, Set[str]] = {}
    for module, files in _runtime_imports().items():
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top in LOCAL_MODULES:
            continue
        imported.setdefault(_distribution_of(module, owners), set()).update(files)
    required = _required_distributions()
    assert {name: sorted(files) for name, files in imported.items() if name not in required} == {}
    assert sorted(line for name, line in required.items() if name not in imported) == []


def test_requirements_pin_every_distribution():
    pinned = re.compile(r"[A-Za-z0-9_.-]+==[\w.]+")
    assert [line for line in _required_distributions().values() if not pinned.fullmatch(line)] == []


def test_host_json_bounds_each_function_run_for_flex_consumption():
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    hours, minutes, seconds = (int(part) for part in host["functionTimeout"].split(":"))
    timeout = timedelta(hours=hours, minutes=minutes, seconds=seconds)
    assert timedelta(minutes=10) <= timeout <= timedelta(hours=1)
    assert "storageProvider" not in host["extensions"]["durableTask"]  # Azure Storage; the scheduler is opt-in
