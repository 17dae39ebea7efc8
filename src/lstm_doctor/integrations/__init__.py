"""Callbacks for training frameworks: the same report at the end of ``fit``.

``lstm_doctor.integrations.lightning.DoctorCallback`` (PyTorch Lightning) and
``lstm_doctor.integrations.keras.DoctorCallback`` (Keras 3, TensorFlow or torch
backend). Each module imports its framework only when used.
"""

from __future__ import annotations

from pathlib import Path

from lstm_doctor.report import Report


def save(report: Report, path: str | Path) -> None:
    """Write the report as HTML when ``path`` ends in .html, else as JSON."""
    if str(path).lower().endswith((".html", ".htm")):
        report.save_html(path)
    else:
        report.save_json(path)
