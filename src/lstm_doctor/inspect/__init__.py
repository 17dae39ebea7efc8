"""Inspect: facts read from the data and the model without training. Never judges.

``inspect_setup`` returns the Evidence that every later stage adds to.
"""

from __future__ import annotations

from lstm_doctor.evidence import Evidence
from lstm_doctor.inspect.data_facts import data_facts
from lstm_doctor.inspect.model_facts import model_facts
from lstm_doctor.setups import Setup


def inspect_setup(setup: Setup) -> Evidence:
    ev = Evidence()
    ev.update(data_facts(setup))
    ev.update(model_facts(setup))
    return ev


__all__ = ["inspect_setup"]
