"""docs/design.md's package map stays true to the code (as datasette's test_docs.py keeps its
docs true): every package is in the map, each imports exactly the packages its row names,
the rows stand bottom-up so every arrow runs downward, others reach a package only through
what its face (`__init__.py`) names, and no `_private` name is imported across modules."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from ingest.store import sqlfiles

ROOT = Path(__file__).resolve().parent.parent
TOPS = ("ingest", "queries", "dashboard")
# Folders of the Streamlit app that are part of the dashboard/ row: pages run by path.
APP_FOLDERS = {"dashboard/views/"}
# Packages whose face another change is writing (none now).
FACES_PENDING: set[str] = set()
ROW = re.compile(r"^\|\s*`([\w/.]+)`\s*\|(.+?)\|(.*?)\|$")


@cache
def map_rows() -> dict[str, tuple[str, ...]]:
    """The rows of the map in docs/design.md ("## Package map"), bottom-up: package path
    (`ingest/store/`, or one module such as `ingest/errors.py`) -> the paths it imports."""
    text = (ROOT / "docs" / "design.md").read_text()
    section = text.split("## Package map", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = ROW.match(line.strip())
        if match:
            imports = re.findall(r"`([\w/.]+)`", match.group(3))
            rows[match.group(1)] = tuple(imports)
    return rows


def source_files() -> list[Path]:
    return sorted(p for top in TOPS for p in (ROOT / top).rglob("*.py"))


def room_of(path: Path) -> str:
    """The map row a file belongs to: the longest row path that holds it."""
    relative = path.relative_to(ROOT).as_posix()
    holders = [row for row in map_rows() if relative == row or relative.startswith(row)]
    assert holders, f"{relative} belongs to no row of the package map in docs/design.md"
    return max(holders, key=len)


def module_path(module: str) -> Path | None:
    """The file of a dotted project module (package: its __init__.py), None if none."""
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imports_of(path: Path) -> list[tuple[str, str, int]]:
    """(module, name, line) of every project import in a file; name "" for `import x`.
    Imports inside functions and under TYPE_CHECKING count as well."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in TOPS:
                found += [(node.module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, "", node.lineno) for a in node.names if a.name.split(".")[0] in TOPS]
    return found


def target_of(module: str, name: str) -> Path:
    """The file an import reaches: the submodule `name` when it is one, else `module`."""
    if name:
        submodule = module_path(f"{module}.{name}")
        if submodule is not None:
            return submodule
    found = module_path(module)
    assert found is not None, f"{module} is not a module of this project"
    return found


def test_every_file_is_in_a_row_of_the_map() -> None:
    for path in source_files():
        room_of(path)
    for row in map_rows():
        assert (ROOT / row).exists(), f"the map names {row}, which does not exist"
    subpackages = {
        p.parent.relative_to(ROOT).as_posix() + "/"
        for p in source_files()
        if p.name == "__init__.py" and p.parent.parent.name in TOPS
    }
    missing = sorted(subpackages - set(map_rows()) - APP_FOLDERS)
    assert not missing, f"packages missing from the map in docs/design.md: {missing}"


def test_each_package_imports_what_its_row_says_and_only_downward() -> None:
    rows = list(map_rows())
    actual: dict[str, set[str]] = {row: set() for row in rows}
    for path in source_files():
        here = room_of(path)
        for module, name, _ in imports_of(path):
            there = room_of(target_of(module, name))
            if there != here:
                actual[here].add(there)
    for row, declared in map_rows().items():
        assert actual[row] == set(declared), (
            f"{row} imports {sorted(actual[row])}; docs/design.md says {sorted(declared)}"
        )
        upward = [t for t in declared if rows.index(t) > rows.index(row)]
        assert not upward, f"{row} imports {upward}, which stand above it in the map"


def face_names(row: str) -> set[str]:
    """What a package's face (__init__.py) names in __all__ (a module row: its __all__ or
    every public name)."""
    path = ROOT / row / "__init__.py" if row.endswith("/") else ROOT / row
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return set(ast.literal_eval(node.value))
    return set()


