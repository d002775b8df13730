"""Cadence calls and EBRs record what happened to them (issue 14): held, held but late,
missed, rescheduled. Existing rows keep "" (not recorded): cadence attendance is read
only from recorded outcomes, and an unrecorded call still counts as held for the cadence,
as before. Adding a column with a constant default is a catalogue change in PostgreSQL
(no table rewrite)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("portfolio", "0012_remove_contact_persona")]

    operations = [
        migrations.AddField(
            model_name="activity",
            name="outcome",
            field=models.CharField(
                blank=True,
                choices=[
                    ("held", "Held"),
                    ("late", "Held, the customer came late"),
                    ("missed", "Missed: the customer did not show up"),
                    ("rescheduled", "Rescheduled: the customer said they could not make it"),
                ],
                default="",
                max_length=12,
            ),
        ),
    ]
