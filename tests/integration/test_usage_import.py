"""Issue 16: product usage comes in three ways (API, `import_usage`, the admin upload), all
idempotent by (account, period, metric), every bad row quarantined with its reason."""

from __future__ import annotations

import csv
import io
import json
import threading

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from integrations.models import QuarantinedRecord, Source, SyncRun
from tests import factories
from usage import import_sql, services
from usage.models import AccountUsage, UsageValue
from usage.selectors import month_start

pytestmark = pytest.mark.django_db


def _month(back: int) -> str:
    return f"{month_start(timezone.localdate(), back):%Y-%m}"


@pytest.fixture
def accounts():
    return [factories.AccountFactory(licensed_seats=1000) for _ in range(3)]


def _good_rows(accounts) -> list[dict]:
    rows = []
    for a in accounts:
        for back, active in ((1, 600), (0, 412)):
            month = _month(back)
            rows += [
                {
                    "account": a.salesforce_id,
                    "period": month,
                    "metric": "active_users",
                    "value": active,
                },
                {
                    "account": a.salesforce_id,
                    "period": month,
                    "metric": "licensed_seats",
                    "value": 1000,
                },
                {"account": a.salesforce_id, "period": month, "metric": "version", "value": "17.3"},
                {
                    "account": a.salesforce_id,
                    "period": month,
                    "metric": "stages_in_use",
                    "value": ["plan", "create", "verify"],
                },
            ]
    return rows


def _import(rows):
    return services.usage_import(
        rows=(services.staged_from_record(i, r) for i, r in enumerate(rows)),
        trigger="test",
        assess=False,
    )


def test_good_rows_are_stored_once_and_a_rerun_adds_nothing(accounts):
    rows = _good_rows(accounts)
    first = _import(rows)
    assert (first.rows, first.accepted, first.created, first.rejected) == (24, 24, 24, [])
    assert UsageValue.objects.count() == 24
    again = _import(rows)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 24)
    assert UsageValue.objects.count() == 24
    assert not QuarantinedRecord.objects.exists()
    summary = AccountUsage.objects.get(account=accounts[0])
    assert summary.active_users == 412 and summary.previous_active_users == 600
    assert summary.stages_in_use == 3 and summary.version == "17.3"
    assert summary.adoption == pytest.approx(0.412)
    assert summary.adoption_change == pytest.approx(-18.8)
    run = SyncRun.objects.filter(source=Source.USAGE).first()
    assert run.status == "succeeded" and run.unchanged_count == 24


def test_a_changed_value_updates_the_row(accounts):
    _import(_good_rows(accounts))
    row = {
        "account": accounts[0].salesforce_id,
        "period": _month(0),
        "metric": "active_users",
        "value": 500,
    }
    result = _import([row])
    assert (result.created, result.updated) == (0, 1)
    assert AccountUsage.objects.get(account=accounts[0]).active_users == 500


BAD = [
    ({"account": "001NOPE", "period": "2026-01", "metric": "active_users", "value": 1}, "account"),
    ({"account": None, "period": "2026-01", "metric": "active_users", "value": 1}, "account"),
    ({"account": "A", "period": "2026-13", "metric": "active_users", "value": 1}, "period"),
    ({"account": "A", "period": "2026-02-30", "metric": "active_users", "value": 1}, "period"),
    ({"account": "A", "period": "2999-01", "metric": "active_users", "value": 1}, "period"),
    ({"account": "A", "period": "2026-01", "metric": "nope", "value": 1}, "metric"),
    ({"account": "A", "period": "2026-01", "metric": "active_users", "value": -1}, "value"),
    ({"account": "A", "period": "2026-01", "metric": "active_users", "value": "12"}, "value"),
    ({"account": "A", "period": "2026-01", "metric": "active_users", "value": True}, "value"),
    ({"account": "A", "period": "2026-01", "metric": "active_users", "value": 1.5}, "value"),
    ({"account": "A", "period": "2026-01", "metric": "active_users"}, "value"),
    ({"account": "A", "period": "2026-01", "metric": "version", "value": 17.3}, "value"),
    ({"account": "A", "period": "2026-01", "metric": "stages_in_use", "value": [1, 2]}, "value"),
    ({"account": "A", "period": "2026-01", "metric": "active_users", "value": 1, "x": 2}, "x"),
    ("not an object", "row"),
]


