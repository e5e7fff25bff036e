"""The agent's decisions, as pure tables: facts in, an Outcome out. No I/O here.

- copy.py     — a file written to a medium (file.copied / file.blocked / …)
- arrival.py  — a medium appearing and being mounted (medium.allowed / read_only / denied)
- at_rest.py  — a file found on a medium that is already there (file.discovered)
- screenlock.py — an idle or locked session (lock, verify, retry, absence)
- posture.py  — classified hosts: routes and interfaces outside the site, isolation, listeners,
                passwords (host.network_changed / external_connection / sharing / password)
- discovery.py — unclassified hosts: a classified file at rest found, re-levelled or resolved

The cells these tables look up are the policy table in baomi.common.policy;
docs/policy.md shows both, generated from this code (doc.py) and checked by
tests/unit/test_decide.py. Components gather facts, call one of these, and
apply what the Outcome says.
"""
