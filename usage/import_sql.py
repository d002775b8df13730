"""The SQL of the usage import (`usage.services.usage_import`), apart from its Python: the
staging tables, the one-pass check, the writes (a plain INSERT when nothing of a batch is
stored yet, else one probe of the key per row), the reasons of the rejected rows, their
quarantine and the resolving of earlier ones. Templates: `{source}` is the staged rows'
table or view, `{scope}` the join condition of the accounts the caller may write,
`{names}` the stage-names check (NAMES_SQL); values go as parameters."""

# The staged rows a batch's check reads: the Python readers' rows (`usage_stage`), or a CSV
# batch's lines COPYed as they are, read through a view that maps them (and trims them,
# when the batch has whitespace that might need it).
PY_SOURCE = "usage_stage"
CSV_SOURCE = "usage_stage_lines"
CSV_PLAIN_SOURCE = "usage_stage_plain"

STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS usage_stage (
    line bigint, account text, period text, metric text, value text, vtype text,
    read_errors text, raw text
);
CREATE TEMP TABLE IF NOT EXISTS usage_touched (account_id bigint PRIMARY KEY);
TRUNCATE usage_touched;
CREATE TEMP TABLE IF NOT EXISTS usage_bad (line bigint, dup_of bigint);
CREATE TEMP TABLE IF NOT EXISTS usage_periods (
    period text PRIMARY KEY, grain char(1) NOT NULL, pdate date NOT NULL
);
"""

# Every valid period as it is written, from 2000 to today: a period is checked by one hash
# lookup instead of a regular expression and a date built per row (rebuilt when the day
# changes; about 10,000 rows).
PERIODS_SQL = """
TRUNCATE usage_periods;
INSERT INTO usage_periods
SELECT to_char(d, 'YYYY-MM'), 'm', d::date
FROM generate_series(DATE '2000-01-01'::timestamp, %(today)s::timestamp, interval '1 month') d
UNION ALL
SELECT to_char(d, 'YYYY-MM-DD'), 'd', d::date
FROM generate_series(DATE '2000-01-01'::timestamp, %(today)s::timestamp, interval '1 day') d;
ANALYZE usage_periods;
"""

# Stage names: 1 to 50 names separated by ";", each a letter and up to 40 of letters,
# digits, " _&-". Spelled as one unbounded pattern, a run-length test and a count: the
# single pattern with its bounded repeats (`{0,40}` inside `{0,49}`) took about 0.5 ms a
# value in PostgreSQL's regular expression engine, 1,000 times these three.
NAMES_SQL = (
    "AND s.value ~ '^[A-Za-z][A-Za-z0-9 _&-]*(;[A-Za-z][A-Za-z0-9 _&-]*)*$' "
    "AND s.value !~ '[^;]{42}' "
    "AND length(s.value) - length(replace(s.value, ';', '')) < 50"
)

# Which value a staged row carries for its metric ('num', 'text', 'names'; NULL: none
# valid), as the check and the reasons of the rejected rows both read it (one definition,
# so a row the check refuses always gets a reason). A count by plain comparisons, not a
# regular expression; a regular expression only for decimals, versions and stage names.
VALUE_KIND = """        CASE
            WHEN m.kind IN ('count', 'stages') AND s.vtype IN ('n', 'c')
                 AND length(s.value) BETWEEN 1 AND 12
                 AND translate(s.value, '0123456789', '') = ''
                 THEN 'num'
            WHEN m.kind = 'number' AND s.vtype IN ('n', 'c')
                 AND s.value ~ '^[0-9]{{1,12}}(\\.[0-9]{{1,6}})?$' THEN 'num'
            WHEN m.kind = 'version' AND s.vtype IN ('s', 'c')
                 AND s.value ~ '^[0-9]{{1,4}}\\.[0-9]{{1,4}}(\\.[0-9]{{1,4}})?$' THEN 'text'
            WHEN m.kind = 'stages' AND s.vtype IN ('l', 'c')
                 {names}
                 THEN 'names'
        END AS vkind
"""

# The check of every staged row, in one pass: account, metric and period by hash lookups
# (the account join limited to `{scope}`, the accounts the caller may see), the value by
# plain comparisons where it can be (a regular expression only for numbers with decimals,
# versions and stage names); only what the writes need is kept. The reasons of the rows
# that fail are built afterwards, for those rows only (EXPLAIN_SQL). `dup_of` is set for
# the earlier rows of a key given twice (DUPLICATES_SQL).
CHECK_SELECT = (
    """