@pytest.mark.parametrize(("row", "field"), BAD)
def test_each_malformed_row_is_rejected_on_its_field_and_quarantined(accounts, row, field):
    if isinstance(row, dict) and row.get("account") == "A":
        row = {**row, "account": accounts[0].salesforce_id}
    result = _import([row])
    assert result.accepted == 0
    assert result.rejected[0]["index"] == 0
    assert field in result.rejected[0]["errors"], result.rejected
    q = QuarantinedRecord.objects.get(source=Source.USAGE)
    assert q.reason.startswith("row 0: ") and field in q.reason
    assert not UsageValue.objects.exists()


def test_good_duplicate_and_malformed_rows_together_lose_nothing(accounts):
    rows = _good_rows(accounts[:1])
    bad = {
        "account": accounts[0].salesforce_id,
        "period": "2026-1",
        "metric": "active_users",
        "value": 3,
    }
    repeat = dict(rows[0])
    conflicting = {**rows[1], "value": 999}
    batch = [*rows, bad, repeat, conflicting]
    result = _import(batch)
    # The identical repeat is accepted (it changes nothing); the earlier of two different
    # values for one key is rejected, saying which row was kept.
    assert result.rows == len(batch)
    assert result.accepted == len(rows) + 1
    assert {r["index"] for r in result.rejected} == {1, len(rows)}
    assert UsageValue.objects.count() == len(rows)
    assert QuarantinedRecord.objects.filter(source=Source.USAGE).count() == 2
    # Rerun: nothing new stored, nothing quarantined twice.
    again = _import(batch)
    assert (again.created, again.updated) == (0, 0)
    assert QuarantinedRecord.objects.filter(source=Source.USAGE).count() == 2


def test_a_quarantined_row_sent_again_correctly_is_resolved(accounts):
    row = {
        "account": accounts[0].salesforce_id,
        "period": _month(0),
        "metric": "active_users",
        "value": "many",
    }
    _import([row])
    _import([{**row, "value": 7}])
    q = QuarantinedRecord.objects.get(source=Source.USAGE)
    assert q.resolved_at is not None


def test_daily_rows_fold_into_the_month_by_the_metrics_aggregation(accounts):
    month = month_start(timezone.localdate(), 1)
    sf = accounts[0].salesforce_id
    rows = [
        {"account": sf, "period": f"{month:%Y-%m}-0{d}", "metric": "tickets_opened", "value": 4}
        for d in (1, 2, 3)
    ] + [
        {"account": sf, "period": f"{month:%Y-%m}-0{d}", "metric": "active_users", "value": v}
        for d, v in ((1, 300), (2, 350))
    ]
    assert _import(rows).created == 5
    summary = AccountUsage.objects.get(account=accounts[0])
    assert (summary.tickets_opened, summary.active_users) == (12, 350)  # sum; max


def test_the_command_reads_csv_with_a_one_line_summary_and_a_rerun_adds_nothing(
    accounts, tmp_path, capsys
):
    path = tmp_path / "usage.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["account", "period", "metric", "value"])
        for r in _good_rows(accounts):
            value = ";".join(r["value"]) if isinstance(r["value"], list) else r["value"]
            writer.writerow([r["account"], r["period"], r["metric"], value])
        writer.writerow(["001NOPE", _month(0), "active_users", "5"])
        writer.writerow(["only", "two"])
    call_command("import_usage", str(path), "--no-assess")
    out = capsys.readouterr().out.strip().splitlines()
    assert "26 rows, 24 accepted (24 new" in out[-1] and "2 rejected" in out[-1]
    reasons = sorted(QuarantinedRecord.objects.values_list("reason", flat=True))
    assert reasons[0].startswith("line 26: account: No account")
    assert reasons[1].startswith("line 27: row: 2 columns")
    call_command("import_usage", str(path), "--no-assess")
    out = capsys.readouterr().out.strip().splitlines()
    assert "0 new, 0 updated, 24 unchanged" in out[-1]
    assert UsageValue.objects.count() == 24 and QuarantinedRecord.objects.count() == 2


