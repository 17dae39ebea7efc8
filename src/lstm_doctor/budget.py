"""Budgets: how long and how often the probes may train (quick, standard, thorough)."""

from __future__ import annotations

from dataclasses import dataclass

from lstm_doctor.errors import InputError


@dataclass(frozen=True)
class Budget:
    """Limits for every probe. ``quick`` aims at 30 s on a typical setup on 2 CPU cores.

    ``train_steps`` caps the instrumented run at the setup's own settings;
    ``fraction_of_training`` caps it relative to the setup's full training (the
    DESIGN budget: at most a fifth of the user's own training time).
    """

    name: str
    train_steps: int
    fraction_of_training: float
    lr_range_steps: int
    signal_fits: int
    signal_steps: int
    small_batch_steps: int
    seeds: int
    probe_every: int


BUDGETS = {
    "quick": Budget("quick", train_steps=600, fraction_of_training=0.2, lr_range_steps=100, signal_fits=5,
                    signal_steps=150, small_batch_steps=150, seeds=1, probe_every=25),
    "standard": Budget("standard", train_steps=2000, fraction_of_training=0.5, lr_range_steps=200, signal_fits=6,
                       signal_steps=300, small_batch_steps=300, seeds=2, probe_every=20),
    "thorough": Budget("thorough", train_steps=10_000, fraction_of_training=1.0, lr_range_steps=300, signal_fits=10,
                       signal_steps=600, small_batch_steps=500, seeds=3, probe_every=10),
}


def get_budget(name: str | Budget) -> Budget:
    if isinstance(name, Budget):
        return name
    try:
        return BUDGETS[name]
    except KeyError:
        raise InputError(f"Unknown budget {name!r}; choose one of {', '.join(BUDGETS)}.") from None