SELECT q.line, q.account_id, q.metric_id, q.grain, q.pdate,
    CASE WHEN q.vkind = 'num' THEN q.value::double precision
         WHEN q.vkind = 'names' THEN cardinality(string_to_array(q.value, ';'))::double precision
    END AS num,
    CASE WHEN q.vkind IN ('text', 'names') THEN q.value END AS txt,
    q.vkind IS NOT NULL AND q.account_id IS NOT NULL AND q.pdate IS NOT NULL
        AND q.vtype <> 'x' AND q.read_errors IS NULL AS ok,
    NULL::bigint AS dup_of
FROM (
    SELECT s.line, s.value, s.vtype, s.read_errors, a.id AS account_id, m.id AS metric_id,
        p.grain, p.pdate,
"""
    + VALUE_KIND  # nosec B608 # SQL text from this module's constants, values as parameters
    + """    -- Fenced: each trimmed field computed once, not once per use.
    FROM (SELECT * FROM {source} OFFSET 0) s
    LEFT JOIN portfolio_account a ON a.salesforce_id = s.account {scope}
    LEFT JOIN usage_metric m ON m.name = s.metric
    LEFT JOIN usage_periods p ON p.period = s.period
    OFFSET 0
) q
"""
)
CHECK_SQL = "CREATE TEMP TABLE usage_checked AS " + CHECK_SELECT

# A key (account, metric, grain, period) given more than once in a batch: the later row
# wins; each earlier one points at it (`dup_of`). Only the repeated keys are sorted.
DUPLICATES_SQL = """
WITH repeated AS (
    SELECT account_id, metric_id, grain, pdate FROM usage_checked WHERE ok
    GROUP BY account_id, metric_id, grain, pdate HAVING count(*) > 1
), ranked AS (
    SELECT c.line, row_number() OVER w AS rn, first_value(c.line) OVER w AS kept_line
    FROM usage_checked c
    JOIN repeated r ON r.account_id = c.account_id AND r.metric_id = c.metric_id
        AND r.grain = c.grain AND r.pdate = c.pdate
    WHERE c.ok
    WINDOW w AS (PARTITION BY c.account_id, c.metric_id, c.grain, c.pdate ORDER BY c.line DESC)
)
UPDATE usage_checked c SET dup_of = r.kept_line FROM ranked r WHERE c.line = r.line AND r.rn > 1
"""

# An earlier row with another value than the kept one is rejected (and quarantined) saying
# which row was kept; an identical repeat is accepted and changes nothing.
SUPERSEDED_SQL = """
UPDATE usage_checked c SET ok = false
FROM usage_checked k
WHERE c.dup_of IS NOT NULL AND k.line = c.dup_of
  AND (c.num, c.txt) IS DISTINCT FROM (k.num, k.txt)
