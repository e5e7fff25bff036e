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


def verdict(rules: RuleSet, data: bytes):
    ex = extract_data(data, LIMITS)
    ev = rules.evaluate(ex.chunks)
    return ex, ev, rules.level(ev)
