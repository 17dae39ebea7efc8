"""Probes: measurements that need forward/backward passes or fitting. They never judge.

``PIPELINE`` lists them in the order they run; each takes a :class:`ProbeContext`.
"""

from __future__ import annotations

from typing import Callable

from lstm_doctor.probes.axes import axes
from lstm_doctor.probes.baselines import baselines
from lstm_doctor.probes.context import ProbeContext
from lstm_doctor.probes.data_profile import data_profile
from lstm_doctor.probes.frozen import frozen
from lstm_doctor.probes.gates import gates
from lstm_doctor.probes.gradients import gradients
from lstm_doctor.probes.initial_loss import initial_loss
from lstm_doctor.probes.lr_range import lr_range
from lstm_doctor.probes.memory_length import memory_length
from lstm_doctor.probes.padding import padding
from lstm_doctor.probes.predictions import predictions
from lstm_doctor.probes.signal import signal
from lstm_doctor.probes.small_batch import small_batch
from lstm_doctor.probes.training_run import training_run
from lstm_doctor.probes.wider_twin import wider_twin

Probe = Callable[[ProbeContext], None]

PIPELINE: list[tuple[str, Probe]] = [
    ("data_profile", data_profile),  # inspected scales and ACF into the plots; costs nothing
    ("baselines", baselines),
    ("signal", signal),  # after the baselines: reads the linear baseline's evidence
    ("axes", axes),
    ("padding", padding),
    # Instruments (callbacks riding along the training run) come before it.
    ("gradients", gradients),
    ("memory_length", memory_length),
    ("gates", gates),
    ("predictions", predictions),
    ("frozen", frozen),
    ("initial_loss", initial_loss),
    ("training_run", training_run),
    # After the run at the user's settings, so that a time limit cuts these first.
    ("lr_range", lr_range),
    ("small_batch", small_batch),
    ("wider_twin", wider_twin),  # narrow models only
]

__all__ = ["PIPELINE", "Probe", "ProbeContext"]
