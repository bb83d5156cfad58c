"""Taking in a submission (stage 1 of a grade): a folder or a .zip becomes a private tree.

The private tree is a copy of the kit's pristine student library (assignment/'s ``nnlab``, or the
flavour's, as release writes it: autograder.conventions) with ONLY the graded files of the flavour
taken from the submission, so whatever else a student changed or
added (a patched gradient_check.py, a fake numpy/ folder) never reaches the grader. The graded files
may sit at the submission's root or under one top-level folder (how most zip tools pack a folder).
A graded file that is missing keeps its empty stub and is named in the result.

Refused outright, before anything runs: zip entries with absolute paths, ``..`` components or
symlink entries; symlinks in a folder that lead outside it; graded files that are not regular files
or are unreasonably large.
"""

from __future__ import annotations

import functools
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autograder.conventions import (CS231N, SETTINGS_FILE, Convention, ConventionError, convention, settings_with_style,
                                    style_of)
from autograder.paths import ASSIGNMENT_DIR, GRADED_FILES, RELEASED_LIBRARIES_DIR

MAX_GRADED_FILE_BYTES = 1024 * 1024


class SubmissionRefused(Exception):
    """A submission that the grader will not open; the message says why."""


@dataclass
class PreparedSubmission:
    name: str
    tree: Path  # the private tree the child imports from
    missing: list[str] = field(default_factory=list)  # graded files not found (stubs graded)


def submission_name(path: Path) -> str:
    """The student's name: the folder's name, or the zip's name without .zip."""
    return path.name[: -len(".zip")] if path.name.lower().endswith(".zip") else path.name


def _pick_root(available: set[str], graded_files) -> str:
    """The prefix ('' or 'folder/') under which the submission's graded files sit."""
    prefixes = [""] + sorted({name.split("/", 1)[0] + "/" for name in available if "/" in name})
    best = max(prefixes, key=lambda prefix: sum(prefix + graded in available for graded in graded_files))
    return best if any(best + graded in available for graded in graded_files) else ""


def holds_graded_files(names: set[str], convention: Convention = CS231N) -> bool:
    """Whether relative POSIX paths ``names`` include a graded file where the grader looks for it."""
    root = _pick_root(names, convention.graded_files)
    return any(root + graded in names for graded in convention.graded_files)


def _folder_files(folder: Path, graded_files) -> dict[str, bytes]:
    """Graded files of a folder submission, by graded path."""
    root_real = folder.resolve()
    available = set()
    for graded in graded_files:
        for candidate in [folder / graded, *(child / graded for child in sorted(folder.iterdir()) if child.is_dir())]:
            if candidate.exists() or candidate.is_symlink():
                available.add(candidate.relative_to(folder).as_posix())
    prefix = _pick_root(available, graded_files)
    found = {}
    for graded in graded_files:
        path = folder / (prefix + graded)
        if not (path.exists() or path.is_symlink()):
            continue
        real = path.resolve()
        if root_real not in real.parents:
            raise SubmissionRefused(f"{prefix + graded} is a link that leads outside the submission")
        if not real.is_file():
            raise SubmissionRefused(f"{prefix + graded} is not a regular file")
        if real.stat().st_size > MAX_GRADED_FILE_BYTES:
            raise SubmissionRefused(f"{prefix + graded} is larger than {MAX_GRADED_FILE_BYTES} bytes")
        found[graded] = real.read_bytes()
    return found


def _check_zip_entry(info: zipfile.ZipInfo) -> None:
    name = info.filename
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts or "\\" in name:
        raise SubmissionRefused(f"the zip holds an unsafe path: {name!r}")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise SubmissionRefused(f"the zip holds a symbolic link: {name!r}")


