"""How findings name the user's recurrent layers in a sentence: LSTM(64), 2-layer GRU(32).

No rules here; the rule modules import these.
"""

from __future__ import annotations

from lstm_doctor.evidence import Evidence

CELL_NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def cell_name(cell: str) -> str:
    """``lstm`` -> ``LSTM``; an unknown cell keeps its own name."""
    return CELL_NAMES.get(cell, cell)


def first_cell(ev: Evidence) -> str:
    """The first recurrent layer's kind, or "recurrent layer" when the model facts name none."""
    cells = ev.get("cells") or []
    return CELL_NAMES.get(cells[0], "recurrent layer") if cells else "recurrent layer"


def model_name(ev: Evidence) -> str:
    """The recurrent part as a person names it: LSTM(64), 2-layer GRU(32); "the model" when unknown."""
    cells, sizes = ev.get("cells") or [], ev.get("hidden_sizes") or []
    if not cells:
        return "the model"
    name = cell_name(cells[0])
    depth = ev.get("recurrent_layers") or 1
    size = f"({sizes[0]})" if sizes else ""
    return f"{depth}-layer {name}{size}" if depth > 1 else f"{name}{size}"
