"""Facts about the data as the model is fed it (after the user's own scaling, if any).

Evidence written: ``task``, ``n_train``, ``n_val``, ``steps``, ``features``,
``targets``, ``classes``, ``per_step``, ``split``, ``source_kind``.
"""

from __future__ import annotations

from typing import Any

from lstm_doctor.setups import Setup


def data_facts(setup: Setup) -> dict[str, Any]:
    d = setup.data
    return {
        "task": d.task,
        "n_train": len(d.train),
        "n_val": len(d.val),
        "steps": d.steps,
        "features": list(d.feature_names),
        "targets": list(d.target_names),
        "classes": d.classes,
        "per_step": d.per_step,
        "split": d.split,
        "source_kind": d.source.get("kind"),
    }
