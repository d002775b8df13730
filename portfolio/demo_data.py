"""The demo book of business, generated deterministically (no database, no Django).

`generate(as_of)` returns plain dicts that `manage.py load_demo` upserts. The same seed
gives the same data; dates are offsets from `as_of` so renewals, onboarding and
opportunities always sit in a realistic window around today.

Shape (like a real TAM organisation):
- 3 managers with a team each, 15 TAMs covering region x segment, one EMEA sales manager
  (Sales Management: decides the EMEA Enterprise priority exceptions);
- ~1,180 top-level accounts with log-normal ARR (a few > 1M USD, many < 50k USD): the ones
  above the segment's alignment threshold are TAM-assigned, the smaller ones are
  digital-only (P4, no TAM);
- ~350 child accounts under the larger parents, about half of them without a TAM of their
  own (unmanaged children, P3);
- account executives as Salesforce users, opportunities (open up-tiers closing in 1-12
  months, renewals, won and lost deals), contacts with personas, a year of activities.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field

SEED = 20261122
DEMO_PASSWORD = "portfolio-demo"  # nosec B105 # the documented demo password
TOP_LEVEL_ACCOUNTS = 1180
PARENTS = 110  # top-level TAM-assigned accounts that get children

REGIONS = ["US-WEST", "US-EAST", "EMEA", "APAC", "LATAM"]
REGION_WEIGHTS = [22, 25, 28, 12, 13]

FIRST = [
    "Avery", "Jordan", "Priya", "Mateo", "Sofia", "Liam", "Amara", "Kenji", "Elena", "Noah",
    "Fatima", "Lucas", "Hannah", "Ravi", "Chloe", "Diego", "Ingrid", "Tomasz", "Aisha", "Oscar",
    "Mei", "Samuel", "Leila", "Jonas", "Camila", "Ethan", "Nadia", "Pedro", "Yuki", "Grace",
]  # fmt: skip
LAST = [
    "Okafor", "Lindqvist", "Ramirez", "Nakamura", "Schmidt", "Patel", "Rossi", "Dubois",
    "Kowalski", "Haddad", "Silva", "Murphy", "Novak", "Chen", "Andersen", "Moreau", "Khan",
    "Fischer", "Costa", "Walsh", "Ito", "Berg", "Mendes", "Clarke", "Varga", "Sato",
]  # fmt: skip
NAME_A = [
    "Acme", "Blue", "Cedar", "Delta", "Echo", "Falcon", "Granite", "Harbor", "Iron", "Juniper",
    "Keystone", "Lumen", "Maple", "Nimbus", "Orion", "Pioneer", "Quartz", "River", "Summit",
    "Tidal", "Umbra", "Vertex", "Willow", "Xenon", "Yellowstone", "Zephyr", "Atlas", "Beacon",
    "Cobalt", "Dune", "Ember", "Fjord", "Glacier", "Helix", "Indigo", "Jasper", "Kite", "Lotus",
    "Meridian", "Nova",
]  # fmt: skip
NAME_B = [
    "Analytics", "Bank", "Biotech", "Capital", "Cloud", "Dynamics", "Energy", "Foods", "Freight",
    "Games", "Health", "Insurance", "Labs", "Logistics", "Media", "Motors", "Networks",
    "Pharma", "Retail", "Robotics", "Security", "Software", "Systems", "Telecom", "Travel",
    "Ventures", "Works", "Aerospace", "Mining", "Payments",
]  # fmt: skip
NAME_C = ["Inc.", "Ltd", "GmbH", "S.A.", "Corp.", "Group", "AG", "plc", "LLC", "Co."]
PUBLIC_SECTOR = [
    "Department of", "Ministry of", "State Agency for", "City of", "University of",
    "National Institute of",
]  # fmt: skip
CHILD_SUFFIX = [
    "Germany", "France", "UK", "Japan", "Brazil", "India", "Platform Team", "Research",
    "Payments Division", "Mobile", "Data Science", "Canada", "Australia", "Security Team",
]  # fmt: skip
TITLES_DEV = ["VP Engineering", "Director of Engineering", "Head of Platform", "DevOps Lead"]
TITLES_SEC = ["CISO", "Head of Application Security", "Security Engineering Manager"]
TITLES_OTHER = ["Procurement Manager", "CTO", "Engineering Manager", "IT Director", "Architect"]


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    role: str  # TAM | Manager | Admin | Sales Management
    salesforce_id: str = ""

    @property
    def email(self) -> str:
        return f"{self.username}@portfolio.example"


@dataclass(frozen=True)
class DemoTeam:
    name: str
    manager: str
    region: str
    tams: tuple[str, ...]


@dataclass
class DemoData:
    users: list[DemoUser] = field(default_factory=list)
    teams: list[DemoTeam] = field(default_factory=list)
    account_executives: list[dict] = field(default_factory=list)
    accounts: list[dict] = field(default_factory=list)  # parents before children
    opportunities: list[dict] = field(default_factory=list)
    contacts: list[dict] = field(default_factory=list)
    activities: list[dict] = field(default_factory=list)


# Which TAMs cover which (region, segment); the smallest book among them gets the account.
def _coverage() -> dict[tuple[str, str], list[str]]:
    cover: dict[tuple[str, str], list[str]] = {}

    def add(tams: list[int], regions: list[str], segments: list[str]) -> None:
        for region in regions:
            for segment in segments:
                cover.setdefault((region, segment), []).extend(f"tam{n}" for n in tams)

    big = ["enterprise", "public_sector"]
    add([1, 2, 3, 4, 5], ["US-WEST", "US-EAST"], big)
    add([6, 7, 8], ["EMEA"], big)
    add([9], ["APAC"], big)
    add([10], ["LATAM"], big)
    add([11, 12], ["US-WEST", "US-EAST"], ["commercial"])
    add([13], ["EMEA"], ["commercial"])
    add([14], ["APAC"], ["commercial"])
    add([15], ["LATAM"], ["commercial"])
    return cover


def sfid(prefix: str, n: int) -> str:
    """An 18-character Salesforce-like id: key prefix, DEMO, a number."""
    return f"{prefix}DEMO{n:011d}"


def _users(rng: random.Random) -> list[DemoUser]:
    names = [(f, la) for f in FIRST for la in LAST]
    rng.shuffle(names)
    users = [DemoUser("admin", "Ada", "Admin", "Admin")]
    users += [DemoUser(f"manager{i}", *names[i], "Manager") for i in range(1, 4)]
    users += [
        DemoUser(f"tam{i}", *names[10 + i], "TAM", salesforce_id=sfid("005", i))
        for i in range(1, 16)
    ]
    # The regional Sales Management team EMEA Enterprise priority exceptions go to.
    users += [DemoUser("sales1", *names[4], "Sales Management")]
    return users


# Sales managers and the regions they cover ("Exceptions will be addressed to the
# regional Sales Management team", tam-account-engagement.md, EMEA Enterprise).
SALES_MANAGERS: dict[str, tuple[str, ...]] = {"sales1": ("EMEA",)}


TEAMS = [
    DemoTeam("Americas Enterprise", "manager1", "US-EAST", tuple(f"tam{i}" for i in range(1, 6))),
    DemoTeam("EMEA & APJ Enterprise", "manager2", "EMEA", tuple(f"tam{i}" for i in range(6, 11))),
    DemoTeam("Global Commercial", "manager3", "US-WEST", tuple(f"tam{i}" for i in range(11, 16))),
]


def _account_names(rng: random.Random, count: int) -> list[str]:
    combos = [f"{a} {b}" for a in NAME_A for b in NAME_B]
    rng.shuffle(combos)
    return [f"{base} {rng.choice(NAME_C)}" for base in combos[:count]]


def _arr(rng: random.Random) -> int:
    """Log-normal: median ~20k USD; about 1 in 100 accounts above 1M USD. Scaled so the
    TAMs' books spread around the 3.6M USD book-of-business target (BOOK_OF_BUSINESS_
    TARGET_USD), some under and some over, as real ones do (issue 15: at a 30k median
    every book was ~230% of target and the book meter said nothing)."""
    value = rng.lognormvariate(math.log(20_000), 1.4)
    return int(min(max(value, 2_400), 3_000_000) // 100 * 100)


def _segment(rng: random.Random, arr: int) -> str:
    if rng.random() < 0.12:
        return "public_sector"
    if arr >= 400_000 or (arr >= 100_000 and rng.random() < 0.6):
        return "enterprise"
    return "commercial" if arr < 250_000 or rng.random() < 0.3 else "enterprise"


def _plan_and_seats(rng: random.Random, arr: int) -> tuple[str, int]:
    plan = "Ultimate" if arr > 150_000 and rng.random() < 0.7 else "Premium"
    price = 1188 if plan == "Ultimate" else 348
    return plan, max(5, arr // price)


def _signals(rng: random.Random, region: str, assigned: bool) -> dict:
    if not assigned:
        return {}
    hours = rng.choice([1, 1.5, 2, 3, 4, 6]) if rng.random() < 0.18 else 0
    infra = rng.choice([1, 2, 3, 5]) if rng.random() < 0.08 else 0
    emea = region == "EMEA"
    return {
        "stage_adoption_hours_per_week": hours,
        "infrastructure_change_hours_per_week": infra,
        "churn_risk": rng.random() < 0.08,
        "critical_project": rng.random() < 0.10,
        "key_logo": rng.random() < 0.05,
        "channel_engagement": rng.random() < 0.06,
        "nps": rng.choice([-40, -10, 0, 10, 30, 50, 70]) if rng.random() < 0.6 else None,
        "org_change": rng.random() < (0.12 if emea else 0.04),
        "weekly_engagement_requested": rng.random() < (0.08 if emea else 0.03),
        "expansion_play": rng.random() < 0.08,
        "tam_handover": rng.random() < 0.04,
    }


def _health(rng: random.Random, churn_risk: bool) -> str:
    if churn_risk:
        return rng.choice(["amber", "red", "red"])
    return rng.choices(["green", "yellow", "amber", "red"], [55, 27, 12, 6])[0]


def _lifecycle(rng: random.Random, as_of: dt.date, assigned: bool) -> dict:
    new_customer = assigned and rng.random() < 0.05
    if new_customer:
        since = as_of - dt.timedelta(days=rng.randint(3, 60))
    else:
        since = as_of - dt.timedelta(days=rng.randint(90, 4 * 365))
    started = since + dt.timedelta(days=rng.randint(0, 7)) if assigned else None
    if started and started > as_of:
        started = as_of
    completed = None
    if started and not new_customer:
        completed = started + dt.timedelta(days=rng.randint(30, 90))
        completed = min(completed, as_of)
    if assigned:
        stages = rng.choices(range(0, 10), [2, 6, 10, 14, 14, 12, 10, 8, 6, 4])[0]
        plan = rng.choices(["none", "objectives", "full"], [30, 35, 35])[0]
    else:
        stages = rng.choices(range(0, 5), [20, 30, 25, 15, 10])[0]
        plan = "none"
    if new_customer:
        stages, plan = min(stages, 2), "none"
    return {
        "customer_since": since,
        "onboarding_started": started,
        "onboarding_completed": completed,
        "stages_adopted": stages,
        "success_plan": plan,
    }


def _baseline_priority(acc: dict) -> int:
    """The CSM_Priority__c value Salesforce holds before Portfolio re-evaluates it."""
    if acc["tam"] is None:
        return 3 if acc["parent"] else 4
    if acc["onboarding_completed"] is None or acc.get("churn_risk"):
        return 1
    return 1 if acc["arr"] >= 300_000 else 2


def generate(as_of: dt.date, *, alignment_threshold: dict[str, int], seed: int = SEED) -> DemoData:
    """`alignment_threshold`: USD ARR per segment below which an account gets no TAM
    (settings.TAM_ALIGNMENT_THRESHOLD_USD)."""
    rng = random.Random(seed)  # nosec B311 # jitter and demo data, not security
    data = DemoData(users=_users(rng), teams=list(TEAMS))
    ae_names = [(f, la) for f in FIRST for la in LAST]
    rng.shuffle(ae_names)
    aes_by_region: dict[str, list[str]] = {}
    n_ae = 0
    for region in REGIONS:
        for _ in range(3 if region in ("US-EAST", "US-WEST", "EMEA") else 2):
            n_ae += 1
            first, last = ae_names[n_ae]
            ae_id = sfid("005", 100 + n_ae)
            data.account_executives.append(
                {
                    "salesforce_id": ae_id,
                    "name": f"{first} {last}",
                    "email": f"{first}.{last}@sales.portfolio.example".lower(),
                }
            )
            aes_by_region.setdefault(region, []).append(ae_id)
    for user in data.users:
        if user.salesforce_id:
            data.account_executives.append(
                {
                    "salesforce_id": user.salesforce_id,
                    "name": f"{user.first_name} {user.last_name}",
                    "email": user.email,
                }
            )

    cover = _coverage()
    book: dict[str, int] = {f"tam{i}": 0 for i in range(1, 16)}
    names = _account_names(rng, TOP_LEVEL_ACCOUNTS)
    drafts = []
    for i in range(TOP_LEVEL_ACCOUNTS):
        arr = _arr(rng)
        region = rng.choices(REGIONS, REGION_WEIGHTS)[0]
        segment = _segment(rng, arr)
        name = names[i]
        if segment == "public_sector":
            name = f"{rng.choice(PUBLIC_SECTOR)} {name.split()[0]} {name.split()[1]}"
        drafts.append((arr, region, segment, name))
    # Largest first so the balancing by book size gives every TAM some big accounts.
    drafts.sort(key=lambda d: -d[0])
    n_account = 0
    top: list[dict] = []
    for arr, region, segment, name in drafts:
        n_account += 1
        assigned = arr >= alignment_threshold[segment]
        tam = None
        if assigned:
            tam = min(cover[(region, segment)], key=lambda t: book[t])
            book[tam] += arr
        top.append(_account(rng, as_of, n_account, name, arr, region, segment, tam, None))
        top[-1]["owner"] = rng.choice(aes_by_region[region])
    children: list[dict] = []
    parents = [a for a in top if a["tam"]][: PARENTS * 2 : 2]  # every other of the largest
    for parent in parents:
        suffixes = rng.sample(CHILD_SUFFIX, rng.randint(1, 5))
        for suffix in suffixes:
            n_account += 1
            arr = int(parent["arr"] * rng.uniform(0.02, 0.3)) // 100 * 100
            managed = rng.random() < 0.45
            tam = parent["tam"] if managed else None
            child = _account(
                rng, as_of, n_account, f"{parent['name']} ({suffix})", max(arr, 1200),
                parent["region"], parent["segment"], tam, parent["salesforce_id"],
            )  # fmt: skip
            child["owner"] = parent["owner"]
            children.append(child)
    data.accounts = top + children
    for acc in data.accounts:
        acc["priority"] = _baseline_priority(acc)
    _opportunities(rng, as_of, data)
    _contacts(rng, data)
    _activities(rng, as_of, data)
    return data


def _account(
    rng: random.Random,
    as_of: dt.date,
    n: int,
    name: str,
    arr: int,
    region: str,
    segment: str,
    tam: str | None,
    parent: str | None,
) -> dict:
    assigned = tam is not None
    plan, seats = _plan_and_seats(rng, arr)
    signals = _signals(rng, region, assigned)
    lam = None
    if assigned and rng.random() < 0.35:
        lam = int(seats * rng.uniform(1.0, 1.8))
    acc = {
        "salesforce_id": sfid("001", n),
        "name": name,
        "arr": arr,
        "region": region,
        "segment": segment,
        "tam": tam,
        "parent": parent,
        "digital_only": not assigned and parent is None,
        "renewal_date": as_of + dt.timedelta(days=rng.randint(7, 548)),
        "plan": plan,
        "licensed_seats": seats,
        "lam": lam,
        "health": _health(rng, signals.get("churn_risk", False)) if assigned else "",
        **_lifecycle(rng, as_of, assigned),
        **signals,
    }
    return acc


def _opportunities(rng: random.Random, as_of: dt.date, data: DemoData) -> None:
    n = 0
    open_stages = ["Discovery", "Scoping", "Technical Evaluation", "Proposal", "Negotiating"]
    for acc in data.accounts:
        assigned = acc["tam"] is not None
        opps: list[tuple[str, str, int, bool, bool, int]] = []
        # (type, stage, days from as_of to close, closed, won, amount)
        if assigned and rng.random() < 0.33:
            opps.append(
                (
                    "Up-tier",
                    rng.choice(open_stages),
                    rng.randint(30, 365),
                    False,
                    False,
                    int(acc["arr"] * rng.uniform(0.2, 0.8)),
                )
            )
        if (acc["renewal_date"] - as_of).days < 180:
            opps.append(
                ("Renewal", rng.choice(open_stages), (acc["renewal_date"] - as_of).days,
                 False, False, acc["arr"])
            )  # fmt: skip
        for _ in range(rng.choice([0, 0, 1, 1, 2]) if assigned else rng.choice([0, 0, 0, 1])):
            won = rng.random() < 0.6
            kind = rng.choice(["Add-on Business", "New Business", "Up-tier"])
            opps.append(
                (kind, "Closed Won" if won else "Closed Lost", -rng.randint(10, 360), True, won,
                 int(acc["arr"] * rng.uniform(0.05, 0.5)))
            )  # fmt: skip
        for kind, stage, days, closed, won, amount in opps:
            n += 1
            data.opportunities.append(
                {
                    "salesforce_id": sfid("006", n),
                    "account": acc["salesforce_id"],
                    "name": f"{acc['name']} - {kind}",
                    "type": kind,
                    "stage_name": stage,
                    "close_date": as_of + dt.timedelta(days=days),
                    "amount": max(amount, 1000),
                    "is_closed": closed,
                    "is_won": won,
                }
            )


def _contacts(rng: random.Random, data: DemoData) -> None:
    n = 0
    for acc in data.accounts:
        assigned = acc["tam"] is not None
        count = rng.randint(2, 5) if assigned else rng.choice([0, 0, 1, 1, 2])
        # Some TAM-assigned accounts have no persona identified yet (a gap to close).
        no_persona = rng.random() < 0.18
        domain = acc["name"].split(" (")[0].lower().replace(" ", "").replace(".", "")
        for k in range(count):
            n += 1
            first, last = rng.choice(FIRST), rng.choice(LAST)
            personas: tuple[str, ...] = ()
            if not no_persona and k == 0:
                personas = ("development_lead",)
                # "select the persona(s) that apply to them": some development leads also
                # own software security (chosen without drawing from rng, so the rest of
                # the demo stays as it was).
                if n % 7 == 0:
                    personas = ("development_lead", "security_lead")
            elif not no_persona and k == 1 and rng.random() < 0.6:
                personas = ("security_lead",)
            title = {
                "development_lead": rng.choice(TITLES_DEV),
                "security_lead": rng.choice(TITLES_SEC),
            }.get(personas[0] if personas else "", rng.choice(TITLES_OTHER))
            data.contacts.append(
                {
                    "salesforce_id": sfid("003", n),
                    "account": acc["salesforce_id"],
                    "name": f"{first} {last}",
                    "email": f"{first}.{last}{n}@{domain}.example".lower(),
                    "title": title,
                    "personas": personas,
                }
            )


def _activities(rng: random.Random, as_of: dt.date, data: DemoData) -> None:
    """A year of timeline per TAM-assigned account; subjects are unique per account so a
    rerun on another day matches the rows already there instead of adding new ones."""
    for acc in data.accounts:
        tam = acc["tam"]
        if tam is None:
            if rng.random() < 0.3:
                data.activities.append(
                    _activity(acc, "email", rng.randint(5, 300), "Digital onboarding email", None)
                )  # fmt: skip
            continue
        every = rng.choice([14, 14, 21, 28, 28, 35])
        if acc.get("onboarding_completed") is None:
            every = 7
        since = acc["customer_since"]
        days_back = min(365, (as_of - since).days)
        number = 0
        for back in range(rng.randint(1, every), days_back, every):
            if rng.random() < 0.1:
                continue  # a skipped cadence call
            number += 1
            data.activities.append(
                _activity(acc, "cadence_call", back, f"Cadence call #{number}", tam)
            )
        for k in range(rng.choice([0, 1, 1, 2]) if days_back > 90 else 0):
            back = rng.randint(20, days_back)
            data.activities.append(_activity(acc, "ebr", back, f"EBR {k + 1}", tam))
        extras = [
            ("email", "Follow-up on open questions"),
            ("call", "Escalation check-in"),
            ("meeting", "Roadmap review"),
            ("workshop", "CI/CD enablement workshop"),
            ("note", "Account note"),
        ]
        for k in range(rng.randint(1, 6)):
            kind, subject = rng.choice(extras)
            back = rng.randint(1, max(2, days_back))
            data.activities.append(_activity(acc, kind, back, f"{subject} ({k + 1})", tam))


def _activity(acc: dict, kind: str, days_back: int, subject: str, tam: str | None) -> dict:
    return {
        "account": acc["salesforce_id"],
        "kind": kind,
        "days_back": days_back,
        "hour": 9 + (days_back * 7) % 8,
        "subject": subject,
        "user": tam,
    }


HISTORY_MONTHS = 12
HEALTH_STEPS = ["red", "amber", "yellow", "green"]


def past_states(
    salesforce_id: str,
    *,
    arr: float,
    health: str,
    priority: int | None,
    months: int = HISTORY_MONTHS,
) -> list[tuple[int, float, str, int | None]]:
    """The account as it was at the end of each of the last `months` months, oldest first:
    (months ago, ARR, health, priority), so the dashboard's trend charts have a year to show.

    Deterministic per account: ARR grew (most accounts) or shrank (a few) to today's value
    with renewals and up-tiers, and the health colour drifted a step or two on the way
    (a recovering account was redder before, a declining one greener)."""
    rng = random.Random(f"{SEED}:{salesforce_id}")  # nosec B311 # demo data, not security
    growth = rng.choice([-0.15, 0.0, 0.1, 0.2, 0.25, 0.35, 0.5])
    drift = rng.choice([-1, 0, 0, 0, 1, 1]) if health else 0
    turn = rng.randint(1, months - 1)  # months ago the colour became today's
    start = HEALTH_STEPS.index(health) + drift if health else 0
    start = max(0, min(len(HEALTH_STEPS) - 1, start))
    out = []
    for ago in range(months, 0, -1):
        value = arr / (1 + growth * ago / months)
        colour = HEALTH_STEPS[start] if health and ago > turn else health
        out.append((ago, float(int(value) // 100 * 100), colour, priority))
    return out