def test_other_packages_use_only_what_a_face_names() -> None:
    wrong = []
    for path in source_files():
        here = room_of(path)
        for module, name, line in imports_of(path):
            there = room_of(target_of(module, name))
            if there == here or not there.endswith("/") or there in FACES_PENDING:
                continue
            package = there.rstrip("/").replace("/", ".")
            if package in (module, f"{module}.{name}".rstrip(".")):
                if module != package or not name or name in face_names(there):
                    continue  # the face itself, or a name it exports
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {module}.{name}")
                continue
            rest = module[len(package) :].lstrip(".").split(".") if module != package else []
            first = rest[0] if rest and rest[0] else name
            if first not in face_names(there):
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {module}.{name}".rstrip("."))
    assert not wrong, "imports past a package's face (__init__.py __all__):\n" + "\n".join(wrong)


def test_no_private_name_is_imported() -> None:
    private = [
        f"{path.relative_to(ROOT)}:{line}: {module}.{name}"
        for path in source_files()
        for module, name, line in imports_of(path)
        if name.startswith("_")
    ]
    assert not private, "private names imported across modules:\n" + "\n".join(private)


@pytest.mark.parametrize("row", [r for r in map_rows() if r.endswith("/")])
def test_a_face_names_only_what_others_use(row: str) -> None:
    """Every name a face exports is used outside its package (code, tests, benchmarks, or
    the README and docs/ for the public API): no unused re-exports."""
    outside = [
        p for p in ROOT.rglob("*.py") if ".venv" not in p.parts and room_of_or_none(p) != row
    ]
    texts = [p.read_text() for p in outside]
    texts += [p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]]
    unused = sorted(
        name for name in face_names(row) if not any(re.search(rf"\b{name}\b", t) for t in texts)
    )
    assert not unused, f"{row}__init__.py exports names nobody outside uses: {unused}"


def room_of_or_none(path: Path) -> str | None:
    relative = path.relative_to(ROOT).as_posix()
    if relative.split("/")[0] not in TOPS:
        return None
    return room_of(path)


def sql_files() -> list[Path]:
    """Every named-query file (the migrations are scripts, the lake's are being rewritten)."""
    found = [p for top in TOPS for p in (ROOT / top).rglob("*.sql") if "migrations" not in p.parts]
    return sorted(p for p in found if not any(p.is_relative_to(ROOT / f) for f in FACES_PENDING))


def test_every_sql_file_says_what_it_holds_who_runs_it_and_where_its_loader_is() -> None:
    for path in sql_files():
        lines = path.read_text().splitlines()
        where = path.relative_to(ROOT)
        assert sqlfiles.HEADER in lines[:4], f"{where}: no line {sqlfiles.HEADER!r} on top"
        first = " ".join(line[3:] for line in lines[: lines.index(sqlfiles.HEADER)])
        assert first.startswith(f"{path.name}: "), f"{where}: begins {first[:40]!r}"
        runner = re.search(r"\(([\w/]+\.py)\)\.$", first)
        assert runner and (ROOT / runner.group(1)).exists(), (
            f"{where}: names no module that runs it"
        )


def test_every_fragment_names_the_file_it_comes_from() -> None:
    """`{{engine.task_filter}}`, never `{{task_filter}}`: a name without a dot is only ever a
    caller's expression, never a block of the folder."""
    for folder in sorted({p.parent for p in sql_files()}):
        loaded = sqlfiles.load(folder)
        for query in loaded.values():
            for key in re.findall(r"\{\{([\w.]+)\}\}", query.sql):
                file, _, block = key.rpartition(".")
                where = f"{folder.relative_to(ROOT)}/{query.file}.sql ({query.name})"
                if not file:
                    assert key not in loaded, f"{where}: {{{{{key}}}}} names no file"
                elif file != "vocabulary":
                    assert loaded.get(block) and loaded[block].file == file, f"{where}: {key}"