def test_the_command_reads_ndjson_from_stdin(accounts, monkeypatch, capsys):
    text = "\n".join(json.dumps(r) for r in _good_rows(accounts)) + "\n{broken\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    call_command("import_usage", "-", "--format", "ndjson", "--no-assess")
    out = capsys.readouterr().out.strip().splitlines()
    assert "25 rows, 24 accepted" in out[-1] and "1 rejected" in out[-1]
    q = QuarantinedRecord.objects.get()
    assert q.reason.startswith("line 25: row: Not a JSON object")


def test_the_admin_upload_previews_maps_columns_to_metrics_and_imports(
    client, admin_user, accounts
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    sf = accounts[0].salesforce_id
    text = (
        "Account Id,Month,active_users,Seats,notes\n"
        f"{sf},{_month(0)},412,1000,fine\n"
        f"001NOPE,{_month(0)},5,10,bad\n"
    )
    client.force_login(admin_user)
    url = "/admin/usage/metric/upload/"
    assert client.get(url).status_code == 200
    upload = SimpleUploadedFile("usage.csv", text.encode(), content_type="text/csv")
    preview = client.post(url, {"step": "upload", "file": upload})
    html = preview.content.decode()
    assert preview.status_code == 200 and "fine" in html and "Which column is what" in html
    # The guesses: active_users is a metric's name; the others are mapped by hand.
    bad = client.post(url, {"step": "import", "col_0": "@account", "col_2": "active_users"})
    assert bad.status_code == 400 and "Map exactly one column to a period" in bad.content.decode()
    done = client.post(
        url,
        {
            "step": "import",
            "col_0": "@account",
            "col_1": "@period",
            "col_2": "active_users",
            "col_3": "licensed_seats",
            "col_4": "",
        },
    )
    html = done.content.decode()
    assert done.status_code == 200 and "4 rows, 2 accepted" in html and "No account" in html
    assert UsageValue.objects.count() == 2
    assert AccountUsage.objects.get(account=accounts[0]).adoption == pytest.approx(0.412)
    again = client.post(url, {"step": "import", "col_0": "@account"})
    assert again.status_code == 302  # the file is gone once imported


def test_the_upload_page_is_for_admins_only(client, tam):
    client.force_login(tam)
    assert client.get("/admin/usage/metric/upload/").status_code in (302, 403)


def _csv_text(accounts, *, tail: str) -> bytes:
    sf = [a.salesforce_id for a in accounts]
    lines = ["account,period,metric,value,note"]
    lines += [f" {s} ,{_month(0)},active_users, 41{i} ,x" for i, s in enumerate(sf)]
    lines += [",,,,", f"{sf[0]},{_month(1)},licensed_seats,1000,", f"{sf[0]},,,7,"]
    lines += [f'"{sf[1]}",{_month(1)},version,"17.3",""', f"{sf[2]},13-2026,tickets_opened,x,"]
    return ("\r\n".join(lines) + "\r\n" + tail).encode()


def _outcome(rows, batch_rows, accounts):
    result = services.usage_import(
        rows=rows, trigger="test", where="line", assess=False, batch_rows=batch_rows
    )
    # Only these accounts' rows: earlier transactional tests may leave usage rows (no
    # flush empties the partitioned table).
    mine = UsageValue.objects.filter(account_id__in=[a.pk for a in accounts])
    stored = sorted(mine.values_list("account_id", "metric_id", "value", "text"))
    reasons = sorted(QuarantinedRecord.objects.values_list("reason", flat=True))
    mine.delete()
    QuarantinedRecord.objects.all().delete()
    counts = (result.rows, result.accepted, result.created, result.rejected_count)
    return counts, result.rejected, stored, reasons


# The ends of a CSV file (after `_csv_text`) that COPY takes or that send a batch to the
# Python reader.
TAILS = [
    "",  # every batch COPYed
    "\r\nonly,two\r\n{sf},{m},tickets_opened,4,\r\n",  # a blank line, a short one
    'late,2026-01,version,"a\r\nb"\r\n{sf},{m},tickets_opened,4\r\n',  # a quoted line break
    "{sf},{m},tickets_opened,4\u00a0\r\n{sf},{m},new_features_used,2\r\n",  # non-ASCII
    "{sf},{m},tickets_opened,\t4\r\n",  # a tab to trim (the other batches: no blank)
    '{sf},{m},"new_features_used ",3\r\n',  # a quoted cell to trim
]


@pytest.mark.parametrize("tail", TAILS)
def test_a_csv_file_copied_as_it_is_gives_what_the_python_reader_gives(accounts, tail):
    """services.CsvFile (COPY ... FORMAT csv, mapped in SQL) against staged_from_csv:
    same rows, line numbers, reasons and stored values, in batches of 3 lines, also when a
    batch falls back to the Python reader half-way through the file."""
    tail = tail.format(sf=accounts[0].salesforce_id, m=_month(0))
    data = _csv_text(accounts, tail=tail)
    copied = _outcome(services.CsvFile.open(io.BytesIO(data)), 3, accounts)
    with connection.cursor() as cursor:  # the last batch's lines: COPY took them
        cursor.execute("SELECT count(*) FROM usage_stage_csv")
        assert cursor.fetchone()[0] > 0 or tail
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline=""))
    mapping = services.csv_mapping(next(reader))
    python = _outcome(services.staged_from_csv(reader, mapping=mapping), 3, accounts)
    assert copied == python
    counts, rejected, stored, reasons = copied
    assert counts[3] == 2 + (1 if tail.startswith(("late", "\r")) else 0)
    assert [r["index"] for r in rejected][:2] == [7, 9]
    assert any(text == "17.3" for *_, text in stored) and reasons


