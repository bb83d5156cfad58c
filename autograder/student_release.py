"""The student checker that ships in the student's release: built from the grader's own code.

``release`` calls ``checker_files()`` and writes what it returns into the student tree as the
package ``dropout_lab_check/`` (a name no package on the public package index has, so that
``pip install`` can never fetch something else under it). Nothing in that package is written by
hand for the release: every module is a copy of a module of the kit, changed mechanically.

- The grader's modules (the checks, diagnoses, observations, verdicts, rubric, limits, bounds, the
  grading plugin, reports, wire) are copied with their ``autograder`` imports rewritten
  (``MODULE_MAP``). The sandbox and the intake of submissions, which only make sense on a grading
  machine, map to ``autograder/selfcheck/runner.py``, which runs the student's own code in a plain
  child process with the grader's deadlines.
- The checks that are not public (the rubric's ``visibility`` other than "visible") are cut out of
  the check modules by name, with the ast module, and so is every helper function that only they
  used. The shipped rubric lists the public checks only; ``facts.py`` says how many others there are
  and what they are worth, never their names.
- ``operations.py`` holds the operations of the grader's child_driver.py (the functions listed in
  its ``OPERATIONS``, ``describe_error`` and everything they use), so the student's code is called
  and observed exactly as in the grader's sandboxed child.
- ``autograder/selfcheck/`` provides the checker's own entry points (``check``, ``collect``, the
  child's request loop).

Every rewritten import is verified: the module it now names is shipped and defines the names it
imports, so that a change in the grader that the checker cannot follow stops the release with a
message instead of shipping a broken checker. ``release --check`` compares the result with the
committed tree like any other released file.
"""

from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path

from autograder.conventions import convention
from autograder.rubric import DEFAULT_RUBRIC, Rubric, load_rubric

PACKAGE = "dropout_lab_check"
KIT = Path(__file__).resolve().parent

# Where the checker starts: its own entry points, collect, and the checks package. Every kit module
# these import is copied too (and every module those import, and so on), unless MODULE_MAP names a
# stand-in for it. Kit path (relative to autograder/) -> path in the package.
ROOTS = {
    "selfcheck/__init__.py": "__init__.py",
    "selfcheck/__main__.py": "__main__.py",
    "selfcheck/check.py": "check.py",
    "selfcheck/runner.py": "runner.py",
    "selfcheck/driver.py": "driver.py",
    "collect.py": "collect.py",
    "checks/conftest.py": "checks/conftest.py",
    "checks/__init__.py": "checks/__init__.py",
}
DATA_FILES = {"checks/pytest.ini": "checks/pytest.ini"}
CHECK_MODULES = "checks/test_*.py"  # copied with the non-public checks cut out
GENERATED = ("operations.py", "facts.py", "rubric.toml")

# Kit modules -> the package's modules that stand for them (the rest keep their name).
MODULE_MAP = {
    "autograder.sandbox": "runner",
    "autograder.submission": "runner",
    "autograder.child_driver": "operations",
    "autograder.selfcheck": "",
}

# What child_driver.py contributes: these names and everything they use.
OPERATION_ROOTS = ("OPERATIONS", "describe_error", "import_student_library")


class CheckerBuildError(RuntimeError):
    """The grader's code changed in a way the student checker cannot follow mechanically."""


# -- module names -----------------------------------------------------------------------------------
def released_module(kit_module: str) -> str:
    """The package's module for a kit module name (``autograder.x.y``)."""
    for kit, target in sorted(MODULE_MAP.items(), key=lambda item: -len(item[0])):
        if kit_module == kit or kit_module.startswith(kit + "."):
            rest = kit_module[len(kit):].lstrip(".")
            parts = [part for part in (target, rest) if part]
            return ".".join([PACKAGE, *parts])
    if kit_module == "autograder":
        return PACKAGE
    return PACKAGE + kit_module[len("autograder"):]