"""

# When nothing of the batch is stored yet (a first import, a new month): the check and a
# plain INSERT of the accepted rows in one statement, routed by PostgreSQL into the month
# partitions, nothing else kept on the way (no CTE, no RETURNING: those cost a third of
# the statement). A key already stored, or given twice, fails it on the key (as does a
# month without its partition): the caller then takes CHECK_SQL and MERGE_SQL. So when it
# succeeds, every accepted row was new and no key repeated; when it stored every staged
# row (the common case), the batch is done but for TOUCHED_SQL, else the caller runs
# CHECK_SQL for the rejected rows' lines.
INSERT_SQL = (
    "INSERT INTO usage_value (account_id, metric_id, grain, period, value, text)\n"
    "SELECT account_id, metric_id, grain, pdate, num, txt FROM (\n"
    + CHECK_SELECT  # nosec B608 # SQL text from this module's constants, values as parameters
    + ") checked WHERE ok"
)

# The accounts of a batch whose every row was stored (so all of them in scope): each
# distinct Salesforce id resolved once, not one account id per row kept from the insert.
TOUCHED_SQL = """
INSERT INTO usage_touched
SELECT a.id FROM (SELECT DISTINCT account FROM {source}) s
JOIN portfolio_account a ON a.salesforce_id = s.account
ON CONFLICT DO NOTHING
"""

# After a plain INSERT that did not store every staged row, from the check run again
# (CHECK_SQL): the accounts stored, and the rejected rows' lines for their reasons.
CHECKED_TOUCHED_SQL = (
    "INSERT INTO usage_touched SELECT DISTINCT account_id FROM usage_checked "
    "WHERE ok ON CONFLICT DO NOTHING;\n"
)
CHECKED_BAD_SQL = "INSERT INTO usage_bad SELECT line, dup_of FROM usage_checked WHERE NOT ok"

# Otherwise each kept row is probed once by its key: new keys are inserted, changed values
# updated, identical stored rows only read (a rerun writes nothing). No ON CONFLICT: the
# batches' writes are serialized (WRITE_LOCK_KEYS), so no other import stores the same new
# key between the probe and the insert.
MERGE_SQL = """
WITH probed AS MATERIALIZED (
    SELECT c.account_id, c.metric_id, c.grain, c.pdate, c.num, c.txt,
        e.account_id IS NOT NULL AS found,
        (e.value, e.text) IS NOT DISTINCT FROM (c.num, c.txt) AS same
    FROM usage_checked c
    LEFT JOIN usage_value e ON e.account_id = c.account_id AND e.metric_id = c.metric_id
        AND e.grain = c.grain AND e.period = c.pdate
    WHERE c.ok AND c.dup_of IS NULL
), created AS (
    INSERT INTO usage_value (account_id, metric_id, grain, period, value, text)
    SELECT account_id, metric_id, grain, pdate, num, txt FROM probed WHERE NOT found
    RETURNING 1
), updated AS (
    UPDATE usage_value u SET value = p.num, text = p.txt
    FROM probed p
    WHERE p.found AND NOT p.same AND u.account_id = p.account_id
      AND u.metric_id = p.metric_id AND u.grain = p.grain AND u.period = p.pdate
    RETURNING 1
), touched AS (
    INSERT INTO usage_touched SELECT DISTINCT account_id FROM probed ON CONFLICT DO NOTHING
)
SELECT count(*), (SELECT count(*) FROM created), (SELECT count(*) FROM updated) FROM probed
"""

# The reasons of the rejected rows, per field, with the same checks as CHECK_SQL spelled
# out (each row parsed once: the steps fenced with OFFSET 0).
EXPLAIN_SQL = (
    """
CREATE TEMP TABLE usage_rejected AS
WITH parsed AS (
    SELECT s.*, b.dup_of, a.id AS account_id, m.id AS metric_id, m.kind,
        CASE WHEN s.period ~ '^[0-9]{{4}}-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?$'
             THEN CASE WHEN length(s.period) = 7 THEN 'm' ELSE 'd' END
        END AS grain,
"""
    + VALUE_KIND  # nosec B608 # SQL text from this module's constants, values as parameters
    + """    FROM usage_bad b
    JOIN {source} s ON s.line = b.line
    LEFT JOIN portfolio_account a ON a.salesforce_id = s.account {scope}
    LEFT JOIN usage_metric m ON m.name = s.metric
    OFFSET 0
), dated AS (
    SELECT p.*,
        CASE WHEN p.grain IS NULL THEN NULL
             WHEN p.grain = 'm'
                  THEN make_date(substr(p.period, 1, 4)::int, substr(p.period, 6, 2)::int, 1)
             WHEN p.grain = 'd' AND substr(p.period, 9, 2)::int <= extract(day FROM
                  make_date(substr(p.period, 1, 4)::int, substr(p.period, 6, 2)::int, 1)
                  + interval '1 month - 1 day')
                  THEN make_date(substr(p.period, 1, 4)::int, substr(p.period, 6, 2)::int,
                                 substr(p.period, 9, 2)::int)
        END AS pdate
    FROM parsed p
    OFFSET 0
)
SELECT j.line, j.account, j.period, j.metric, j.value, j.raw,
    CASE WHEN j.dup_of IS NOT NULL THEN jsonb_build_object('period', jsonb_build_array(
        'Another row for the same account, period and metric (at ' || j.dup_of
        || ') has a different value and was kept.'))
    ELSE coalesce(j.read_errors::jsonb, '{{}}'::jsonb) || jsonb_strip_nulls(jsonb_build_object(
        'account', CASE
            WHEN j.vtype = 'x' THEN NULL
            WHEN coalesce(j.account, '') = ''
                THEN jsonb_build_array('Required: the Salesforce account id.')
            WHEN j.account_id IS NULL THEN jsonb_build_array(
                'No account with this Salesforce id' || %(scope_note)s || '.')
        END,
        'period', CASE
            WHEN j.vtype = 'x' THEN NULL
            WHEN coalesce(j.period, '') = ''
                THEN jsonb_build_array('Required: YYYY-MM or YYYY-MM-DD.')
            WHEN j.grain IS NULL
                THEN jsonb_build_array('Must be YYYY-MM (a month) or YYYY-MM-DD (a day).')
            WHEN j.pdate IS NULL THEN jsonb_build_array('Not a day of that month.')
            WHEN j.pdate < DATE '2000-01-01' THEN jsonb_build_array('Before 2000.')
            WHEN j.pdate > %(today)s::date THEN jsonb_build_array('In the future.')
        END,
        'metric', CASE
            WHEN j.vtype = 'x' THEN NULL
            WHEN coalesce(j.metric, '') = ''
                THEN jsonb_build_array('Required: the metric name.')
            WHEN j.metric_id IS NULL THEN jsonb_build_array(
                'Unknown metric; the defined ones are: ' || %(metrics)s
                || ' (an admin adds more under Product usage > Metrics).')
        END,
        'value', CASE
            WHEN j.vtype = 'x' OR j.metric_id IS NULL THEN NULL
            WHEN j.value IS NULL THEN jsonb_build_array('Required.')
            WHEN j.vkind IS NOT NULL THEN NULL
            WHEN j.kind = 'count'
                THEN jsonb_build_array(j.metric || ' takes a whole number >= 0.')
            WHEN j.kind = 'number'
                THEN jsonb_build_array(j.metric || ' takes a number >= 0.')
            WHEN j.kind = 'version' THEN jsonb_build_array(
                j.metric || ' takes a version "major.minor" as a string, e.g. "17.3".')
            ELSE jsonb_build_array(
                j.metric || ' takes a list of stage names or a whole number >= 0.')
        END
    )) END AS errors
