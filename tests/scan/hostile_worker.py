"""A subverted scan worker, for tests: it starts like agent/scan/worker.py, then answers
each file with what a document exploiting a parser could make a worker send
(BAOMI_TEST_HOSTILE names which)."""
from __future__ import annotations

import json
import os
import pickle
import sys
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle


class Payload:
    """Unpickling this creates the file BAOMI_TEST_PWNED: code run in the agent."""

    def __reduce__(self):
        return open, (os.environ["BAOMI_TEST_PWNED"], "w")


def _verdict(**changes: object) -> dict:
    v = {"path": "/etc/shadow", "level": "public", "inspectable": True, "evidence": [], "type": "text/plain",
         "size": 1, "sha256": "0" * 64}
    v.update(changes)
    return v


ANSWERS = {
    "pickle": lambda: pickle.dumps((Payload(), False)),
    "not_json": lambda: b"\x80\x04garbage",
    "huge": lambda: b" " * (17 << 20),
    "bad_level": lambda: json.dumps({"verdict": _verdict(level="ultra"), "retire": False}).encode(),
    "extra_field": lambda: json.dumps({"verdict": _verdict(__class__="os.system"), "retire": False}).encode(),
    "bad_evidence": lambda: json.dumps({"verdict": _verdict(evidence=[{"rule": "x", "zone": "body",
                                                                      "level": "secret", "hash": "0" * 64,
                                                                      "location": {"k": {"nested": 1}}}]),
                                        "retire": False}).encode(),
    "bad_reason": lambda: json.dumps({"verdict": _verdict(inspectable=False, reason="rm -rf"),
                                      "retire": False}).encode(),
}


def main() -> None:
    conn = Connection(int(sys.argv[1]))
    conn.recv()
    conn.send_bytes(json.dumps({"ready": True, "uid": os.getuid(), "refused": None}).encode())
    while True:
        try:
            conn.recv()
            os.close(recv_handle(conn))
            conn.send_bytes(ANSWERS[os.environ["BAOMI_TEST_HOSTILE"]]())
        except (EOFError, OSError):
            return


if __name__ == "__main__":
    main()
