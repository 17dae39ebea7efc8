"""Treatment: retrain the setup with each candidate fix and keep only what measurably helps.

``treatments`` holds the fixes (pure changes of a setup config), ``trials`` runs
one training, ``executors`` runs many (locally or on Ray), ``verify`` decides.
"""

from lstm_doctor.treat.treatments import TREATMENTS, Treatment, apply_change
from lstm_doctor.treat.verify import treat

__all__ = ["TREATMENTS", "Treatment", "apply_change", "treat"]
