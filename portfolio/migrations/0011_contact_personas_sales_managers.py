"""A contact holds any number of key personas; regional Sales Management.

"select the persona(s) that apply to them" (csm-account-engagement.md): `Contact.persona`
(one value) becomes `Contact.personas` (many-to-many to `KeyPersona`). Each contact's
current persona becomes its one persona; the old column is dropped in 0012, after the
copy has committed its rows.

"Exceptions will be addressed to the regional Sales Management team"
(tam-account-engagement.md, EMEA Enterprise): the "Sales Management" group and
`SalesManager` (which regions a sales manager covers).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

PERSONAS = ["development_lead", "security_lead"]


def seed_personas_and_group(apps, schema_editor):
    KeyPersona = apps.get_model("portfolio", "KeyPersona")
    Group = apps.get_model("auth", "Group")
    KeyPersona.objects.bulk_create([KeyPersona(key=k) for k in PERSONAS], ignore_conflicts=True)
    Group.objects.get_or_create(name="Sales Management")


def unseed_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name="Sales Management").delete()


def copy_persona(apps, schema_editor):
    """One set-based INSERT: each contact with a persona gets it as its one persona."""
    Contact = apps.get_model("portfolio", "Contact")
    through = Contact.personas.through
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO "{through._meta.db_table}" (contact_id, keypersona_id) '
            f"SELECT id, persona FROM \"{Contact._meta.db_table}\" WHERE persona <> '' "
            "ON CONFLICT DO NOTHING"
        )


def copy_back(apps, schema_editor):
    """Reverse: the first persona (by key) of each contact becomes its one persona."""
    Contact = apps.get_model("portfolio", "Contact")
    through = Contact.personas.through
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{Contact._meta.db_table}" c SET persona = p.keypersona_id FROM '
            f'(SELECT contact_id, min(keypersona_id) AS keypersona_id FROM "{through._meta.db_table}" '
            "GROUP BY contact_id) p WHERE p.contact_id = c.id"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("portfolio", "0010_account_fillfactor"),
        ("auth", "0012_alter_user_first_name_max_length"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="KeyPersona",
            fields=[
                (
                    "key",
                    models.CharField(
                        choices=[
                            ("development_lead", "Development Lead"),
                            ("security_lead", "Software Security Lead"),
                        ],
                        max_length=20,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
            ],
            options={"ordering": ["key"]},
        ),
        migrations.AddField(
            model_name="contact",
            name="personas",
            field=models.ManyToManyField(
                blank=True, related_name="contacts", to="portfolio.keypersona"
            ),
        ),
        migrations.CreateModel(
            name="SalesManager",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "regions",
                    models.ManyToManyField(related_name="sales_managers", to="portfolio.region"),
                ),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="sales_manager",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"ordering": ["user__username"]},
        ),
        migrations.RunPython(seed_personas_and_group, unseed_group),
        migrations.RunPython(copy_persona, copy_back),
    ]
