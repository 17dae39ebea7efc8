"""The rule registry: which function checks which code, and each code's page."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from typing import Callable, Iterable

from lstm_doctor.catalog import CODES, FAMILIES
from lstm_doctor.evidence import Evidence
from lstm_doctor.findings import Finding

RuleFn = Callable[[Evidence], "Finding | Iterable[Finding] | None"]


@dataclass(frozen=True)
class Rule:
    code: str
    check: RuleFn


RULES: dict[str, Rule] = {}


def rule(code: str) -> Callable[[RuleFn], RuleFn]:
    """Register ``fn`` as the check for ``code``; its docstring becomes the code's page."""

    def register(fn: RuleFn) -> RuleFn:
        if code not in CODES:
            raise KeyError(f"{code} is not in the catalog")
        if code in RULES:
            raise KeyError(f"{code} already has a rule: {RULES[code].check.__qualname__}")
        RULES[code] = Rule(code, fn)
        return fn

    return register


def _load_all() -> None:
    """Import every module of this package, which registers its rules."""
    import lstm_doctor.rules as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name != "registry":
            importlib.import_module(f"{package.__name__}.{info.name}")


def judge(ev: Evidence, *, ignore: Iterable[str] = (), failed: dict[str, str] | None = None) -> list[Finding]:
    """Run every rule on ``ev``; the findings in catalog order (ranking comes later).

    With ``failed``, a rule that raises is skipped and its error recorded there
    (code -> "Type: message"), so that one rule's bug costs its finding, not the
    examination; without it the error propagates.
    """
    _load_all()
    skip = {c.upper() for c in ignore}
    found: list[Finding] = []
    for code in sorted(RULES):
        if code in skip:
            continue
        try:
            out = RULES[code].check(ev)
        except Exception as err:
            if failed is None:
                raise
            failed[code] = f"{type(err).__name__}: {err}"
            continue
        if out is None:
            continue
        found.extend([out] if isinstance(out, Finding) else list(out))
    return found


def page(code: str) -> str:
    """The documentation page of ``code``, as ``lstm-doctor explain`` prints it."""
    _load_all()
    entry = CODES[code]
    family = FAMILIES[entry.family].split(" ", 1)[1]
    head = f"{entry.code} {entry.name} ({entry.family}, {entry.severity} by default)"
    checked = RULES.get(code)
    if checked is None or not checked.check.__doc__:
        body = f"What it means\n  {entry.meaning[0].upper() + entry.meaning[1:]}.\n\n" \
               "How it is measured\n  Not checked by this version of lstm-doctor yet; the code is reserved in the catalog."
    else:
        body = inspect.cleandoc(checked.check.__doc__)
    return f"{head}\n{'-' * len(head)}\nFamily: {family}\n\n{body}\n"
