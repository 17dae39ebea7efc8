"""Reading the user's files and turning them into windows, as the setup says."""

from lstm_doctor.data.windows import SequenceData, Windows
from lstm_doctor.data.build import build_data

__all__ = ["SequenceData", "Windows", "build_data"]
