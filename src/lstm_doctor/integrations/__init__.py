"""Callbacks for training frameworks: the same report at the end of ``fit``.

``lstm_doctor.integrations.lightning.DoctorCallback`` (PyTorch Lightning) and
``lstm_doctor.integrations.keras.DoctorCallback`` (Keras 3, TensorFlow or torch
backend). Each module imports its framework only when used.
"""
