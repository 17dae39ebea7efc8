"""The report's JSON Schema: in sync with the catalog, strict where the contract is fixed,
and met by every report (tests/report_schema_guard.py checks each one examine returns)."""

from __future__ import annotations

import copy
import json
import math
import sys

import jsonschema
import pytest
from sample_reports import examined_with_hostile_names, full_report

import lstm_doctor
from lstm_doctor.catalog import CODES, SEVERITIES
from lstm_doctor.findings import Finding
from lstm_doctor.report import (STATUSES, SYMPTOMS, Report, json_schema, shipped_schema, validate_report,
                                write_schema)


def test_shipped_schema_is_generated_from_the_catalog(tmp_path):
    shipped = shipped_schema()
    assert shipped == json_schema(), (
        "src/lstm_doctor/schema/report.v1.json is out of date; regenerate it with\n"
        "  .venv/bin/python -c 'from lstm_doctor.report import write_schema; write_schema()'")
    finding = shipped["$defs"]["finding"]["properties"]
    assert finding["code"]["enum"] == list(CODES)
    assert finding["name"]["enum"] == [c.name for c in CODES.values()]
    assert finding["severity"]["enum"] == list(SEVERITIES)
    assert shipped["properties"]["symptom"]["enum"] == list(SYMPTOMS)
    assert shipped["properties"]["status"]["enum"] == list(STATUSES)
    # Byte for byte, so regenerating never shows a spurious diff.
    from importlib import resources
    written = write_schema(tmp_path / "report.v1.json").read_text(encoding="utf-8")
    assert written == resources.files("lstm_doctor").joinpath("schema/report.v1.json").read_text(encoding="utf-8")


def test_schema_is_valid_draft_2020_12_and_documents_non_finite_numbers():
    schema = shipped_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert '"NaN", "Infinity", "-Infinity"' in schema["$defs"]["number"]["description"]
    for closed in (schema, schema["$defs"]["finding"], schema["$defs"]["verified"]):
        assert closed["additionalProperties"] is False


def test_a_full_report_validates():
    validate_report(json.loads(full_report().to_json()))


def test_a_real_report_validates_with_stable_key_order():
    data = json.loads(examined_with_hostile_names().to_json())
    validate_report(data)
    schema = shipped_schema()
    assert list(data) == list(schema["properties"])
    for finding in data["findings"]:
        assert list(finding) == list(schema["$defs"]["finding"]["properties"])


def test_non_finite_numbers_are_written_as_strings():
    report = full_report()
    report.baselines["mean"]["loss"] = math.nan
    report.findings[0].verified["p_value"] = math.inf
    report.timing["total_s"] = -math.inf
    data = json.loads(report.to_json())  # strict JSON: json.dumps(allow_nan=False) succeeded
    assert (data["baselines"]["mean"]["loss"], data["findings"][0]["verified"]["p_value"],
            data["timing"]["total_s"]) == ("NaN", "Infinity", "-Infinity")
    validate_report(data)


def _break(path: str, value):
    """A function that sets ``path`` (dotted, list indices as numbers) in report data to ``value``."""
    def apply(data: dict) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target = data
        for p in parents:
            target = target[p]
        target[last] = value
    return apply


BROKEN = {
    "unknown code": _break("findings.0.code", "X999"),
    "unknown severity": _break("findings.0.severity", "fatal"),
    "rank 0": _break("findings.0.rank", 0),
    "confidence above 1": _break("findings.0.confidence", 1.5),
    "extra key on a finding": _break("findings.0.extra", 1),
    "extra key on verified": _break("findings.0.verified.extra", 1),
    "verified without improved": lambda d: d["findings"][0]["verified"].pop("improved"),
    "extra top-level key": _break("extra", 1),
    "missing top-level key": lambda d: d.pop("probes"),
    "unknown symptom": _break("symptom", "sick"),
    "unknown status": _break("status", "done"),
    "another schema version": _break("schema", "lstm-doctor/report/v2"),
    "a treatment for an unknown code": _break("treatments.0.for", ["X999"]),
    "a number as an arbitrary string": _break("baselines.mean.loss", "lots"),
    "a non-string note": _break("notes", [1]),
}


@pytest.mark.parametrize("breakage", BROKEN.values(), ids=BROKEN.keys())
def test_schema_rejects_a_broken_contract(breakage):
    data = json.loads(full_report().to_json())
    validate_report(copy.deepcopy(data))  # the intact report passes
    breakage(data)
    with pytest.raises(jsonschema.ValidationError):
        validate_report(data)


def test_open_sections_take_new_keys():
    data = json.loads(full_report().to_json())
    data["findings"][0]["evidence"]["a_new_measurement"] = {"nested": [1, 2]}
    data["probes"]["a_new_probe"] = {"x": [1]}
    data["setup"]["a_new_section"] = {}
    data["treatments"][0]["seconds"] = 3.5
    validate_report(data)


def test_unranked_findings_break_the_contract():
    """Rank 1 is the root cause; a report built without ranking its findings is not a valid report."""
    report = Report(findings=[Finding.of("D102", "Inputs are ~340x unit scale.")])
    with pytest.raises(jsonschema.ValidationError):
        validate_report(json.loads(report.to_json()))


def test_the_guard_checks_every_report_examine_returns():
    """tests/report_schema_guard.py wraps examine (and watch's judge) wherever lstm_doctor bound them."""
    for module in (lstm_doctor, sys.modules["lstm_doctor.examine"]):
        assert hasattr(module.examine, "__wrapped__"), module.__name__
    assert hasattr(sys.modules["lstm_doctor.watch"].judge_loop, "__wrapped__")