def _lane_of(salesforce_id: str) -> int:
    with connection.cursor() as cursor:
        in_second = import_sql.LANE_SQL.format(account="%s", lanes=import_sql.WRITE_LANES, lane=1)
        cursor.execute("SELECT " + in_second, [salesforce_id])
        return int(cursor.fetchone()[0])


def _accounts_in_both_lanes(count: int) -> list:
    """`count` accounts, at least one in each lane (Salesforce ids are random)."""
    accounts = [factories.AccountFactory(licensed_seats=1000) for _ in range(count)]
    while len({_lane_of(a.salesforce_id) for a in accounts}) < 2:
        accounts.append(factories.AccountFactory(licensed_seats=1000))
    return accounts


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("tail", TAILS)
def test_a_csv_file_imported_in_lanes_gives_what_one_session_gives(tail):
    """Outside a transaction a CSV file goes in lanes (one session each, every account's
    rows in one lane): the same rows, line numbers, reasons and stored values as the
    Python reader in one session, also when a batch falls back to that reader half-way
    (in batches of 3 lines); the lanes' summaries are those of the accounts' rows."""
    accounts = _accounts_in_both_lanes(3)
    tail = tail.format(sf=accounts[0].salesforce_id, m=_month(0))
    data = _csv_text(accounts, tail=tail)
    run_ids = set(SyncRun.objects.values_list("pk", flat=True))
    try:
        laned = _outcome(services.CsvFile.open(io.BytesIO(data)), 3, accounts)
        run = SyncRun.objects.exclude(pk__in=run_ids).get()
        assert run.details["lanes"] == import_sql.WRITE_LANES
        assert run.quarantined_count == laned[0][3]
        reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline=""))
        mapping = services.csv_mapping(next(reader))
        python = _outcome(services.staged_from_csv(reader, mapping=mapping), 3, accounts)
        assert laned == python
        assert laned[1] and laned[1] == sorted(laned[1], key=lambda r: r["index"])
    finally:
        UsageValue.objects.filter(account_id__in=[a.pk for a in accounts]).delete()


