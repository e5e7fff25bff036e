"""The collector over TLS with a throwaway CA (the agent side verifies it), and
SIEM forwarding to a real rsyslogd receiving RFC 5424 over TCP."""
from __future__ import annotations

import datetime as dt
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.collector import Collector, SigningAgent, free_port

pytestmark = pytest.mark.timeout(180)


def make_ca(folder: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server cert, server key) for 127.0.0.1."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "baomi test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "collector")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def test_tls_with_the_sites_own_ca(tmp_path: Path) -> None:
    ca, cert, key = make_ca(tmp_path / "pki")
    trust = ssl.create_default_context(cafile=str(ca))
    with Collector(tmp_path / "c", tls=(cert, key)).start(verify=trust) as c:
        assert c.url.startswith("https://")
        agent = SigningAgent(c.url, verify=trust)
        assert agent.enroll(c.token()).status_code == 200
        assert agent.send([agent.event()]).json()["stored"] == 1
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{c.url}/api/v1/health", verify=True)  # not a publicly trusted certificate
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{c.port}/api/v1/health", timeout=5)  # no plain HTTP beside TLS


def test_plain_http_refused_off_loopback(tmp_path: Path) -> None:
    conf = tmp_path / "collector.toml"
    conf.write_text('listen = "0.0.0.0:8443"\n')
    r = subprocess.run([*__import__("tests.support.collector", fromlist=["COLLECTOR"]).COLLECTOR, "serve",
                        "--config", str(conf)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "plain HTTP is allowed only on loopback" in r.stderr


@pytest.mark.skipif(not shutil.which("rsyslogd"), reason="rsyslogd not installed (Debian package rsyslog)")
def test_events_are_forwarded_to_rsyslog(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "siem.log"
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(f'''
global(workDirectory="{tmp_path}")
module(load="imtcp")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="raw" type="string" string="%rawmsg%\\n")
*.* action(type="omfile" file="{out}" template="raw")
''')
    rs = subprocess.Popen(["rsyslogd", "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslog.pid")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)
        assert rs.poll() is None, rs.stderr.read()
        extra = f"[syslog]\nenabled = true\nhost = \"127.0.0.1\"\nport = {port}\n"
        with Collector(tmp_path / "c", extra=extra) as c:
            agent = SigningAgent(c.url)
            agent.enroll(c.token())
            events = [agent.event("file.blocked", severity="high", action="block",
                                  file={"path": "/media/u/机密.docx", "sha256": "cd" * 32, "level": "secret"})
                      for _ in range(20)]
            assert agent.send(events).status_code == 200
            deadline = time.monotonic() + 20
            text = ""
            while time.monotonic() < deadline:
                text = out.read_text(encoding="utf-8", errors="replace") if out.exists() else ""
                if all(e["id"] in text for e in events):
                    break
                time.sleep(0.3)
        for e in events:
            assert f'id="{e["id"]}"' in text
        line = next(l for l in text.splitlines() if events[0]["id"] in l)
        assert line.startswith("<107>1 ") and 'kind="file.blocked"' in line and 'level="secret"' in line
        assert "机密.docx" in line
    finally:
        rs.terminate()
        rs.wait(10)


def test_hsts_header_under_tls(tmp_path: Path) -> None:
    ca, cert, key = make_ca(tmp_path / "pki")
    trust = ssl.create_default_context(cafile=str(ca))
    with Collector(tmp_path / "c", tls=(cert, key)).start(verify=trust) as c:
        for path in ("/login", "/api/v1/health"):
            r = httpx.get(f"{c.url}{path}", verify=trust)
            assert r.headers.get("strict-transport-security", "").startswith("max-age="), path
    with Collector(tmp_path / "plain") as c:  # no HSTS over plain HTTP (loopback demo)
        assert "strict-transport-security" not in httpx.get(f"{c.url}/login").headers
