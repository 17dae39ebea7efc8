"""Facts about the model's structure, read from a freshly built copy.

Evidence written: ``parameters`` (trainable count), ``model_class``.
"""

from __future__ import annotations

from typing import Any

from lstm_doctor.setups import Setup


def model_facts(setup: Setup) -> dict[str, Any]:
    model = setup.new_model()
    return {
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "model_class": type(model).__name__,
    }
