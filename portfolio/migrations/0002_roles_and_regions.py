"""Seed the three roles (TAM, Manager, Admin) and the five handbook regions."""

from django.db import migrations

REGIONS = [
    ("US-WEST", "US West"),
    ("US-EAST", "US East"),
    ("EMEA", "Europe, Middle East and Africa"),
    ("APAC", "Asia Pacific"),
    ("LATAM", "Latin America"),
]


def seed(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Region = apps.get_model("portfolio", "Region")
    for name in ("TAM", "Manager", "Admin"):
        Group.objects.get_or_create(name=name)
    for code, name in REGIONS:
        Region.objects.get_or_create(code=code, defaults={"name": name})


def unseed(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["TAM", "Manager", "Admin"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("portfolio", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