@pytest.mark.django_db(transaction=True)
def test_in_lanes_the_last_row_of_a_key_wins_across_batches_and_summaries_follow():
    """A key given in an early batch and again in a later one (another lane's batch in
    between): the later value is stored, a rerun changes nothing, and every account's
    summary is rebuilt by its lane."""
    accounts = _accounts_in_both_lanes(4)
    month = _month(0)
    lines = ["account,period,metric,value"]
    for a in accounts:
        lines += [f"{a.salesforce_id},{month},active_users,100"]
        lines += [f"{a.salesforce_id},{month},licensed_seats,1000"]
    for a in accounts:
        lines += [f"{a.salesforce_id},{month},active_users,700"]
    data = ("\n".join(lines) + "\n").encode()
    mine = UsageValue.objects.filter(account_id__in=[a.pk for a in accounts])
    try:
        first = services.usage_import(
            rows=services.CsvFile.open(io.BytesIO(data)), trigger="test", assess=False, batch_rows=2
        )
        n = len(accounts)
        active = mine.filter(metric__name="active_users")
        assert (first.rows, first.accepted, first.rejected_count) == (3 * n, 3 * n, 0)
        assert (first.created, first.updated, first.accounts) == (2 * n, n, n)
        assert sorted(active.values_list("value", flat=True)) == [700] * n
        summaries = AccountUsage.objects.filter(account__in=accounts)
        assert sorted(summaries.values_list("active_users", flat=True)) == [700] * n
        again = services.usage_import(
            rows=services.CsvFile.open(io.BytesIO(data)), trigger="test", assess=False, batch_rows=2
        )
        # 100 then 700 again, in the file's order: each account's value updated twice.
        assert (again.created, again.updated) == (0, 2 * n)
        assert sorted(active.values_list("value", flat=True)) == [700] * n
        assert mine.count() == 2 * n
    finally:
        mine.delete()


@pytest.mark.django_db(transaction=True)
def test_in_lanes_months_without_a_partition_get_one_once():
    """Both lanes meet months that have no partition yet, in the same batches: each month
    is created once (the lanes take turns, a deadlock between them retried) and every
    row is stored."""
    accounts = _accounts_in_both_lanes(4)
    months = ["2001-03", "2001-04"]
    lines = ["account,period,metric,value"] + [
        f"{a.salesforce_id},{m},active_users,{i}" for m in months for i, a in enumerate(accounts)
    ]
    mine = UsageValue.objects.filter(account_id__in=[a.pk for a in accounts])
    try:
        result = services.usage_import(
            rows=services.CsvFile.open(io.BytesIO("\n".join(lines).encode())),
            trigger="test",
            assess=False,
            batch_rows=len(accounts) + 1,
        )
        assert (result.created, result.rejected_count) == (2 * len(accounts), 0)
        assert mine.count() == 2 * len(accounts)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'usage_value'::regclass "
                "AND c.relname IN ('usage_value_2001_03', 'usage_value_2001_04')"
            )
            assert cursor.fetchone()[0] == 2
    finally:
        mine.delete()
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS usage_value_2001_03, usage_value_2001_04")


