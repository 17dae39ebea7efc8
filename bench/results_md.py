"""The generated blocks of bench/RESULTS.md: each benchmark rewrites only the text between its own markers."""

from __future__ import annotations

from pathlib import Path

from lstm_doctor.report import write_atomic


def write_block(path: str | Path, block: str, begin: str, end: str, heading: str) -> None:
    """Put ``block`` (which starts with ``begin`` and ends with ``end``) where the file's block is, or,
    when the file has none yet, append it under ``## heading``; the file is replaced atomically."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + f"\n\n## {heading}\n\n{block}\n"
    write_atomic(path, text)
