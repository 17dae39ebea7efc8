"""lstm-doctor: finds out why a recurrent network is not learning, and proves which fix works.

>>> import lstm_doctor
>>> report = lstm_doctor.examine("setup.yaml")  # doctest: +SKIP
>>> report.symptom, [f.code for f in report.findings]  # doctest: +SKIP
"""

__version__ = "0.1.0"

from lstm_doctor.errors import InputError  # noqa: E402
from lstm_doctor.evidence import Evidence  # noqa: E402
from lstm_doctor.findings import Finding  # noqa: E402
from lstm_doctor.report import Report  # noqa: E402
from lstm_doctor.setups import Setup, load_setup, setup_from  # noqa: E402
from lstm_doctor.examine import examine  # noqa: E402
from lstm_doctor.own_model import examine_model  # noqa: E402
from lstm_doctor.watch import watch  # noqa: E402

__all__ = ["Evidence", "Finding", "InputError", "Report", "Setup", "examine", "examine_model", "load_setup", "setup_from", "watch", "__version__"]