@pytest.mark.django_db(transaction=True)
def test_two_imports_of_the_same_new_rows_at_once_store_them_once():
    """The batches' writes take turns (import_sql.WRITE_LOCK_KEYS): the second import, a
    CSV file in lanes, waits for the first to commit, then finds every row stored and
    unchanged."""
    accounts = [factories.AccountFactory(licensed_seats=1000) for _ in range(3)]
    rows = _good_rows(accounts)
    # Earlier transactional tests may leave usage rows (no flush empties the partitioned
    # table): only this test's accounts are counted and cleaned.
    mine = UsageValue.objects.filter(account_id__in=[a.pk for a in accounts])
    results: dict[str, services.ImportResult] = {}
    errors: list[Exception] = []
    first_wrote, first_may_commit = threading.Event(), threading.Event()

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = _import(rows)
                first_wrote.set()
                first_may_commit.wait(10)
        except Exception as exc:  # noqa: BLE001 # reported by the test below
            errors.append(exc)
        finally:
            first_wrote.set()
            connection.close()

    def second() -> None:
        first_wrote.wait(10)
        lines = ["account,period,metric,value"] + [
            f"{r['account']},{r['period']},{r['metric']},"
            + (";".join(r["value"]) if isinstance(r["value"], list) else str(r["value"]))
            for r in rows
        ]
        try:
            results["second"] = services.usage_import(
                rows=services.CsvFile.open(io.BytesIO("\n".join(lines).encode())),
                trigger="test",
                assess=False,
            )
        except Exception as exc:  # noqa: BLE001 # reported by the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    try:
        for thread in threads:
            thread.start()
        first_wrote.wait(10)
        threads[1].join(1.0)
        assert threads[1].is_alive()  # waiting for the first import's commit
        first_may_commit.set()
        for thread in threads:
            thread.join(30)
        assert not errors, errors
        assert (results["first"].created, results["first"].unchanged) == (24, 0)
        assert (results["second"].created, results["second"].unchanged) == (0, 24)
        assert mine.count() == 24
    finally:
        first_may_commit.set()
        mine.delete()  # not a Django-managed table: no flush empties it


_NAMES_REGEX = (  # the stage-names check as first written (about 0.5 ms a value)
    "^[A-Za-z][A-Za-z0-9 _&-]{0,40}(;[A-Za-z][A-Za-z0-9 _&-]{0,40}){0,49}$"
)


@pytest.mark.parametrize(
    "value",
    [
        "plan",
        "plan;create;verify",
        "Secure & Govern;ci-cd;a_b",
        "a" * 41,
        "a" * 42,
        ";".join(["x"] * 50),
        ";".join(["x"] * 51),
        ";".join(["y" * 41] * 50),
        "plan;;create",
        "plan;",
        ";plan",
        "1plan",
        "plan;2x",
        "plan\n",
        "plän",
        "",
        " plan",
    ],
)
def test_the_stage_names_check_says_what_the_single_pattern_said(value):
    sql = import_sql.NAMES_SQL.replace("AND ", "", 1)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.value ~ %s, coalesce({sql}, false) FROM (SELECT %s::text AS value) s",
            [_NAMES_REGEX, value],
        )
        single, spelled = cursor.fetchone()
    assert single == spelled


def test_a_monthly_row_wins_over_the_days_of_its_month_and_the_last_day_gives_the_version(
    accounts,
):
    month = month_start(timezone.localdate(), 1)
    sf = accounts[0].salesforce_id
    rows = [
        {"account": sf, "period": f"{month:%Y-%m}-0{d}", "metric": "active_users", "value": v}
        for d, v in ((1, 300), (2, 350))
    ] + [
        {"account": sf, "period": f"{month:%Y-%m}", "metric": "active_users", "value": 320},
        {"account": sf, "period": f"{month:%Y-%m}-03", "metric": "version", "value": "17.1"},
        {"account": sf, "period": f"{month:%Y-%m}-09", "metric": "version", "value": "17.2"},
        {"account": sf, "period": f"{month:%Y-%m}-05", "metric": "version", "value": "17.9"},
    ]
    assert _import(rows).created == 6
    summary = AccountUsage.objects.get(account=accounts[0])
    assert (summary.month, summary.active_users, summary.version) == (month, 320, "17.2")
