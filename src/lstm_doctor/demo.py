"""The demo: a real series (weekly atmospheric CO2 at Mauna Loa, shipped with
statsmodels) fed to an LSTM the way many first attempts do it: raw ppm values,
no scaling, a 12-week window on a series with a yearly cycle."""

from __future__ import annotations

from pathlib import Path

import yaml

DEMO_SETUP = {
    "data": {
        "path": "co2.csv",
        "target": "co2",
        "time": "date",
        "window": 12,
        "horizon": 1,
        "task": "regression",
        "scale": "none",
        "split": "temporal",
        "val_fraction": 0.2,
    },
    "model": {"cell": "lstm", "hidden": 32, "layers": 1},
    "training": {"loss": "mse", "optimizer": "adam", "lr": 0.001, "batch_size": 32, "epochs": 10, "seed": 0},
}


def write_demo(folder: Path) -> Path:
    """Export the CO2 series and the broken setup into ``folder``; return the setup file's path."""
    import statsmodels.api as sm

    frame = sm.datasets.co2.load_pandas().data
    # The raw series has 59 missing weeks; the demo is about scaling, not gaps.
    frame = frame.interpolate(limit_direction="both").rename_axis("date").reset_index()
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "co2.csv", index=False, float_format="%.2f")
    path = folder / "setup.yaml"
    path.write_text(
        "# lstm-doctor demo: weekly CO2 (ppm) at Mauna Loa, from statsmodels' datasets.\n"
        "# The setup as a first attempt often has it: raw values, no scaling, a short window.\n"
        + yaml.safe_dump(DEMO_SETUP, sort_keys=False),
        encoding="utf-8",
    )
    return path
