"""ingest: the highest stored seq per agent and the announced drops not yet
passed, so the contiguous watermark advances incrementally (service/ingest.py)

Revision ID: 0006_incremental_advance
Revises: 0005_login_throttle
"""
import json

from alembic import op
import sqlalchemy as sa

revision = "0006_incremental_advance"
down_revision = "0005_login_throttle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(sa.Column("max_seq", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_table(
        "announced_gaps",
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),        # the agent.gap event's own seq
        sa.Column("first_seq", sa.BigInteger(), nullable=False),  # the dropped range it announces
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", "seq"),
    )
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE agents SET max_seq = COALESCE((SELECT MAX(seq) FROM events WHERE "
                         "events.agent_id = agents.agent_id AND events.kind <> 'agent.gap'), 0)"))
    rows = conn.execute(sa.text("SELECT e.agent_id, e.seq, e.body FROM events e JOIN agents a ON "
                                "a.agent_id = e.agent_id WHERE e.kind = 'agent.gap' AND e.seq > a.last_seq"))
    for agent_id, seq, body in rows.all():
        d = json.loads(body).get("details") or {}
        if isinstance(d.get("first_seq"), int) and isinstance(d.get("last_seq"), int):
            conn.execute(sa.text("INSERT INTO announced_gaps (agent_id, seq, first_seq, last_seq) "
                                 "VALUES (:a, :s, :f, :l)"),
                         {"a": agent_id, "s": seq, "f": d["first_seq"], "l": d["last_seq"]})


def downgrade() -> None:
    op.drop_table("announced_gaps")
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_column("max_seq")
