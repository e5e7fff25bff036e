"""Multi-pattern keyword search: one automaton for every keyword of every
dictionary, built once per process (Aho-Corasick via pyahocorasick), so the cost
per chunk does not grow with the number of keywords."""
from __future__ import annotations

from typing import Iterator

import ahocorasick


class KeywordMatcher:
    def __init__(self, keywords: dict[str, list[str]]):
        """keywords: rule id → words. Matching is on normalised text (see normalize)."""
        self._keywords = {rid: sorted(set(words)) for rid, words in keywords.items()}
        self._automaton: ahocorasick.Automaton | None = None

    def __getstate__(self) -> dict:
        return {"_keywords": self._keywords, "_automaton": None}  # rebuilt lazily in each worker

    def _build(self) -> ahocorasick.Automaton:
        a = ahocorasick.Automaton()
        owners: dict[str, list[str]] = {}
        for rid, words in self._keywords.items():
            for w in words:
                owners.setdefault(w, []).append(rid)
        for w, rids in owners.items():
            a.add_word(w, (w, tuple(rids)))
        if owners:
            a.make_automaton()
        return a

    def __bool__(self) -> bool:
        return any(self._keywords.values())

    def find(self, text: str) -> Iterator[tuple[str, str]]:
        """(rule id, keyword) for every keyword occurring in text."""
        if not self:
            return
        if self._automaton is None:
            self._automaton = self._build()
        for _end, (word, rids) in self._automaton.iter(text):
            for rid in rids:
                yield rid, word
