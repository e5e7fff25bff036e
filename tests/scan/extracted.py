"""Shared by the extractor tests: the shipped rules, and one document's verdict."""
from __future__ import annotations

import pytest

from baomi.agent.scan.extract import extract_data
from baomi.agent.scan.limits import Limits
from baomi.agent.scan.rules import RuleSet

LIMITS = Limits()


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return RuleSet.load([])


def verdict(rules: RuleSet, data: bytes, limits: Limits = LIMITS):
    """As a worker judges: with the rules' literals for bytes of no known format."""
    ex = extract_data(data, limits, rules.raw_literals)
    ev = rules.evaluate(ex.chunks)
    return ex, ev, rules.level(ev)
