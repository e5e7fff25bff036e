"""Printing (docs/printing.md): every CUPS queue goes through baomi's backend, which
asks the agent for each job's verdict before a byte reaches the printer.

- cups.py      — the CUPS server's queues and what cupsd hands a backend
- queues.py    — install / uninstall the backend, and find queues that bypass it
- printers.py  — the printer registry (registered printers and their level ceilings)
- protocol.py  — the backend ↔ agent request and reply over the agent's root-only socket
- jobs.py      — the agent's side: scan the job's documents, decide, stamp, record, notify
- watermark.py — the traceable stamp on every page (pikepdf)
- convert.py   — text and PostScript to PDF with CUPS's own filters
- outbox.py    — what the backend writes when the agent is not running
- backend.py   — the `baomi` backend program cupsd runs
- component.py — the agent component: the socket, the queue re-check, the outbox
"""
