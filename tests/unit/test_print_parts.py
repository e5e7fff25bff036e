"""The parts of printing that need no cupsd: URIs, what cupsd hands a backend, the
printer registry, the watermark and the [print] configuration."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pypdf
import pytest

from baomi.agent import config as config_mod
from baomi.agent.print import backend, cups
from baomi.agent.print.convert import PDF, POSTSCRIPT, TEXT, sniff
from baomi.agent.print.printers import PrinterRegistry, printer_obj
from baomi.agent.print.watermark import NotPdf, Stamp, latin1, page_count, stamp_pdf
from baomi.common.levels import Level
from baomi.common.tomlconf import ConfigError
from tests.support import docs


def test_wrapping_a_device_uri_is_reversible() -> None:
    for uri in ("ipp://printer.example:631/ipp/print", "file:///tmp/x.out", "socket://10.0.0.9:9100"):
        assert cups.wrap(uri) == f"baomi:{uri}" and cups.unwrap(cups.wrap(uri)) == uri
        assert cups.wrap(cups.wrap(uri)) == cups.wrap(uri) and not cups.is_wrapped(uri)


def test_the_job_ticket_is_read_from_what_cupsd_hands_the_backend(tmp_path: Path) -> None:
    (tmp_path / "d00042-001").write_bytes(b"a")
    (tmp_path / "d00042-002").write_bytes(b"b")
    (tmp_path / "d00043-001").write_bytes(b"c")
    env = {"DEVICE_URI": "baomi:ipp://p/ipp/print", "PRINTER": "office", "CUPS_REQUESTROOT": str(tmp_path),
           "CONTENT_TYPE": "application/pdf"}
    t = cups.JobTicket.from_backend(["baomi:ipp://p/ipp/print", "42", "zhang", "方案", "2", "opts"], env)
    assert (t.job_id, t.user, t.title, t.copies, t.file, t.original_uri) == \
        (42, "zhang", "方案", 2, None, "ipp://p/ipp/print")
    assert t.documents() == [str(tmp_path / "d00042-001"), str(tmp_path / "d00042-002")]
    with pytest.raises(ValueError):
        cups.JobTicket.from_backend(["baomi", "x", "u", "t", "1", ""], env)
    assert backend.main(["baomi"]) == cups.CUPS_BACKEND_OK  # device discovery: nothing to offer
    assert backend.main(["baomi", "1", "u", "t", "1", ""], env={"DEVICE_URI": "ipp://p"}) == \
        cups.CUPS_BACKEND_CANCEL  # not a wrapped queue: never print around the check


def test_printer_registry_binds_by_queue_or_device_and_host_class() -> None:
    cfg = config_mod.PrintSection(printer=[
        config_mod.PrinterEntry(id="P-1", level="secret", queue="secret-room", hosts=["classified"]),
        config_mod.PrinterEntry(id="P-2", level="internal", uri="ipp://hall/ipp/print")])
    reg = PrinterRegistry.from_config(cfg.printer)
    assert reg.lookup("secret-room", "ipp://x", "classified").level == Level.SECRET
    assert reg.lookup("secret-room", "ipp://x", "unclassified") is None
    assert reg.lookup("anything", "baomi:ipp://hall/ipp/print", "unclassified").id == "P-2"
    assert printer_obj("q", "baomi:ipp://x", "HP", None) == {
        "name": "q", "uri": "ipp://x", "make_model": "HP", "registry_id": None, "class": "unregistered", "level": None}


def test_print_configuration_is_checked(tmp_path: Path) -> None:
    bad = tmp_path / "agent.toml"
    bad.write_text('[print]\nwatermark_levels = ["secrett"]\n')
    with pytest.raises(ConfigError, match="watermark_levels"):
        config_mod.load(bad)
    bad.write_text('[[print.printer]]\nid = "P"\nlevel = "secret"\n')
    with pytest.raises(ConfigError, match="queue or uri"):
        config_mod.load(bad)
    assert config_mod.AgentConfig().print.watermark_levels == ["internal", "confidential", "secret", "top_secret"]


def test_the_watermark_is_text_on_every_page_and_keeps_a_pjl_wrapper() -> None:
    pdf = docs.pdf([["内部", f"第{i}页"] for i in range(1, 4)])
    stamp = Stamp("张三", "pc-7", "2026-12-01T10:00:00Z", "office-12")
    wrapped = b"\x1b%-12345X@PJL\r\n@PJL ENTER LANGUAGE=PDF\r\n" + pdf + b"\x1b%-12345X@PJL EOJ\r\n"
    out, pages = stamp_pdf(wrapped, stamp)
    assert pages == 3 and out.startswith(b"\x1b%-12345X@PJL") and out.endswith(b"@PJL EOJ\r\n")
    reader = pypdf.PdfReader(io.BytesIO(out[out.index(b"%PDF-"):]))
    for i, page in enumerate(reader.pages, 1):
        text = page.extract_text()
        assert f"第{i}页" in text and "baomi U+5F20U+4E09 @ pc-7 2026-12-01T10:00:00Z job office-12" in text
    assert page_count(out) == 3 and page_count(b"plain text") is None
    assert latin1("zhang 张") == "zhang U+5F20"
    with pytest.raises(NotPdf):
        stamp_pdf(b"%!PS-Adobe-3.0\n", stamp)


def test_job_data_types_are_told_from_their_first_bytes() -> None:
    assert sniff(b"%PDF-1.7\n") == PDF and sniff(b"\x1b%-12345X@PJL\n%PDF-1.4") == PDF
    assert sniff(b"%!PS-Adobe-3.0") == POSTSCRIPT and sniff("内部\n通知".encode()) == TEXT
    assert sniff(b"\x1bE\x1b&l0O") == "" and sniff(b"RaS2\x00\x00") == ""


def test_config_show_lists_registered_printers(tmp_path: Path) -> None:
    from baomi.agent.commands.config import settings
    path = tmp_path / "agent.toml"
    path.write_text('[[print.printer]]\nid = "P-1"\nqueue = "q"\nlevel = "secret"\n')
    row = settings(config_mod.load(path))["print"]["printer"]
    assert row == {"value": [{"id": "P-1", "level": "secret", "queue": "q", "uri": "",
                              "hosts": ["classified", "unclassified"]}], "source": str(path)}


def test_a_job_of_several_documents_is_stamped_document_by_document() -> None:
    # cupsd concatenates the filters' output of each document: two PJL-wrapped PDFs in a row
    one, two = docs.pdf([["内部", "甲"]]), docs.pdf([["内部", "乙"], ["丙"]])
    pjl = b"\x1b%-12345X@PJL ENTER LANGUAGE=PDF\n"
    data = pjl + one + b"\x1b%-12345X\n" + pjl + two + b"\x1b%-12345X\n"
    out, pages = stamp_pdf(data, Stamp("u", "h", "t", "q-1"))
    assert pages == 3 and page_count(out) == 3 and out.count(pjl) == 2
    second = out.rindex(b"%PDF-")
    texts = [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(out[second:])).pages]
    assert "乙" in texts[0] and "丙" in texts[1] and all("job q-1" in t for t in texts)


def test_the_agents_socket_is_root_only_and_never_taken_from_a_running_agent(tmp_path: Path) -> None:
    import threading

    from baomi.agent.print.component import PrintServer
    from baomi.agent.print.protocol import JobReply, JobRequest, ask
    stop = threading.Event()
    path = tmp_path / "print.sock"
    first = PrintServer(path, lambda req: JobReply("block", False, message=f"no {req.title}"), stop)
    first.start()
    try:
        assert path.stat().st_mode & 0o777 == 0o600
        req = JobRequest(1, "u", "t", 1, "q", "ipp://p", "", [], "/nonexistent")
        if os.geteuid() == 0:  # the server answers root only
            assert ask(str(path), req, 10).message == "no t"
        with pytest.raises(RuntimeError, match="another process"):
            PrintServer(path, lambda req: JobReply("allow", True), stop).start()
    finally:
        first.stop()
    import socket
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))  # a socket file nobody listens on: left by an agent that died
    dead.close()
    again = PrintServer(path, lambda req: JobReply("allow", True), stop)
    again.start()
    again.stop()
    stop.set()
