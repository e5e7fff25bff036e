"""The device gate against real loop devices with real ext4 and exFAT, while
`baomi-agent run --config FILE` runs as a subprocess (tests/support/media.py).

Loop devices are created at high numbers (loop300-loop399) and only those are
made removable by `[media] extra_removable`, so other tests' loop devices on
this machine are never gated by these agents.
"""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.media import LoopMedium, _run

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

VENV = Path(sys.executable).parent
AGENT = str(VENV / "baomi-agent")
PATTERN = "loop3[0-9][0-9]"
_next = [os.getpid() % 100]
DEADLINE = 15.0   # generous: the gate normally acts well within 2 s (bench/gate.py measures it)


def free_loop_number() -> int:
    """A free loop number in 300-399, taken round-robin so a node just released is not reused at once."""
    for _ in range(100):
        n = 300 + _next[0] % 100
        _next[0] += 1
        try:
            if int(Path(f"/sys/block/loop{n}/size").read_text()) == 0:
                return n
        except FileNotFoundError:
            return n
    raise RuntimeError("no free loop device in loop300-loop399")


class Medium(LoopMedium):
    """LoopMedium on a chosen loop number, so only our agents' pattern matches it."""

    def attach(self) -> str:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.image, "wb") as f:
            f.truncate(self.size_mb * 1024 * 1024)
        from tests.support.media import MKFS
        label = self.label if self.fstype == "ext4" else self.label[:11]
        _run(*MKFS[self.fstype], "-L", label, str(self.image))
        return self.bind()

    def bind(self) -> str:
        n = free_loop_number()
        _run("losetup", f"/dev/loop{n}", str(self.image))
        self.devnode = f"/dev/loop{n}"
        return self.devnode

    def unbind(self) -> None:
        subprocess.run(["blockdev", "--setrw", self.devnode], capture_output=True)
        subprocess.run(["losetup", "-d", self.devnode], capture_output=True)
        self.devnode = None


def wait_for(predicate, deadline: float = DEADLINE, what: str = "condition"):
    end = time.monotonic() + deadline
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def try_mount(medium: Medium) -> bool:
    try:
        medium.mount()
        return True
    except subprocess.CalledProcessError:
        return False


def write_fails(mountpoint: Path) -> bool:
    """True when a new file cannot be written on the medium (read-only, refused or unmounted)."""
    if not os.path.ismount(mountpoint):
        return True
    try:
        with open(mountpoint / f"probe-{time.monotonic_ns()}", "w") as f:
            f.write("x")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        assert exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.ENOENT), exc
        return True
    return not os.path.ismount(mountpoint)


