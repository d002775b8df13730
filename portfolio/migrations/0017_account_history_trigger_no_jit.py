"""No JIT inside the account history triggers.

Migration 0009 disabled nested loops inside the update trigger's function, so its join of
the OLD and NEW transition tables is hashed or merged. But a disabled plan node is not
removed, it is priced at `disable_cost` (10^10): the one-row context CTE is still joined
by a nested loop, so every plan of the trigger's INSERT costs over 10^10, far above
`jit_above_cost` (100,000) and the inlining and optimisation thresholds (500,000). Every
bulk UPDATE of accounts therefore compiled the trigger's query with LLVM, fully
optimised, once per statement: 0.5-0.8 s per batch whatever its size (auto_explain at 1M
accounts: "JIT: ... Inlining 194 ms, Optimization 363 ms, Emission 238 ms, Total 804 ms"
for a 5,000-row UPDATE whose join took 6 ms). That was most of the quarterly review's
update phase (200 batches at 1M accounts), and it weighs on every sync batch that
updates accounts and every write-back chunk. The statements are short and their row
counts unknown to the planner (transition tables have no statistics): JIT never pays.

Set on both trigger functions; pgtrigger re-creates a function only when its trigger's
definition changes (tests/integration/test_salesforce_history.py checks the settings are
still there).
"""

from django.db import migrations

FUNCTIONS = ("pgtrigger_update_update_71cb1()", "pgtrigger_insert_insert_e20e6()")


class Migration(migrations.Migration):
    dependencies = [("portfolio", "0016_account_name_index")]

    operations = [
        migrations.RunSQL(
            [f"ALTER FUNCTION {f} SET jit = off" for f in FUNCTIONS],
            reverse_sql=[f"ALTER FUNCTION {f} RESET jit" for f in FUNCTIONS],
        )
    ]