def _module_path(module: str) -> str | None:
    """The package-relative file of a package module, e.g. ``checks/bounds.py``."""
    if module == PACKAGE:
        return "__init__.py"
    if not module.startswith(PACKAGE + "."):
        return None
    return module[len(PACKAGE) + 1:].replace(".", "/") + ".py"


# -- source surgery -----------------------------------------------------------------------------------
def _span(node: ast.AST) -> tuple[int, int]:
    """0-based first and last line of a statement, decorators included."""
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return first - 1, node.end_lineno - 1


def _without_lines(text: str, spans: list[tuple[int, int]]) -> str:
    lines = text.splitlines()
    for first, last in sorted(spans, reverse=True):
        del lines[first:last + 1]
    return "\n".join(lines) + "\n"


def _rewrite_imports(text: str, where: str, imports: list) -> str:
    """``text`` with every ``autograder`` import pointing into the package; records each rewritten
    import as (where, module, names) in ``imports`` for verification."""
    tree = ast.parse(text, where)
    lines = text.splitlines()
    edits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "autograder" and node.level == 0:
            if node.module == "autograder" or node.module in MODULE_MAP and MODULE_MAP[node.module] == "":
                # ``from autograder import wire`` names modules: one import per module.
                statements = []
                for alias in node.names:
                    target = released_module(f"{node.module}.{alias.name}")
                    parent, _, name = target.rpartition(".")
                    statements.append(f"from {parent} import {name} as {alias.asname or alias.name}")
                    imports.append((where, target, []))
                new = "; ".join(statements)
            else:
                target = released_module(node.module)
                node.module = target
                imports.append((where, target, [alias.name for alias in node.names]))
                new = ast.unparse(node)
        elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "autograder" for a in node.names):
            raise CheckerBuildError(f"{where}:{node.lineno}: `import autograder...` cannot be rewritten; use `from ... import`")
        else:
            continue
        first, last = node.lineno - 1, node.end_lineno - 1
        indent = re.match(r"\s*", lines[first]).group(0)
        comment = re.search(r"  #.*$", lines[last])
        edits.append((first, last, indent + new + (comment.group(0) if comment and first == last else "")))
    for first, last, new in sorted(edits, reverse=True):
        lines[first:last + 1] = [new]
    return "\n".join(lines) + "\n"


