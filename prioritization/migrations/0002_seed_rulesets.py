"""Seed one rule set per region x segment with the handbook's values (version 1).

Mapping (docs/rules.md): US-WEST/US-EAST Enterprise -> us_enterprise; EMEA Enterprise ->
emea_enterprise; Commercial everywhere -> commercial ("Commercial (NORAM, LATAM, EMEA)";
APAC uses the same criteria); Public Sector (all regions) -> us_enterprise with the
TAM-assigned digital trial on; APAC and LATAM Enterprise -> us_enterprise (the handbook has
no model of their own; the US flowchart is the general one). flat_p1 is available for an
AMER CSM rule set but seeded nowhere.
"""

from decimal import Decimal

from django.db import migrations

REGIONS = ["US-WEST", "US-EAST", "EMEA", "APAC", "LATAM"]
SEGMENTS = ["enterprise", "commercial", "public_sector"]

# "Pr1: TAM-led onboarding, monthly cadence call (as minimum), full TAM-led customer
# lifecycle" / "Pr2: 60 day call cadence, EBR, renewal touch point"
ENTERPRISE_ENGAGEMENT = {
    "p1_onboarding": "TAM-led onboarding",
    "p1_call_frequency": "Monthly cadence call (as minimum)",
    "p1_cadence_days": 30,
    "p1_success_plan": "Full TAM-led customer lifecycle",
    "p1_ebrs_per_year": "",
    "p1_qa_channel": "",
    "p2_onboarding": "",
    "p2_call_frequency": "60 day call cadence, renewal touch point",
    "p2_cadence_days": 60,
    "p2_success_plan": "",
    "p2_ebrs_per_year": "1",
    "p2_qa_channel": "",
}
# Commercial "Engagement Guidelines"
COMMERCIAL_ENGAGEMENT = {
    "p1_onboarding": "Kick-off call + meet every 2-4 weeks",
    "p1_call_frequency": "Monthly status/consulting calls",
    "p1_cadence_days": 30,
    "p1_success_plan": "Fully green success plan with at least 3 objectives",
    "p1_ebrs_per_year": "1-2",
    "p1_qa_channel": "Live calls and email",
    "p2_onboarding": "Kick-off call + digital, check-in calls every 2-4 weeks",
    "p2_call_frequency": "Quarterly or semi-annual meetings",
    "p2_cadence_days": 90,
    "p2_success_plan": "Objectives only, no tasks. Strategy and Highlights optional",
    "p2_ebrs_per_year": "TAM discretion",
    "p2_qa_channel": "Inbound TAM email or Support ticket",
}
VERSIONED = [
    "model", "onboarding_max_days", "digital_tam_trial", "uptier_window_months",
    "stage_adoption_hours", "infrastructure_change_hours", "onboarding_window_days",
    "commercial_new_customer_days", "commercial_top_n", "commercial_p2_arr_below",
    "commercial_min_stages", "commercial_uptier_window_months", "p1_target_share",
    "p1_share_tolerance", "p1_target_min", "p1_target_max", *ENTERPRISE_ENGAGEMENT,
]


def values_for(region, segment):
    values = {
        "onboarding_max_days": 0,
        "digital_tam_trial": segment == "public_sector",
        "uptier_window_months": 6,
        "stage_adoption_hours": Decimal("2.0"),
        "infrastructure_change_hours": Decimal("2.0"),
        "onboarding_window_days": 45,
        "commercial_new_customer_days": 90,
        "commercial_top_n": 30,
        "commercial_p2_arr_below": Decimal("75000"),
        "commercial_min_stages": 3,
        "commercial_uptier_window_months": 9,
        "p1_target_share": None,
        "p1_share_tolerance": Decimal("0.100"),
        "p1_target_min": None,
        "p1_target_max": None,
    }
    if segment == "commercial":
        values["model"] = "commercial"
        values.update(COMMERCIAL_ENGAGEMENT)
    elif region == "EMEA" and segment == "enterprise":
        values["model"] = "emea_enterprise"
        values.update(p1_target_min=5, p1_target_max=8)  # "roughly 5 to 8 customers as P1"
        values.update(ENTERPRISE_ENGAGEMENT)
    else:
        values["model"] = "us_enterprise"
        values["p1_target_share"] = Decimal("0.333")  # "roughly one third (1/3)"
        values.update(ENTERPRISE_ENGAGEMENT)
    return values


def seed(apps, schema_editor):
    RuleSet = apps.get_model("prioritization", "RuleSet")
    RuleSetVersion = apps.get_model("prioritization", "RuleSetVersion")
    for region in REGIONS:
        for segment in SEGMENTS:
            values = values_for(region, segment)
            ruleset, created = RuleSet.objects.get_or_create(
                region_id=region, segment=segment, defaults={**values, "version": 1}
            )
            if created:
                snapshot = {}
                for name in VERSIONED:
                    value = getattr(ruleset, name)
                    places = getattr(RuleSet._meta.get_field(name), "decimal_places", None)
                    if places is not None and value is not None:
                        value = f"{Decimal(value):.{places}f}"
                    snapshot[name] = value
                RuleSetVersion.objects.create(ruleset=ruleset, version=1, values=snapshot)


def unseed(apps, schema_editor):
    apps.get_model("prioritization", "RuleSet").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("prioritization", "0001_initial"),
        ("portfolio", "0002_roles_and_regions"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
