"""A private cupsd for tests: its own ServerRoot, spool, state and socket under a fresh
folder, file-backed queues, and nothing of the system's CUPS configuration touched.

cupsd runs filters as `lp`, so the folder is world-traversable (0755) and lives under
/tmp rather than pytest's 0700 tmp_path; it is removed when the server stops."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SYSTEM_SERVERBIN = Path("/usr/lib/cups")
PDF_PPD = Path("/usr/share/ppd/cupsfilters/Generic-PDF_Printer-PDF.ppd")


def need_cups() -> None:
    missing = [t for t in ("cupsd", "lp", "lpadmin", "lpstat", "lpoptions") if shutil.which(t) is None]
    if missing or not (SYSTEM_SERVERBIN / "filter").is_dir():
        pytest.skip(f"needs CUPS ({', '.join(missing) or '/usr/lib/cups/filter'} missing; "
                    "scripts/setup installs cups, cups-client, cups-bsd, cups-filters)")
    if os.geteuid() != 0:
        pytest.skip("needs root (cupsd runs the baomi backend as root)")


class CupsServer:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="baomi-cups-"))
        self.root.chmod(0o755)
        for d in ("conf", "bin/backend", "spool/tmp", "cache", "state", "log", "dev", "run"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
            (self.root / d).chmod(0o755)
        (self.root / "dev").chmod(0o777)
        for d in ("filter", "daemon", "monitor", "notifier", "cgi-bin", "driver"):
            if (SYSTEM_SERVERBIN / d).exists():
                (self.root / "bin" / d).symlink_to(SYSTEM_SERVERBIN / d)
        for b in (SYSTEM_SERVERBIN / "backend").iterdir():  # the real backends beside baomi's
            (self.root / "bin/backend" / b.name).symlink_to(b)
        self.socket = str(self.root / "run/cups.sock")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def backend_dir(self) -> Path:
        return self.root / "bin/backend"

    @property
    def error_log(self) -> Path:
        return self.root / "log/error_log"

    def start(self) -> "CupsServer":
        try:
            return self._start()
        except BaseException:
            self.stop()  # nothing of a server that did not come up is left behind
            raise

    def _start(self) -> "CupsServer":
        r = self.root
        (r / "conf/cupsd.conf").write_text(
            f"Listen {self.socket}\nLogLevel info\nMaxLogSize 0\nWebInterface No\nBrowsing No\nMaxJobs 0\n"
            "PreserveJobFiles No\nPreserveJobHistory Yes\n"
            "<Location />\n  Order allow,deny\n  Allow all\n</Location>\n"
            "<Location /admin>\n  Order allow,deny\n  Allow all\n</Location>\n"
            "<Policy default>\n  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n")
        (r / "conf/cups-files.conf").write_text(
            f"FileDevice Yes\nServerRoot {r}/conf\nServerBin {r}/bin\nRequestRoot {r}/spool\n"
            f"CacheDir {r}/cache\nStateDir {r}/state\nTempDir {r}/spool/tmp\nErrorLog {r}/log/error_log\n"
            f"AccessLog {r}/log/access_log\nPageLog {r}/log/page_log\nPrintcap {r}/printcap\n"
            "DataDir /usr/share/cups\nGroup lp\nSystemGroup root\n")
        self.proc = subprocess.Popen(["cupsd", "-f", "-c", f"{r}/conf/cupsd.conf", "-s", f"{r}/conf/cups-files.conf"],
                                     stdout=subprocess.DEVNULL, stderr=open(r / "log/cupsd.out", "wb"))
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cupsd exited: {(r / 'log/cupsd.out').read_text()[-2000:]}")
            if subprocess.run(["lpstat", "-h", self.socket, "-r"], capture_output=True, text=True).stdout.startswith(
                    "scheduler is running"):
                return self
            time.sleep(0.1)
        raise RuntimeError("cupsd did not start within 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)

    # -- admin tools, against this server only ----------------------------------------
    def run(self, tool: str, *args: str) -> str:
        done = subprocess.run([tool, "-h", self.socket, *args], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)}: {done.stderr}")
        return done.stdout

    def add_queue(self, name: str, uri: str, ppd: Path | None = None, model: str | None = None) -> None:
        self.run("lpadmin", "-p", name, "-E", "-v", uri, *(("-P", str(ppd)) if ppd else ()),
                 *(("-m", model) if model else ()))

    def device_uri(self, name: str) -> str:
        m = re.search(r"device-uri=(\S+)", self.run("lpoptions", "-p", name))
        return m.group(1) if m else ""

    def lp(self, queue: str, path: Path, *options: str, user: str | None = None) -> int:
        args = ["-d", queue, *options]
        if user:
            args += ["-U", user]
        out = self.run("lp", *args, str(path))
        m = re.search(r"request id is \S+-(\d+)", out)
        assert m, out
        return int(m.group(1))

    def wait_done(self, job: int, timeout: float = 90.0) -> str:
        """Wait until the job leaves the queue; its last line in the error log."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            log = self.error_log.read_text("utf-8", "replace") if self.error_log.exists() else ""
            for line in reversed(log.splitlines()):
                if f"[Job {job}] Job completed." in line or f"[Job {job}] Job canceled" in line \
                        or f"[Job {job}] Job stopped" in line:
                    return line
            time.sleep(0.1)
        raise AssertionError(f"job {job} not finished within {timeout} s:\n{self.log_of(job)}")

    def log_of(self, job: int) -> str:
        log = self.error_log.read_text("utf-8", "replace") if self.error_log.exists() else ""
        return "\n".join(line for line in log.splitlines() if f"[Job {job}]" in line)
