"""`netdoctor rules` lists the catalogue; `netdoctor rule ND101` prints one rule's documentation."""

from __future__ import annotations

import json
import sys

from ..rules import FAMILIES, all_rules, get_rule


def run_list(args) -> int:
    rules = all_rules()
    if getattr(args, "format", "text") == "json":
        payload = [
            {"code": r.code, "symbol": r.symbol, "severity": str(r.severity), "summary": r.summary}
            for r in rules
        ]
        print(json.dumps(payload, indent=2))
        return 0
    family = None
    for r in rules:
        if r.family != family:
            family = r.family
            print(f"\n{family}xx  {FAMILIES.get(family, '')}")
        print(f"  {r.code}  {r.symbol:24s} {str(r.severity):8s} {r.summary}")
    return 0


def run_one(args) -> int:
    try:
        r = get_rule(args.code)
    except KeyError as exc:
        print(f"netdoctor: {exc.args[0]}", file=sys.stderr)
        return 2
    print(f"{r.code} {r.symbol} (default severity: {r.severity})\n")
    print(r.doc)
    return 0
