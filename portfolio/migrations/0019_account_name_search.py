"""The name search in a narrow table of its own (portfolio.models.AccountName).

The trigram index `account_name_trgm` (workspace migration 0002) moves from
`portfolio_account` to `portfolio_accountname`, which database triggers keep in step with
the accounts: a statement-level AFTER INSERT trigger (one set-based INSERT per statement,
as the history trigger) and a row-level AFTER UPDATE OF name trigger that fires only for a
row whose name changed (its WHEN clause is checked without calling the function, and an
UPDATE that does not set `name` does not check it at all). The existing names are copied.

As in workspace 0002, the index is built only where pg_trgm is available (the embedded
PostgreSQL of `make run` has no contrib): search works without it, scanning.
"""

import sys

import django.db.models.deletion
from django.db import migrations, models

TRIGGERS = """
CREATE FUNCTION portfolio_account_name_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO portfolio_accountname (account_id, name) SELECT id, name FROM new_accounts;
    RETURN NULL;
END $$;
CREATE TRIGGER account_name_insert AFTER INSERT ON portfolio_account
    REFERENCING NEW TABLE AS new_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION portfolio_account_name_insert();

CREATE FUNCTION portfolio_account_name_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE portfolio_accountname SET name = NEW.name WHERE account_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER account_name_update AFTER UPDATE OF name ON portfolio_account
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION portfolio_account_name_update();

INSERT INTO portfolio_accountname (account_id, name) SELECT id, name FROM portfolio_account;
"""

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS account_name_insert ON portfolio_account;
DROP TRIGGER IF EXISTS account_name_update ON portfolio_account;
DROP FUNCTION IF EXISTS portfolio_account_name_insert();
DROP FUNCTION IF EXISTS portfolio_account_name_update();
"""


def _has_trigram(cursor) -> bool:
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    if cursor.fetchone() is None:
        sys.stderr.write(
            "portfolio: PostgreSQL has no pg_trgm extension here; the account name search "
            "works without its trigram index, scanning.\n"
        )
        return False
    cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    return True


def move_index(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS account_name_trgm")
        if _has_trigram(cursor):
            cursor.execute(
                "CREATE INDEX account_name_trgm ON portfolio_accountname "
                "USING gin (UPPER(name) gin_trgm_ops)"
            )


def move_index_back(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS account_name_trgm")
        if _has_trigram(cursor):
            cursor.execute(
                "CREATE INDEX account_name_trgm ON portfolio_account "
                "USING gin (UPPER(name) gin_trgm_ops)"
            )


class Migration(migrations.Migration):
    dependencies = [
        ("portfolio", "0018_account_ruleset"),
        # It built the index this migration moves.
        ("workspace", "0002_search_trigram"),
    ]

    operations = [
        migrations.CreateModel(
            name="AccountName",
            fields=[
                (
                    "account",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="search_name",
                        serialize=False,
                        to="portfolio.account",
                    ),
                ),
                ("name", models.CharField(max_length=255)),
            ],
        ),
        migrations.RunSQL(TRIGGERS, reverse_sql=DROP_TRIGGERS),
        migrations.RunPython(move_index, move_index_back, elidable=False),
    ]
