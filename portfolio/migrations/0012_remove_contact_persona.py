"""Drop `Contact.persona`: 0011 copied it to `Contact.personas`."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("portfolio", "0011_contact_personas_sales_managers")]

    operations = [migrations.RemoveField(model_name="contact", name="persona")]