def _top_level_names(text: str) -> set[str]:
    """Names a module defines at its top level (functions, classes, assignments, imports)."""
    names = set()
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.If, ast.Try)):
            names |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            names |= {(a.asname or a.name).split(".")[0] for n in ast.walk(node)
                      if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    return names


def _used_names(nodes) -> set[str]:
    """Every identifier that ``nodes`` read: names, attributes and imported names."""
    used = set()
    for root in nodes:
        for node in ast.walk(root):
            if isinstance(node, ast.Name):
                used.add(node.id)
            elif isinstance(node, ast.Attribute):
                used.add(node.attr)
            elif isinstance(node, ast.ImportFrom):
                used |= {alias.name for alias in node.names}
    return used


def _definitions(tree: ast.Module) -> dict[str, ast.AST]:
    return {node.name: node for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def public_check_modules(rubric: Rubric) -> dict[str, str]:
    """The check modules with every non-public check, and every helper only they used, cut out."""
    hidden = {name for name, entry in rubric.entries.items() if entry.visibility != "visible"}
    sources = {path.relative_to(KIT).as_posix(): path.read_text(encoding="utf-8")
               for path in sorted(KIT.glob(CHECK_MODULES))}
    cut = {}
    for name, text in sources.items():
        tree = ast.parse(text, name)
        spans = [_span(node) for node in tree.body if isinstance(node, ast.FunctionDef)
                 and node.name.startswith("test_") and node.name[len("test_"):] in hidden]
        cut[name] = _without_lines(text, spans)
    # Helpers (non-test top-level functions and classes) that nothing left uses go too, until none.
    while True:
        trees = {name: ast.parse(text, name) for name, text in cut.items()}
        removed = False
        for name, tree in trees.items():
            others = [node for other, t in trees.items() for node in t.body if other != name]
            definitions = _definitions(tree)
            for helper, node in definitions.items():
                if helper.startswith("test_"):
                    continue
                rest = [n for n in tree.body if n is not node] + others
                if helper not in _used_names(rest):
                    cut[name] = _without_lines(cut[name], [_span(node)])
                    removed = True
                    break
        if not removed:
            return cut


GRADER_NETWORK_DROPOUT = "NETWORK_DROPOUT, NETWORK_DROPOUT_LAYER = CorrectDropout, CorrectDropoutLayer"
CHECKER_NETWORK_DROPOUT = "NETWORK_DROPOUT, NETWORK_DROPOUT_LAYER = StudentsDropout, None"


def operations_module() -> str:
    """The operations of the grader's child_driver.py, and everything they use, as one module."""
    path = KIT / "child_driver.py"
    text = path.read_text(encoding="utf-8")
    # The grader runs the student's network on a correct dropout; a release must not ship one, so
    # its checker runs the network on the student's own layer (and says so when that layer fails).
    if text.count(GRADER_NETWORK_DROPOUT) != 1:
        raise CheckerBuildError(f"{path}: expected the line {GRADER_NETWORK_DROPOUT!r} once")
    text = text.replace(GRADER_NETWORK_DROPOUT, CHECKER_NETWORK_DROPOUT)
    tree = ast.parse(text, str(path))
    definitions = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            definitions[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for found in ast.walk(target):
                    if isinstance(found, ast.Name):
                        definitions[found.id] = node
    missing = [root for root in OPERATION_ROOTS if root not in definitions]
    if missing:
        raise CheckerBuildError(f"{path}: defines no {', '.join(missing)}; the student checker needs them")
    wanted, todo = set(), list(OPERATION_ROOTS)
    while todo:
        name = todo.pop()
        if name in wanted or name not in definitions:
            continue
        wanted.add(name)
        todo += sorted(_used_names([definitions[name]]) - wanted)
    keep = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            keep.append(node)
        elif isinstance(node, ast.Import) and all(alias.name != "wire" for alias in node.names):
            keep.append(node)
        elif isinstance(node, ast.ImportFrom) and node.module != "wire":
            keep.append(node)
        elif any(definitions.get(name) is node for name in wanted):
            keep.append(node)
    lines = text.splitlines()
    header = ('"""The operations of the grader\'s child process (autograder/child_driver.py), taken from it\n'
              'when the release is built: the student checker calls and observes your code with them."""\n')
    body = "\n\n".join("\n".join(lines[first:last + 1]) for first, last in map(_span, keep))
    return header + "\n" + body + "\n"


def public_rubric_text(rubric: Rubric) -> str:
    lines = ["# The public checks of the rubric your work is graded with: points, and whether a check",
             "# gives partial credit (the share of its cases you passed). The grader also runs checks that",
             "# are not listed here; the checker's last line says how many and what they are worth.", "",
             f"flavour = {rubric.flavour!r}", ""]
    for name, entry in rubric.entries.items():
        if entry.visibility != "visible":
            continue
        lines += [f"[checks.{name}]", f"points = {entry.points:g}"]
        if entry.partial:
            lines.append("partial = true")
        lines.append("")
    return "\n".join(lines)


def facts_module(rubric: Rubric, given: dict[str, bytes], style: str = "inverted") -> str:
    hidden = [entry for entry in rubric.entries.values() if entry.visibility != "visible"]
    digests = {name: hashlib.sha256(content).hexdigest() for name, content in sorted(given.items())}
    return (
        '"""Facts about the grade that the student checker states: written by `release`."""\n\n'
        f"HIDDEN_CHECKS = {len(hidden)}\n"
        f"HIDDEN_POINTS = {sum(entry.points for entry in hidden):g}\n"
        f"MAX_SCORE = {rubric.max_score:g}\n"
        f"FLAVOUR = {rubric.flavour!r}\n"
        f"STYLE = {style!r}  # the dropout style of the release's flavour\n\n"
        "# The library files you were given, by their SHA-256: the grader uses its own copy of each.\n"
        f"GIVEN_FILES = {{\n" + "".join(f"    {name!r}: {digest!r},\n" for name, digest in digests.items()) + "}\n"
    )


def _verify_imports(files: dict[str, str], imports: list) -> None:
    for where, module, names in imports:
        relative = _module_path(module)
        target = files.get(relative) if relative else None
        if target is None and relative:
            target = files.get(relative[: -len(".py")] + "/__init__.py")
        if target is None:
            raise CheckerBuildError(f"{where} imports {module}, which the student checker does not ship; "
                                    f"add it to COPIED or MODULE_MAP in autograder/student_release.py")
        defined = _top_level_names(target)
        absent = [name for name in names if name not in defined
                  and _module_path(f"{module}.{name}") not in files]
        if absent:
            raise CheckerBuildError(f"{where} imports {', '.join(absent)} from {module}, which the student "
                                    f"checker's {relative} does not define; add it there")


def _kit_file(module: str) -> str | None:
    """The file (relative to autograder/) of a kit module, or None when there is none."""
    relative = module[len("autograder."):].replace(".", "/") if module != "autograder" else ""
    for candidate in (relative + ".py", relative + "/__init__.py"):
        if candidate.strip("/") and (KIT / candidate).is_file():
            return candidate
    return None


def _kit_imports(text: str, where: str) -> list[str]:
    """The kit modules that a source imports (``from autograder import wire`` names a module)."""
    modules = []
    for node in ast.walk(ast.parse(text, where)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "autograder":
            modules.append(node.module)
            modules += [f"{node.module}.{alias.name}" for alias in node.names]
    return modules


def _stand_in(module: str) -> bool:
    return any(module == kit or module.startswith(kit + ".") for kit in MODULE_MAP)


def checker_files(released_library: dict[str, bytes], rubric_path: Path = DEFAULT_RUBRIC,
                  style: str = "inverted") -> dict[str, bytes]:
    """The files of the student checker, by their path in the student tree.

    ``released_library`` is the rest of the student tree as release writes it (for the digests of
    the given library files); the rubric names the flavour, and ``style`` is the flavour's dropout
    style as the release sets it."""
    rubric = load_rubric(rubric_path)
    graded_files = convention(rubric.flavour, style).graded_files
    sources: dict[str, str] = {name: (KIT / kit_name).read_text(encoding="utf-8") for kit_name, name in ROOTS.items()}
    sources.update(public_check_modules(rubric))
    sources["operations.py"] = operations_module()
    # Follow the imports: every kit module the checker imports is shipped, under its own name.
    todo = list(sources.items())
    while todo:
        where, text = todo.pop()
        for module in _kit_imports(text, where):
            if _stand_in(module):
                continue
            kit_name = _kit_file(module)
            if kit_name is None or kit_name.startswith("selfcheck/"):
                continue
            name = kit_name
            if name not in sources:
                sources[name] = (KIT / kit_name).read_text(encoding="utf-8")
                todo.append((name, sources[name]))
    files: dict[str, str] = {}
    imports: list = []
    for name, text in sources.items():
        files[name] = _rewrite_imports(text, name, imports)
    for kit_name, name in DATA_FILES.items():
        files[name] = (KIT / kit_name).read_text(encoding="utf-8")
    given = {name: content for name, content in released_library.items()
             if name.startswith("nnlab/") and name.endswith(".py") and name not in graded_files}
    files["facts.py"] = facts_module(rubric, given, style)
    files["rubric.toml"] = public_rubric_text(rubric)
    _verify_imports(files, imports)
    return {f"{PACKAGE}/{name}": text.encode("utf-8") for name, text in sorted(files.items())}
