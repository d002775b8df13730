"""What Portfolio checks of the engagement expectations, as rule-set fields (issue 14).

Schema: EBR minimums per priority (counted over the last 12 months), why they are a
reading, the onboarding cadence, whether a P1 needs a fully green success plan.

Data, per rule set (completing the seed: the values are written into the rule set and
into its latest version's snapshot, not as a new version, so a fresh install and an
upgraded one hold the same version 1 for the seeded rule sets):
- Commercial ("Engagement Guidelines"): P1 at least 1 EBR ("1-2 per year"), P2 none
  ("TAM discretion"); onboarding call every 28 days ("Kick-off call + meet every 2-4
  weeks", its upper end); a P1 needs a fully green success plan with >= 3 objectives.
- Enterprise and Public Sector (the "Priority Definitions"): the handbook gives no EBR
  number, so P1 and P2 at least 1 a year, marked as Portfolio's reading (the texts say so
  too); no onboarding cadence beyond the monthly P1 call; no success-plan requirement.
A number an admin already typed in the EBR text is kept as the minimum.
"""

import re

from django.db import migrations, models

ENTERPRISE_EBRS_READING = (
    "Portfolio's reading: the Enterprise Priority Definitions give no EBR number. "
    '"Pr2: 60 day call cadence, EBR, renewal touch point" is read as one EBR a year; a P1 '
    '("full TAM-led customer lifecycle") gets at least what a P2 gets.'
)
CHECKED = (
    "p1_ebrs_min_per_year",
    "p2_ebrs_min_per_year",
    "ebrs_reading",
    "onboarding_cadence_days",
    "p1_full_success_plan_required",
    "p1_ebrs_per_year",
    "p2_ebrs_per_year",
)


def _leading_number(text):
    match = re.match(r"\s*(\d+)", text or "")
    return int(match.group(1)) if match else None


def _values(rs):
    p1, p2 = _leading_number(rs.p1_ebrs_per_year), _leading_number(rs.p2_ebrs_per_year)
    if rs.model == "commercial":
        return {
            "p1_ebrs_min_per_year": p1,
            "p2_ebrs_min_per_year": p2,
            "onboarding_cadence_days": 28,
            "p1_full_success_plan_required": True,
        }
    values = {"p1_ebrs_min_per_year": p1 or 1, "p2_ebrs_min_per_year": p2 or 1}
    if rs.p1_ebrs_per_year == "" and rs.p2_ebrs_per_year in ("", "1"):  # the seeded values
        values["ebrs_reading"] = ENTERPRISE_EBRS_READING
        values["p1_ebrs_per_year"] = "1 (Portfolio's reading)"
        values["p2_ebrs_per_year"] = '1 (Portfolio\'s reading of "EBR")'
    return values


def fill(apps, schema_editor):
    RuleSet = apps.get_model("prioritization", "RuleSet")
    RuleSetVersion = apps.get_model("prioritization", "RuleSetVersion")
    for rs in RuleSet.objects.order_by("pk"):
        values = _values(rs)
        previous = RuleSetVersion.objects.filter(ruleset=rs).order_by("-version").first()
        before = {name: getattr(rs, name) for name in CHECKED}
        for name, value in values.items():
            setattr(rs, name, value)
        changed = [name for name in CHECKED if before[name] != getattr(rs, name)]
        if not changed:
            continue
        rs.save(update_fields=changed)
        if previous is not None:
            previous.values = {
                **previous.values,
                **{name: getattr(rs, name) for name in CHECKED},
            }
            previous.save(update_fields=["values"])


class Migration(migrations.Migration):
    dependencies = [
        ("prioritization", "0003_quarterly_schedule"),
    ]

    operations = [
        migrations.AddField(
            model_name="ruleset",
            name="ebrs_reading",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Why the EBR minimums above are Portfolio's reading rather than a number the handbook gives (shown beside them). Empty: they are the handbook's.",
                max_length=400,
                verbose_name="EBR minimums: Portfolio's reading",
            ),
        ),
        migrations.AddField(
            model_name="ruleset",
            name="onboarding_cadence_days",
            field=models.PositiveSmallIntegerField(
                blank=True,
                help_text='Commercial Priority 1: "Onboarding: Kick-off call + meet every 2-4 weeks"; Priority 2: "Kick-off call + digital, check-in calls every 2-4 weeks". While onboarding is not complete (started, no completion date) a P1/P2 account is overdue this many days after its last call, if sooner than its priority\'s cadence. 28 = the upper end of "2-4 weeks" (Portfolio\'s reading). Empty: the priority\'s cadence only.',
                null=True,
                verbose_name="Onboarding: a call at least every (days)",
            ),
        ),
        migrations.AddField(
            model_name="ruleset",
            name="p1_ebrs_min_per_year",
            field=models.PositiveSmallIntegerField(
                blank=True,
                help_text='Counted over the last 12 months. Commercial Priority 1: "Executive Business Reviews: 1-2 per year" (1). Enterprise: the Priority Definitions give P1 no EBR number ("Pr1: TAM-led onboarding, monthly cadence call (as minimum), full TAM-led customer lifecycle"). Empty: no minimum.',
                null=True,
                verbose_name="P1 EBRs a year, at least",
            ),
        ),
        migrations.AddField(
            model_name="ruleset",
            name="p1_full_success_plan_required",
            field=models.BooleanField(
                default=False,
                help_text='Commercial Priority 1: "Success Planning: Fully “green” success plan with at least 3 objectives". The Enterprise Priority Definitions ask no success plan of a P1. On: a P1 account without one is flagged.',
                verbose_name="P1 needs a fully green success plan",
            ),
        ),
        migrations.AddField(
            model_name="ruleset",
            name="p2_ebrs_min_per_year",
            field=models.PositiveSmallIntegerField(
                blank=True,
                help_text='Counted over the last 12 months. Commercial Priority 2: "Executive Business Reviews: TAM discretion" (empty). Enterprise: "Pr2: 60 day call cadence, EBR, renewal touch point" (no number). Empty: no minimum.',
                null=True,
                verbose_name="P2 EBRs a year, at least",
            ),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
