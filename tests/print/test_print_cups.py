"""Printing through a real cupsd (tests/support/cups.py): every job goes through baomi's
backend, is scanned before a byte reaches the device file, recorded as print.job,
blocked or stamped as the policy says."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pypdf
import pytest

from baomi.common.schema import check_event

from tests.support import docs
from tests.support.cups import PDF_PPD
from tests.support.enforce_harness import wait_for

pytestmark = pytest.mark.root

MARKED = {
    "marked.pdf": (docs.pdf([["机密★1年", "关于项目的通知", "正文内容"]]), "secret"),
    # as Word's "save as PDF" gives it: marking on the first line, title in the metadata, two pages
    "from-docx.pdf": (docs.pdf([["秘密★6个月", "关于2026年工作方案", "一、总体要求"], ["二、工作安排"]],
                               title="工作方案.docx"), "confidential"),
    "marked.txt": ("绝密★启用前\n关于某事的报告\n正文\n".encode("utf-8"), "top_secret"),
    "marked.ps": (b"%!PS\n/Helvetica findfont 24 scalefont setfont 72 740 moveto (SECRET//NOFORN) show\n"
                  b"72 700 moveto (Project report) show showpage\n", "secret"),
}
CLEAN = docs.pdf([["会议纪要", "今天讨论了秘密花园的绿化"]])
INTERNAL = docs.pdf([["内部", "关于食堂的通知"], ["第二页"]])
ZH = {"confidential": "秘密", "secret": "机密", "top_secret": "绝密"}


def _write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def _text(data: bytes) -> str:
    start = data.find(b"%PDF-")
    assert start >= 0, data[:80]
    return "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(data[start:])).pages)


def test_marked_documents_are_blocked_before_any_byte_reaches_the_printer(rig_factory, tmp_path) -> None:
    rig = rig_factory()
    out = rig.queue("office")
    rig.install()
    rig.start_agent()
    told: list[tuple[int, str, str, str]] = []
    rig.ctx.notifiers.append(lambda uid, summary, body, urgency: told.append((uid, summary, body, urgency)) or True)
    for name, (data, level) in MARKED.items():
        job = rig.cups.lp("office", _write(tmp_path, name, data))
        assert "canceled" in rig.cups.wait_done(job), rig.cups.log_of(job)
        assert not out.exists(), f"{name}: bytes reached the device file"
        assert f"baomi: {ZH[level]} document blocked on this printer" in rig.cups.log_of(job)
        ev = rig.job_event(job)
        assert (ev["action"], ev["rule"], ev["severity"]) == \
            ("block", f"unclassified.printer.unregistered.{level}", "high")
        assert ev["file"]["level"] == level and ev["file"]["evidence"], name
        assert ev["details"]["printer"]["name"] == "office" and ev["details"]["printer"]["class"] == "unregistered"
    # the job's user (root, who ran lp) was told each time, on the desktop
    wait_for(lambda: len(told) == len(MARKED), what="a notification per blocked job")
    assert {t[0] for t in told} == {0} and all(t[3] == "critical" for t in told)
    assert any("marked.pdf" in t[1] and "office" in t[2] for t in told), told


def test_a_clean_document_prints_unchanged_and_is_recorded(rig_factory, tmp_path) -> None:
    rig = rig_factory()
    out = rig.queue("office")
    rig.install()
    rig.start_agent()
    job = rig.cups.lp("office", _write(tmp_path, "minutes.pdf", CLEAN), "-n", "2", "-t", "会议纪要")
    assert "completed" in rig.cups.wait_done(job), rig.cups.log_of(job)
    assert out.read_bytes() == CLEAN  # public: no watermark, the printer gets the document as it was
    ev = rig.job_event(job)
    assert (ev["action"], ev["rule"], ev["file"]["level"]) == ("audit", "unclassified.printer.unregistered.public",
                                                               "public")
    d = ev["details"]
    assert (d["title"], d["pages"], d["copies"], d["job_user"]) == ("会议纪要", 1, 2, "root")
    assert d["printer"] == {"name": "office", "uri": f"file://{out}", "make_model": "Local Raw Printer",
                            "registry_id": None,
                            "class": "unregistered", "level": None}
    assert ev["user"]["name"] == "root" and ev["user"]["uid"] == 0
    assert d["watermark"] == {"applied": False}
    assert check_event(ev) is None  # what the collector accepts


def test_an_internal_document_prints_with_a_watermark_in_its_text(rig_factory, tmp_path) -> None:
    rig = rig_factory()
    raw = rig.queue("office")
    driven = rig.queue("pdfprinter", PDF_PPD if PDF_PPD.exists() else None)  # filters: the printer's own PDF
    rig.install()
    rig.start_agent()
    for queue, out, name, data in (("office", raw, "notice.pdf", INTERNAL),
                                   ("office", raw, "notice.txt", "内部\n关于食堂的通知\n".encode("utf-8")),
                                   ("pdfprinter", driven, "notice.pdf", INTERNAL)):
        job = rig.cups.lp(queue, _write(tmp_path, name, data))
        assert "completed" in rig.cups.wait_done(job), rig.cups.log_of(job)
        ev = rig.job_event(job)
        assert (ev["action"], ev["file"]["level"]) == ("audit", "internal")
        if queue == "pdfprinter" and PDF_PPD.exists():
            assert ev["details"]["printer"]["make_model"] == "Generic PDF Printer"
        wm = ev["details"]["watermark"]
        assert wm["applied"], wm
        text = _text(out.read_bytes())
        assert f"job {queue}-{job}" in text and f"@ {rig.cfg.host.name}" in text and "baomi root" in text, text
        assert wm["text"] in text
        assert "食堂" in text or name.endswith(".txt")  # the page's own text is still text, not pixels
        assert ev["details"]["pages"] == (2 if name.endswith(".pdf") else 1)
        out.unlink()
    # a job of two documents: each is stamped, on either kind of queue
    second = _write(tmp_path, "second.pdf", docs.pdf([["内部", "第二份"]]))
    for queue, out in (("office", raw), ("pdfprinter", driven)):
        out_text = rig.cups.run("lp", "-d", queue, str(_write(tmp_path, "first.pdf", INTERNAL)), str(second))
        job = int(out_text.split()[3].rsplit("-", 1)[1])
        assert "completed" in rig.cups.wait_done(job), rig.cups.log_of(job)
        ev = rig.job_event(job)
        assert (ev["details"]["documents"], ev["details"]["pages"]) == (2, 3)
        data = out.read_bytes()
        cut = data.rfind(b"%PDF-")
        texts = [_text(data[:cut]), _text(data[cut:])]
        assert "食堂" in texts[0] and "第二份" in texts[1] and all(f"job {queue}-{job}" in t for t in texts)
        out.unlink()


@pytest.mark.parametrize("required", [False, True])
def test_driver_output_in_a_printer_language_cannot_take_the_watermark(rig_factory, tmp_path, required) -> None:
    rig = rig_factory(extra=f"watermark_required = {'true' if required else 'false'}")
    out = rig.queue("laser", model="drv:///sample.drv/generic.ppd")  # the driver sends PostScript
    rig.install()
    rig.start_agent()
    job = rig.cups.lp("laser", _write(tmp_path, "notice.pdf", INTERNAL))
    last = rig.cups.wait_done(job)
    ev = rig.job_event(job)
    assert ev["details"]["watermark"]["applied"] is False and "postscript" in ev["details"]["watermark"]["why"]
    if required:
        assert "canceled" in last and not out.exists()
        assert (ev["action"], ev["rule"]) == ("block", "print.watermark_required")
        assert "watermark cannot be applied" in rig.cups.log_of(job)
    else:
        assert "completed" in last and out.read_bytes().startswith(b"%!PS")
        assert (ev["action"], ev["rule"]) == ("audit", "unclassified.printer.unregistered.internal")


SECRET_PRINTER = '[[print.printer]]\nid = "P-2026-01"\nqueue = "secret-room"\nlevel = "secret"\n'


def test_a_registered_printer_prints_up_to_its_ceiling(rig_factory, tmp_path) -> None:
    rig = rig_factory(printers=SECRET_PRINTER, host_class="classified")
    secret_out = rig.queue("secret-room")
    other_out = rig.queue("hallway")
    rig.install()
    rig.start_agent()
    job = rig.cups.lp("secret-room", _write(tmp_path, "s.pdf", MARKED["marked.pdf"][0]))
    assert "completed" in rig.cups.wait_done(job), rig.cups.log_of(job)
    ev = rig.job_event(job)
    assert (ev["action"], ev["rule"]) == ("audit", "classified.printer.registered.within_ceiling")
    assert ev["details"]["printer"]["registry_id"] == "P-2026-01" and ev["details"]["watermark"]["applied"]
    assert "P-2026-01" not in _text(secret_out.read_bytes()) and "secret-room-" in _text(secret_out.read_bytes())

    top = docs.pdf([["绝密★长期", "关于某事的决定"]])
    job = rig.cups.lp("secret-room", _write(tmp_path, "ts.pdf", top))
    assert "canceled" in rig.cups.wait_done(job)
    assert "baomi: 绝密 document blocked on this printer" in rig.cups.log_of(job)
    assert rig.job_event(job)["rule"] == "classified.printer.registered.above_ceiling"

    job = rig.cups.lp("hallway", _write(tmp_path, "c.pdf", CLEAN))  # classified host: only registered printers
    assert "canceled" in rig.cups.wait_done(job)
    assert not other_out.exists()
    assert rig.job_event(job)["rule"] == "classified.printer.unregistered.public"


def test_a_queue_added_after_install_is_reported_until_it_is_covered(rig_factory) -> None:
    rig = rig_factory(extra="wrap_new_queues = false")
    rig.queue("office")
    rig.install()
    rig.start_agent()
    assert rig.component.check_queues() == [] and rig.events("print.unprotected_queue") == []
    out = rig.queue("new-queue")
    found = rig.component.check_queues()
    assert [q.name for q in found] == ["new-queue"]
    rig.component.check_queues()  # reported once per bypassing URI, not once per check
    events = rig.events("print.unprotected_queue")
    assert len(events) == 1 and events[0]["details"] == {
        "queue": "new-queue", "uri": f"file://{out}", "make_model": "Local Raw Printer", "covered": False}
    assert events[0]["severity"] == "high" and check_event(events[0]) is None
    rig.install()  # the administrator covers it
    assert rig.component.check_queues() == [] and len(rig.events("print.unprotected_queue")) == 1
    assert rig.cups.device_uri("new-queue") == f"baomi:file://{out}"


def test_the_agent_wraps_a_new_queue_itself_by_default(rig_factory) -> None:
    rig = rig_factory()
    rig.install()
    rig.start_agent()
    out = rig.queue("late")
    rig.component.check_queues()
    (ev,) = rig.events("print.unprotected_queue")
    assert ev["details"]["queue"] == "late" and ev["details"]["covered"] is True
    assert rig.cups.device_uri("late") == f"baomi:file://{out}"
    assert rig.component.check_queues() == []


def test_with_the_agent_stopped_jobs_fail_closed_and_are_recorded_later(rig_factory, tmp_path) -> None:
    rig = rig_factory()
    out = rig.queue("office")
    rig.install()  # the agent is not running
    job = rig.cups.lp("office", _write(tmp_path, "minutes.pdf", CLEAN))
    assert "canceled" in rig.cups.wait_done(job), rig.cups.log_of(job)
    assert not out.exists()
    assert "baomi agent is not running" in rig.cups.log_of(job)
    rig.start_agent()  # the decision the backend took alone is recorded when the agent runs again
    ev = rig.job_event(job)
    assert (ev["action"], ev["rule"]) == ("block", "uninspectable.printer.unregistered")
    assert check_event(ev) is None
    assert ev["details"]["agent_unavailable"] and ev["file"]["inspectable"] is False


def test_with_the_agent_stopped_a_registered_printer_prints_stamped_and_it_is_recorded_later(rig_factory,
                                                                                           tmp_path) -> None:
    rig = rig_factory(printers=SECRET_PRINTER, host_class="classified")
    out = rig.queue("secret-room")
    rig.install()
    job = rig.cups.lp("secret-room", _write(tmp_path, "s.pdf", MARKED["marked.pdf"][0]))
    assert "completed" in rig.cups.wait_done(job), rig.cups.log_of(job)
    assert f"job secret-room-{job}" in _text(out.read_bytes())  # unread, so stamped: traceable all the more
    rig.start_agent()
    ev = rig.job_event(job)
    assert (ev["action"], ev["rule"]) == ("audit", "uninspectable.printer.registered")
    assert ev["details"]["watermark"]["applied"] and ev["details"]["printer"]["registry_id"] == "P-2026-01"


def _cli(rig, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "baomi.agent.cli", "print", *args, "--config", str(rig.config_path)],
                          capture_output=True, text=True, timeout=120)


def test_uninstall_gives_every_queue_its_original_uri_back(rig_factory) -> None:
    rig = rig_factory()
    rig.queue("a")
    rig.cups.add_queue("b", "ipp://printer.example:631/ipp/print")
    before = {q: rig.cups.device_uri(q) for q in ("a", "b")}
    rig.install()
    assert {q: rig.cups.device_uri(q) for q in ("a", "b")} == {q: f"baomi:{u}" for q, u in before.items()}
    backend = rig.cups.backend_dir / "baomi"
    assert backend.stat().st_mode & 0o777 == 0o700 and backend.stat().st_uid == 0
    assert _cli(rig, "status").returncode == 0
    rig.queue("c")
    status = _cli(rig, "status")
    assert status.returncode == 1 and "UNPROTECTED" in status.stdout and "c " in status.stdout
    done = _cli(rig, "uninstall")
    assert done.returncode == 0, done.stderr
    assert {q: rig.cups.device_uri(q) for q in ("a", "b")} == before
    assert not backend.exists()
