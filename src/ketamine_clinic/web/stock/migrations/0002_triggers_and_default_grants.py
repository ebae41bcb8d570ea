from django.db import migrations

from ketamine_clinic.web.stock.permissions import DEFAULT_GRANTS
from ketamine_clinic.web.stock.triggers import install_triggers, remove_triggers


def forwards(apps, schema_editor):
    install_triggers(schema_editor.connection)
    grant = apps.get_model("stock", "StockGrant")
    for capability, roles in DEFAULT_GRANTS.items():
        for role in roles:
            grant.objects.get_or_create(role=str(role), capability=str(capability))


def backwards(apps, schema_editor):
    remove_triggers(schema_editor.connection)
    apps.get_model("stock", "StockGrant").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("stock", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
