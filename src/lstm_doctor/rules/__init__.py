"""Rules: evidence in, findings out. Rules never train and never print.

Each rule is a function registered with :func:`rule`; its docstring is the code's
documentation page (what ``lstm-doctor explain CODE`` prints), in fixed sections:
What it means / How it is measured / Example / Fix. Importing this package
registers every rule.
"""

from lstm_doctor.rules.registry import RULES, judge, page, rule

__all__ = ["RULES", "judge", "page", "rule"]
