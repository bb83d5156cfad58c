"""The self-validation bank: known-wrong and known-right submissions, kept as small TOML files in
autograder/bank/.

An entry names region bodies by their REGION_NAMES name (autograder.regions) to fill into the
solution's graded files; regions it does not name keep the reference code. Where a misconception
lives outside the student regions (removing the given astype line, dropping the input data), an
entry may also replace exact text of a graded file. A wrong entry lists the checks it must fail
and the diagnosis it must get there::

    kind = "wrong"                       # or "right"
    summary = "p used as the drop probability"
    [regions]
    "dropout_forward.train" = '''
    mask = (np.random.rand(*x.shape) > p) / p
    out = x * mask
    '''
    [[replace]]                          # optional, any number
    file = "nnlab/layers.py"
    old = "exact text"
    new = "its replacement"
    [expect]                             # wrong entries only
    diagnosis = "p_as_drop_probability"
    fails = ["forward_keep_fraction"]

The scratch flavour's bank is autograder/bank/scratch/, with that flavour's region names
(autograder.flavours.SCRATCH). Its entries may say for which dropout styles they hold, since code
that always divides by 1 - dropout_ratio is right for the inverted style and wrong for vanilla::

    styles = ["vanilla"]                 # default: both
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from autograder.conventions import CS231N, STYLES, Convention
from autograder.paths import SOLUTION_DIR
from autograder.regions import fill_regions

BANK_DIR = Path(__file__).with_name("bank")
BANK_DIRS = {"cs231n": BANK_DIR, "scratch": BANK_DIR / "scratch"}


class BankError(ValueError):
    """A bank entry that cannot be built."""


@dataclass(frozen=True)
class BankEntry:
    name: str
    kind: str  # "wrong" or "right"
    summary: str
    regions: dict = field(default_factory=dict)
    replacements: tuple = ()
    diagnosis: str | None = None
    fails: tuple = ()
    styles: tuple = STYLES  # the dropout styles for which the entry is what ``kind`` says


def _entry(path: Path, convention: Convention) -> BankEntry:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    kind = data.get("kind")
    if kind not in ("wrong", "right"):
        raise BankError(f"{path}: kind must be 'wrong' or 'right'")
    styles = tuple(data.get("styles", STYLES))
    if not styles or set(styles) - set(STYLES):
        raise BankError(f"{path}: styles must list some of {', '.join(STYLES)}")
    known = {name for names in convention.region_names.values() for name in names}
    unknown = set(data.get("regions", {})) - known
    if unknown:
        raise BankError(f"{path}: unknown region(s) {', '.join(sorted(unknown))}")
    expect = data.get("expect", {})
    if kind == "wrong" and not (expect.get("diagnosis") and expect.get("fails")):
        raise BankError(f"{path}: a wrong entry needs [expect] diagnosis and fails")
    return BankEntry(
        name=path.stem, kind=kind, summary=data.get("summary", ""),
        regions=dict(data.get("regions", {})),
        replacements=tuple((r["file"], r["old"], r["new"]) for r in data.get("replace", [])),
        diagnosis=expect.get("diagnosis"), fails=tuple(expect.get("fails", ())), styles=styles,
    )


def load_bank(bank_dir: Path | None = None, convention: Convention = CS231N) -> list[BankEntry]:
    """The entries of the convention's flavour (or of ``bank_dir``)."""
    bank_dir = bank_dir or BANK_DIRS[convention.flavour]
    return [_entry(path, convention) for path in sorted(bank_dir.glob("*.toml"))]


def reference_source(graded: str, convention: Convention = CS231N, solution_dir: Path = SOLUTION_DIR) -> str:
    """The reference's text of one graded file of the convention's flavour."""
    if convention.flavour == "cs231n":
        return (solution_dir / graded).read_text(encoding="utf-8")
    from autograder.flavours import FLAVOURS, source_files

    return source_files(FLAVOURS[convention.flavour], solution_dir)[graded].read_text(encoding="utf-8")


def graded_sources(entry: BankEntry, solution_dir: Path = SOLUTION_DIR, convention: Convention = CS231N) -> dict[str, str]:
    """The entry's version of each graded file of the convention's flavour."""
    sources = {}
    for graded in convention.graded_files:
        text = reference_source(graded, convention, solution_dir)
        bodies = [entry.regions.get(name) for name in convention.region_names[graded]]
        text = fill_regions(text, bodies, graded)
        for file, old, new in entry.replacements:
            if file == graded:
                if old not in text:
                    raise BankError(f"bank entry {entry.name}: text to replace not found in {graded}: {old!r}")
                text = text.replace(old, new, 1)
        sources[graded] = text
    return sources


def write_submission(entry: BankEntry, folder: Path, convention: Convention = CS231N) -> Path:
    """Write the entry as a submission folder (graded files only) and return the folder."""
    for graded, text in graded_sources(entry, convention=convention).items():
        target = folder / graded
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return folder
