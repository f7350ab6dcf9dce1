"""Every rule documents itself, and the CLI shows that documentation."""

from __future__ import annotations

import json
import re

import pytest

from netdoctor.cli import main
from netdoctor.rules import all_rules

RULES = all_rules()
HEADINGS = ("What it does", "Why is this bad?", "Example", "Use instead")
# The catalogue issue 2 asks for, plus ND503 (update-direction).
REQUIRED = {f"ND10{i}" for i in range(1, 7)} | {f"ND20{i}" for i in range(1, 5)} \
    | {f"ND30{i}" for i in range(1, 5)} | {f"ND40{i}" for i in range(1, 6)} \
    | {"ND501", "ND502", "ND503", "ND601", "ND602", "ND603"}


def test_the_whole_catalogue_is_registered():
    assert REQUIRED <= {r.code for r in RULES}


def test_symbols_are_unique_kebab_case():
    symbols = [r.symbol for r in RULES]
    assert len(symbols) == len(set(symbols))
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", s) for s in symbols), symbols


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_docstring_has_a_summary_and_the_four_headings(rule):
    assert rule.summary and rule.summary.endswith(".")
    lines = [line.strip() for line in rule.doc.splitlines()]
    positions = [lines.index(h) for h in HEADINGS]  # ValueError names a missing heading
    assert positions == sorted(positions), f"{rule.code}: headings out of order"
    for heading in HEADINGS:
        assert len(rule.section(heading)) > 20, f"{rule.code}: '{heading}' is (nearly) empty"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_netdoctor_rule_prints_it_by_code_and_by_symbol(rule, capsys):
    assert main(["rule", rule.code]) == 0
    by_code = capsys.readouterr().out
    assert rule.code in by_code and rule.symbol in by_code
    assert all(h in by_code for h in HEADINGS)
    assert rule.section("Use instead").splitlines()[0] in by_code
    assert main(["rule", rule.symbol]) == 0
    assert capsys.readouterr().out == by_code


def test_netdoctor_rules_lists_every_rule(capsys):
    assert main(["rules"]) == 0
    listing = capsys.readouterr().out
    for rule in RULES:
        assert re.search(rf"\b{rule.code}\s+{re.escape(rule.symbol)}\b", listing), rule.code
    assert main(["rules", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [entry["code"] for entry in payload] == [r.code for r in RULES]
    assert {entry["severity"] for entry in payload} <= {"error", "warning", "info"}


def test_an_unknown_rule_is_a_usage_error(capsys):
    assert main(["rule", "ND999"]) == 2
    assert "ND999" in capsys.readouterr().err
