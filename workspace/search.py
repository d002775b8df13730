"""Global search: accounts (name, Salesforce id), contacts, triage issues and
collaboration projects, within what the user may see (`accounts_for_user`, the one
scoping rule: a TAM never finds an account outside their book).

Each group is one query capped at `PER_GROUP` rows, ranked among its first `CANDIDATES`
matches. Names are matched with `icontains`,
which PostgreSQL runs as `UPPER(col) LIKE UPPER('%term%')` on the GIN trigram index of
`UPPER(col)` (workspace/migrations/0002_search_trigram.py), so a search over a million
accounts reads only the rows whose trigrams match (docs/performance.md, "Search").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.db.models import BooleanField, Case, Value, When
from django.db.models.functions import Upper

from engagement.models import CollaborationProject
from portfolio.models import Account, Contact
from portfolio.roles import role_of
from portfolio.selectors import accounts_for_user, name_search
from triage.models import TriageIssue

MIN_TERM = 2
MAX_TERM = 100
PER_GROUP = 8
# Matches read per group before ranking (see `_prefix_first`).
CANDIDATES = 200


@dataclass
class Results:
    term: str
    accounts: list[Account] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    issues: list[TriageIssue] = field(default_factory=list)
    projects: list[CollaborationProject] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.accounts or self.contacts or self.issues or self.projects)

    @property
    def too_short(self) -> bool:
        return len(self.term) < MIN_TERM


def _prefix_first(qs, column: str, term: str):
    """The first `CANDIDATES` matches the index yields, names starting with the term first,
    then alphabetically. Ranking every match instead would read every matching row: a
    common word ("systems") matches tens of thousands of accounts in a large book, each on
    its own heap page, and ordering by name through a btree scans alphabetically from "A"
    (both measured in docs/performance.md, "Search"). A keystroke's answer is a few names;
    the full, sorted list is the accounts table's `q` filter."""
    candidates = qs.order_by().values("pk")[:CANDIDATES]
    starts = Case(
        When(**{f"{column}__istartswith": term}, then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )
    return (
        qs.model.objects.filter(pk__in=candidates)
        .annotate(starts=starts)
        .order_by("-starts", Upper(column), "pk")
    )


def search_for_user(user: User, term: str) -> Results:
    """Up to `PER_GROUP` matches of each kind; nothing for a term under `MIN_TERM`
    characters. Four queries (plus the user's roles, once per request)."""
    term = " ".join(term.split())[:MAX_TERM]
    results = Results(term=term)
    if len(term) < MIN_TERM:
        return results
    scope = accounts_for_user(user)
    accounts = scope.filter(name_search(term, scoped=role_of(user) != "admin"))
    results.accounts = list(_prefix_first(accounts, "name", term).select_related("tam")[:PER_GROUP])
    in_scope = scope.values("pk")
    contacts = Contact.objects.filter(account__in=in_scope, name__icontains=term)
    results.contacts = list(
        _prefix_first(contacts, "name", term).select_related("account")[:PER_GROUP]
    )
    issues = TriageIssue.objects.filter(account__in=in_scope, title__icontains=term)
    recent = TriageIssue.objects.filter(pk__in=issues.order_by().values("pk")[:CANDIDATES])
    results.issues = list(recent.select_related("account").order_by("-opened_at")[:PER_GROUP])
    projects = CollaborationProject.objects.filter(account__in=in_scope, path__icontains=term)
    results.projects = list(
        _prefix_first(projects, "path", term).select_related("account")[:PER_GROUP]
    )
    return results