FROM dated j
"""
)

QUARANTINE_SQL = """
WITH bad AS (
    SELECT coalesce(left(c.account, 64), '') AS external_id,
        coalesce(c.raw::jsonb, jsonb_build_object(
            'account', c.account, 'period', c.period, 'metric', c.metric, 'value', c.value
        )) AS payload,
        %(where)s || ' ' || c.line || ': ' || (
            SELECT string_agg(e.key || ': ' || (e.value ->> 0), '; ' ORDER BY e.key)
            FROM jsonb_each(c.errors) e
        ) AS reason
    FROM usage_rejected c
)
INSERT INTO integrations_quarantinedrecord
    (source, object_name, external_id, payload, reason, sync_run_id, created_at)
SELECT %(source)s, %(object)s, b.external_id, b.payload, b.reason, %(run)s, now()
FROM bad b
WHERE NOT EXISTS (
    SELECT 1 FROM integrations_quarantinedrecord q
    WHERE q.source = %(source)s AND q.object_name = %(object)s
      AND q.external_id = b.external_id AND q.resolved_at IS NULL AND q.payload = b.payload
)
"""

# A record quarantined before is resolved when the same account, period and metric now
# arrive valid (and no row for that key was rejected again in this batch).
RESOLVE_SQL = """
UPDATE integrations_quarantinedrecord q
SET resolved_at = now(), resolved_by_run_id = %(run)s
FROM {source} s
WHERE q.source = %(source)s AND q.object_name = %(object)s AND q.resolved_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM usage_bad b WHERE b.line = s.line)
  AND q.external_id = s.account
  AND q.payload ->> 'period' = s.period AND q.payload ->> 'metric' = s.metric
  {not_rejected}
"""
NOT_REJECTED = """AND NOT EXISTS (
      SELECT 1 FROM usage_rejected b
      WHERE b.account = s.account AND b.period = s.period AND b.metric = s.metric
  )"""

# The batches' writes of concurrent imports take turns (pg_advisory_xact_lock, held to
# the batch's commit): MERGE_SQL's probe and insert rely on it. A large CSV file is
# imported in WRITE_LANES lanes at once (one session each), every row going to the lane of
# its account (LANE_SQL), so two lanes never hold the same key: a lane takes its own lock,
# a batch of a one-lane import takes them all, in this order.
WRITE_LANES = 2
WRITE_LOCK_KEYS = tuple(0x75736177 + lane for lane in range(WRITE_LANES))  # "usaw", "usax"

# The lane of a staged row: by its account cell (as trimmed), so every row of an account,
# hence of a key, is in one lane; a blank account (a rejected row) in the first.
LANE_SQL = "mod(coalesce(hashtext({account}), 0) & 2147483647, {lanes}) = {lane}"
