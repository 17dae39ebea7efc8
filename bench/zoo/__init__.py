"""The fault zoo: how often lstm-doctor names the right cause, and how fast.

Healthy setups on real datasets (aeon's UCR/UEA sets, statsmodels' series) and
synthetic series are broken on purpose by pure fault injectors, examined with
``lstm_doctor.examine``, and scored against the expected codes. Run it with
``python -m bench.zoo`` (see ``__main__.py``).
"""
