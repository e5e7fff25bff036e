"""Fingerprints of registered documents: excerpts, reordering and small edits
match; unrelated text on the same topic does not; only hashes are stored."""
from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from baomi.common.levels import Level
from baomi.agent.scan.fingerprint import FingerprintDB, FingerprintIndex
from baomi.agent.scan.verdict import TextChunk
from baomi.agent.scan.rules import RuleSet
from tests.support import docs

PARAS = [
    "一、总体目标。到二〇二八年底，完成全部十二个地市数据中心的整合迁移，关键业务系统的可用性达到百分之九十九点九九。各地市应于每季度末报送进展情况，省级主管部门汇总后形成通报，对进度滞后的单位进行约谈并督促整改落实。",
    "二、技术路线。采用两地三中心架构，核心数据库以同步复制方式部署于主中心与同城灾备中心，异地中心承担异步备份。网络层面采用双上联与多运营商接入，存储层面采用分布式存储与集中式存储混合部署，兼顾性能、成本与可扩展性要求。",
    "三、进度安排。第一阶段完成需求调研与方案论证；第二阶段完成试点城市迁移；第三阶段全面推广并组织验收。试点城市选择应综合考虑业务规模、网络条件与人员配备，原则上优先选择基础较好、积极性较高的两到三个城市先行先试。",
    "四、经费预算。项目总投资约三点七亿元，其中硬件设备占百分之四十五，软件与服务占百分之三十五，其余为预备费。资金分年度拨付，当年未使用完毕的资金按规定结转，严禁挤占挪用，项目结束后须委托第三方机构开展绩效评价与审计。",
    "五、保障措施。成立由分管领导任组长的专项工作组，建立周例会制度，重大事项及时报告，确保各项任务按期完成。工作组下设技术、采购、安全与宣传四个小组，各小组明确责任人和联络员，形成上下联动、横向协同的工作推进机制。",
    "六、风险分析。主要风险包括供应链交付延迟、迁移窗口期业务中断以及人员技能不足，应分别制定应急预案并组织演练。针对迁移窗口期，应提前发布公告并安排夜间割接，割接前完成全量数据校验，割接后保留回退方案不少于七十二小时。",
]
UNRELATED = [
    "关于数据中心建设的一般性介绍：数据中心通常包括机房、供配电、制冷、网络与安全等子系统，建设时需综合考虑选址与能耗。",
    "业界常见的灾备方案有冷备、温备与热备，选择时应权衡恢复时间目标、恢复点目标以及投资规模，不宜一味追求最高等级。",
    "项目管理通常分为启动、规划、执行、监控与收尾五个过程组，每个过程组都有相应的输入、工具技术与输出成果。",
    "预算编制应遵循实事求是、统筹兼顾的原则，既要保证重点支出，又要避免资金闲置与浪费，并接受审计监督。",
]


def test_excerpts_reordering_and_edits_match_unrelated_does_not(tmp_path: Path) -> None:
    db = FingerprintDB(tmp_path / "fp.db")
    original = "\n".join(PARAS)
    sha = hashlib.sha256(original.encode()).hexdigest()
    db.add("数据中心整合方案", Level.SECRET, sha, original)
    db.close()
    idx = FingerprintIndex(tmp_path / "fp.db")

    def match(text: str, sha256: str | None = None):
        return idx.match([text], sha256, 0.30, 300)

    exact = match("anything", sha)
    assert [(e.rule, e.level) for e in exact] == [("fingerprint.exact", Level.SECRET)]
    assert match("\n".join(PARAS[:4]))[0].level == Level.SECRET, "two thirds of the document"
    assert match("\n".join(reversed(PARAS)))[0].rule == "fingerprint.partial", "paragraphs reordered"
    edited = "\n".join(p.replace("三点七亿元", "四亿元").replace("周例会", "双周例会") for p in PARAS)
    assert match(edited), "small edits"
    assert match("附件摘录：\n" + PARAS[1] + "\n" + PARAS[2] + "\n" + PARAS[3] + "\n" + PARAS[5] + "\n以上供参考。"), "an excerpt inside other text"
    assert match("\n".join(UNRELATED)) == [], "same topic, different text"
    assert match(PARAS[0]) == [], "one paragraph is below min_chars and the threshold"
    raw = sqlite3.connect(tmp_path / "fp.db").execute("SELECT * FROM documents").fetchall()
    assert "二〇二八" not in repr(raw), "only hashes are stored"


def test_ruleset_uses_the_database_and_sees_new_documents(tmp_path: Path) -> None:
    rs = RuleSet.load([], tmp_path / "fp.db")
    chunks = [TextChunk("body", p, {"paragraph": i}) for i, p in enumerate(PARAS)]
    assert rs.evaluate(chunks) == []  # no database yet
    db = FingerprintDB(tmp_path / "fp.db")
    db.add("方案", Level.CONFIDENTIAL, "0" * 64, "\n".join(PARAS))
    db.close()
    ev = rs.evaluate(chunks)
    assert [e.rule for e in ev] == ["fingerprint.partial"] and rs.level(ev) == Level.CONFIDENTIAL
    assert ev[0].location["fingerprint"] == "方案"


def test_fingerprint_cli_add_list_remove_and_scan(tmp_path: Path) -> None:
    conf = tmp_path / "agent.toml"
    conf.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n[scan]\nrule_dirs = []\n')
    src = tmp_path / "方案.docx"
    src.write_bytes(docs.docx(PARAS))
    agent = [sys.executable, "-m", "baomi.agent.cli"]
    r = subprocess.run([*agent, "fingerprint", "add", str(src), "--level", "secret", "--config", str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*agent, "fingerprint", "add", str(src), "--level", "secret", "--config", str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "already registered" in r.stderr
    rows = [json.loads(l) for l in subprocess.run([*agent, "fingerprint", "list", "--json", "--config", str(conf)],
                                                  capture_output=True, text=True, timeout=60).stdout.splitlines()]
    assert [(r["name"], r["level"]) for r in rows] == [("方案.docx", "secret")]
    leak = tmp_path / "摘录.txt"
    leak.write_text("\n".join(PARAS[2:6]), encoding="gb18030")
    r = subprocess.run([*agent, "scan", "--json", "--config", str(conf), str(leak)], capture_output=True, text=True,
                       timeout=60)
    out = json.loads(r.stdout)
    assert r.returncode == 1 and out["level"] == "secret" and out["evidence"][0]["rule"] == "fingerprint.partial"
    r = subprocess.run([*agent, "fingerprint", "remove", "方案.docx", "--config", str(conf)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0
    r = subprocess.run([*agent, "scan", "--json", "--config", str(conf), str(leak)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["level"] == "public"


@pytest.mark.parametrize("level", ["public", "ultra"])
def test_fingerprint_add_refuses_bad_levels(tmp_path: Path, level: str) -> None:
    r = subprocess.run([sys.executable, "-m", "baomi.agent.cli", "fingerprint", "add", __file__, "--level", level],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--level" in r.stderr
