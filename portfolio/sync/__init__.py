"""Salesforce -> Portfolio: the sync of User, Account and Opportunity (DESIGN.md "Sync
rules"). Import the module that owns what you need:

- `run`: `sync_salesforce`, the run itself: the advisory lock, incremental pages by
  `SystemModstamp`, one transaction per batch with the cursor, quarantine, what happens
  when PostgreSQL is lost (`DatabaseLost`), the first full load handed to
  `integrations.bulkload`;
- `objects`: the synced objects (`OBJECTS`): field lists, SOQL (`soql_for`), staging
  tables and the set-based SQL that stores and links them;
- `records`: Salesforce records -> validated rows; every reason a record is quarantined.
"""