class Agent:
    def __init__(self, tmp: Path, host_class: str, policy: dict[str, str] | None = None, rescan_s: float = 2.0,
                 gateway: bool = True):
        self.dir = tmp
        self.config = tmp / "agent.toml"
        self.registry = tmp / "media.toml"
        self.priv, self.pub = tmp / "secadmin.pem", tmp / "secadmin.pub.pem"
        if not self.priv.exists():
            subprocess.run([AGENT, "media", "keygen", "--private", str(self.priv), "--public", str(self.pub)],
                           check=True, capture_output=True)
        lines = [f'[host]\nclass = "{host_class}"\nname = "test-host"\n',
                 f'[paths]\nstate_dir = "{tmp / "state"}"\n',
                 f'[media]\nextra_removable = ["{PATTERN}"]\nregistry = "{self.registry}"\n'
                 f'registry_public_key = "{self.pub}"\nrescan_s = {rescan_s}\n',
                 f'[enforce]\ngateway_root = "{tmp / "gw"}"\ngateway = {"true" if gateway else "false"}\n',
                 # the daemon runs in the machine's own network namespace: posture would block its radios
                 '[posture]\nenabled = false\n']
        if policy:
            lines.append("[policy.actions]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in policy.items()))
        self.config.write_text("\n".join(lines))
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Agent":
        self.log = open(self.dir / "agent.log", "ab")
        self.proc = subprocess.Popen([AGENT, "run", "--config", str(self.config)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        def started() -> list[dict]:
            if self.proc.poll() is not None:
                tail = (self.dir / "agent.log").read_text(errors="replace")[-2000:]
                raise AssertionError(f"agent exited with {self.proc.returncode} before starting:\n{tail}")
            return self.events("agent.started")
        wait_for(started, deadline=45, what="agent start")
        # the first full scan and the mount watcher are running once media.* state settled; a short grace
        time.sleep(0.5)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def events(self, kind: str | None = None) -> list[dict]:
        cmd = [AGENT, "events", "--config", str(self.config), "--json"] + (["--kind", kind] if kind else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def events_for(self, kind: str, devnode: str) -> list[dict]:
        return [e for e in self.events(kind) if (e.get("medium") or {}).get("devnode") == devnode]

    def register(self, devnode: str, level: str, hosts: str = "classified,unclassified",
                 medium_id: str = "M-TEST-1") -> None:
        subprocess.run([AGENT, "media", "register", "--config", str(self.config), "--key", str(self.priv),
                        "--id", medium_id, "--owner", "张三", "--level", level, "--hosts", hosts,
                        "--device", devnode], check=True, capture_output=True)


@pytest.fixture
def agent_factory(tmp_path, request, artifacts):
    agents = []

    def make(host_class: str, **kw) -> Agent:
        a = Agent(tmp_path, host_class, **kw)
        agents.append(a)
        return a
    yield make
    for a in agents:
        a.stop()
        # keep the agent's log and events for people reading a failed run
        keep = artifacts / "media" / request.node.name.replace("/", "_")
        keep.mkdir(parents=True, exist_ok=True)
        if (a.dir / "agent.log").exists():
            (keep / "agent.log").write_bytes((a.dir / "agent.log").read_bytes())
        try:
            (keep / "events.jsonl").write_text("".join(json.dumps(e, ensure_ascii=False) + "\n"
                                                       for e in a.events()))
        except subprocess.CalledProcessError:
            pass


@pytest.fixture
def media(tmp_path):
    made = []

    def make(fstype: str = "ext4", **kw) -> Medium:
        m = Medium(fstype, size_mb=16 if fstype == "exfat" else 32, workdir=tmp_path / f"m{len(made)}", **kw)
        made.append(m)
        return m
    yield make
    for m in made:
        m.unmount()
        if m.devnode:
            m.unbind()
        m.image.unlink(missing_ok=True)


@pytest.mark.parametrize("fstype", ["ext4", "exfat"])
def test_personal_medium_on_classified_host_becomes_unwritable(agent_factory, media, fstype):
    agent = agent_factory("classified").start()
    m = media(fstype)
    dev = m.attach()
    try_mount(m)  # a user (or desktop automounter) mounting it at once
    wait_for(lambda: write_fails(m.mountpoint), what="medium unwritable")
    denied = wait_for(lambda: agent.events_for("medium.denied", dev), what="medium.denied event")
    ev = denied[0]
    assert ev["action"] == "deny" and ev["rule"] == "classified.personal" and ev["severity"] == "high"
    assert ev["medium"]["fs_uuid"] == m.fs_uuid and ev["medium"]["class"] == "personal"
    assert ev["medium"]["fs_type"] == fstype and ev["medium"]["size"] > 0
    assert agent.events_for("medium.inserted", dev)
    # a second mount attempt does not give a writable medium either
    if not os.path.ismount(m.mountpoint):
        try_mount(m)
        wait_for(lambda: write_fails(m.mountpoint), what="still unwritable after a second mount")
    assert agent.alive()


@pytest.mark.parametrize("fstype", ["ext4", "exfat"])
def test_registered_medium_stays_writable_on_classified_host(agent_factory, media, fstype):
    agent = agent_factory("classified")
    m = media(fstype)
    dev = m.attach()
    agent.register(dev, "secret", hosts="classified")
    agent.start()   # the medium is already attached when the agent starts
    allowed = wait_for(lambda: agent.events_for("medium.allowed", dev), what="medium.allowed")
    assert allowed[0]["rule"] == "classified.registered"
    assert allowed[0]["medium"]["registry_id"] == "M-TEST-1" and allowed[0]["medium"]["level"] == "secret"
    mp = m.mount()
    wait_for(lambda: agent.events_for("medium.mounted", dev), what="medium.mounted")
    (mp / "report.txt").write_text("ok")
    time.sleep(1.0)   # give a wrong gate the chance to act
    assert os.path.ismount(mp) and (mp / "report.txt").read_text() == "ok"
    assert not write_fails(mp)
    assert not agent.events_for("medium.denied", dev)
    m.unmount()
    wait_for(lambda: agent.events_for("medium.unmounted", dev), what="medium.unmounted")


@pytest.mark.parametrize("fstype", ["ext4", "exfat"])
def test_read_only_means_writes_fail(agent_factory, media, fstype):
    agent = agent_factory("classified", policy={"classified.personal": "read_only"}).start()
    m = media(fstype)
    dev = m.attach()
    wait_for(lambda: agent.events_for("medium.read_only", dev), what="medium.read_only")
    mp = m.mount()
    with pytest.raises(OSError) as err:
        (mp / "x.txt").write_text("must not land")
    assert err.value.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
    ev = agent.events_for("medium.read_only", dev)[0]
    assert ev["action"] == "read_only" and ev["rule"] == "classified.personal"


def test_read_write_mount_before_agent_is_remounted_read_only(agent_factory, media):
    agent = agent_factory("classified", policy={"classified.personal": "read_only"})
    m = media("ext4")
    dev = m.attach()
    mp = m.mount()
    (mp / "before.txt").write_text("written before the agent ran")
    agent.start()
    wait_for(lambda: os.path.ismount(mp) and write_fails(mp) and (mp / "before.txt").exists(),
             what="remounted read-only")
    ev = wait_for(lambda: [e for e in agent.events_for("medium.read_only", dev)
                           if e["details"].get("remounted")], what="remount event")
    assert ev[0]["details"]["mountpoint"] == str(mp)


def test_cross_use_medium_denied_on_unclassified_host(agent_factory, media):
    agent = agent_factory("unclassified")
    m = media("ext4")
    dev = m.attach()
    agent.register(dev, "confidential")
    agent.start()
    m_mounted = try_mount(m)
    wait_for(lambda: write_fails(m.mountpoint), what="cross-use medium unwritable")
    ev = wait_for(lambda: agent.events_for("medium.denied", dev), what="medium.denied")[0]
    assert ev["rule"] == "unclassified.registered.classified"
    assert ev["medium"]["class"] == "registered" and ev["medium"]["level"] == "confidential"
    assert m_mounted is False or not agent.events_for("medium.allowed", dev)


def test_personal_medium_on_unclassified_host_is_writable(agent_factory, media):
    agent = agent_factory("unclassified").start()
    m = media("ext4")
    dev = m.attach()
    wait_for(lambda: agent.events_for("medium.allowed", dev), what="medium.allowed")
    mp = m.mount()
    wait_for(lambda: agent.events_for("medium.mounted", dev), what="medium.mounted")
    (mp / "a.txt").write_text("fine")
    assert not write_fails(mp)
    ev = agent.events_for("medium.allowed", dev)[0]
    assert ev["rule"] == "unclassified.personal" and ev["medium"]["class"] == "personal"


def test_mounts_are_published_on_the_bus(tmp_path, media):
    """In process: the copy-enforcement side receives MountedMedium on medium.mounted / medium.unmounted,
    for media mounted before the agent starts as well as after."""
    import queue

    from baomi.agent.config import AgentConfig
    from baomi.agent.context import open_context
    from baomi.agent.media.component import MediaComponent
    from baomi.agent.messages import MountedMedium

    early = media("ext4")
    early_dev = early.attach()
    early_mp = early.mount()
    cfg = AgentConfig()
    cfg.host.class_ = "unclassified"
    cfg.paths.state_dir = tmp_path / "state"
    cfg.media.extra_removable = [PATTERN]
    cfg.media.registry = tmp_path / "none.toml"
    ctx = open_context(cfg)
    got: queue.Queue = queue.Queue()
    ctx.bus.subscribe("medium.mounted", lambda mm: got.put(("mounted", mm)))
    ctx.bus.subscribe("medium.unmounted", lambda mm: got.put(("unmounted", mm)))
    comp = MediaComponent(ctx)
    comp.start()
    try:
        topic, mm = got.get(timeout=DEADLINE)
        assert topic == "mounted" and isinstance(mm, MountedMedium)
        assert mm.devnode == early_dev and mm.mountpoint == early_mp and mm.read_only is False
        assert mm.medium_class == "personal" and mm.level_ceiling is None and mm.registry_id is None
        assert mm.identity["fs_uuid"] == early.fs_uuid and mm.identity["class"] == "personal"
        late = media("exfat")
        late.attach()
        late_mp = late.mount()
        topic, mm2 = got.get(timeout=DEADLINE)
        assert topic == "mounted" and mm2.mountpoint == late_mp and mm2.identity["fs_type"] == "exfat"
        late.unmount()
        topic, mm3 = got.get(timeout=DEADLINE)
        assert topic == "unmounted" and mm3.key == mm2.key
    finally:
        comp.stop()
        ctx.spool.close()


def test_registering_an_attached_medium_lifts_the_gate(agent_factory, media):
    """The administrator registers a stick that was denied; the running agent re-reads the
    registry by itself, and the same stick becomes usable without re-plugging."""
    agent = agent_factory("classified", rescan_s=0.5).start()
    m = media("ext4")
    dev = m.attach()
    wait_for(lambda: agent.events_for("medium.denied", dev), what="medium.denied")
    agent.register(dev, "confidential", hosts="classified")
    allowed = wait_for(lambda: agent.events_for("medium.allowed", dev), what="medium.allowed")[0]
    assert allowed["medium"]["registry_id"] == "M-TEST-1" and allowed["rule"] == "classified.registered"
    assert [e for e in agent.events("registry.loaded") if not e["details"].get("initial")]
    mp = m.mount()
    (mp / "ok.txt").write_text("writable now")
    assert not write_fails(mp)