def _zip_files(path: Path, graded_files) -> dict[str, bytes]:
    """Graded files of a zip submission, by graded path."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise SubmissionRefused(f"{path.name} is not a readable zip file ({error})") from None
    with archive:
        infos = archive.infolist()
        for info in infos:
            _check_zip_entry(info)
        by_name = {info.filename: info for info in infos if not info.is_dir()}
        prefix = _pick_root(set(by_name), graded_files)
        found = {}
        for graded in graded_files:
            info = by_name.get(prefix + graded)
            if info is None:
                continue
            if info.file_size > MAX_GRADED_FILE_BYTES:
                raise SubmissionRefused(f"{info.filename} is larger than {MAX_GRADED_FILE_BYTES} bytes")
            try:
                found[graded] = archive.read(info)
            except (zipfile.BadZipFile, OSError, RuntimeError) as error:
                raise SubmissionRefused(f"{info.filename} cannot be extracted ({error})") from None
    return found


def read_graded_files(path: Path, convention: Convention = CS231N) -> dict[str, bytes]:
    """The graded files a submission provides (folder or .zip), by graded path."""
    if path.is_dir():
        return _folder_files(path, convention.graded_files)
    if path.is_file() and path.suffix.lower() == ".zip":
        return _zip_files(path, convention.graded_files)
    raise SubmissionRefused(f"{path} is neither a folder nor a .zip file")


@functools.lru_cache(maxsize=None)
def _library_files(root: Path) -> dict[str, bytes]:
    """The files under a tree's nnlab/, by their path in the tree."""
    library = root / "nnlab"
    return {f"nnlab/{path.relative_to(library).as_posix()}": path.read_bytes()
            for path in sorted(library.rglob("*")) if path.is_file() and "__pycache__" not in path.parts}


def pristine_library(flavour: str) -> dict[str, bytes]:
    """The flavour's student library as release writes it (relative POSIX path -> bytes): the tree
    every submission of that flavour is graded in, graded files replaced by the student's. The
    CS231n flavour's is assignment/'s; another flavour's is written from solution/, or read from
    the released copy a grading image ships instead (autograder.paths.RELEASED_LIBRARIES_DIR)."""
    if flavour == "cs231n":
        if not (ASSIGNMENT_DIR / GRADED_FILES[0]).is_file():
            raise FileNotFoundError(f"{ASSIGNMENT_DIR} has no {GRADED_FILES[0]}: run `python -m autograder release`")
        return _library_files(ASSIGNMENT_DIR)
    shipped = RELEASED_LIBRARIES_DIR / flavour
    if (shipped / "nnlab").is_dir():
        return _library_files(shipped)
    from autograder.flavours import FLAVOURS, released_tree

    if flavour not in FLAVOURS:
        raise ConventionError(f"unknown flavour {flavour!r} (known: cs231n, {', '.join(FLAVOURS)})")
    return {name: content for name, content in released_tree(FLAVOURS[flavour], checker=False).items()
            if name.startswith("nnlab/")}


@functools.lru_cache(maxsize=None)
def release_convention(flavour: str = "cs231n") -> Convention:
    """The convention a flavour's submissions are graded in: for the scratch flavour, in the style
    that its release's settings file sets (the instructor's one setting)."""
    if flavour == "cs231n":
        return CS231N
    source = pristine_library(flavour).get(SETTINGS_FILE)
    if source is None:
        raise ConventionError(f"flavour {flavour!r} has no {SETTINGS_FILE}")
    return convention(flavour, style_of(source.decode("utf-8"), f"solution/flavours/{flavour}/{SETTINGS_FILE}"))


def library_for(convention_: Convention) -> dict[str, bytes]:
    """The pristine library a submission of this convention is graded in: the flavour's release,
    with the convention's style written into its settings when the flavour has one."""
    library = dict(pristine_library(convention_.flavour))
    if SETTINGS_FILE in library:
        library[SETTINGS_FILE] = settings_with_style(library[SETTINGS_FILE].decode("utf-8"), convention_.style).encode("utf-8")
    return library


def prepare(path: Path, workdir: Path, convention: Convention = CS231N) -> PreparedSubmission:
    """Build the private tree for ``path`` inside ``workdir``; SubmissionRefused if unsafe."""
    path = Path(path)
    library = library_for(convention)  # FileNotFoundError when assignment/ was never released
    found = read_graded_files(path, convention)
    tree = Path(workdir) / "tree"
    # The library only: the release's notebook, README and student checker (which holds a correct
    # dropout for its network checks) have no business in the sandbox.
    for name, content in {**library, **found}.items():
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    missing = [graded for graded in convention.graded_files if graded not in found]
    return PreparedSubmission(submission_name(path), tree, missing)
