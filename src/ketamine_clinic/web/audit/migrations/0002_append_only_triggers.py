from django.db import migrations

from ketamine_clinic.web.audit.triggers import install_triggers, remove_triggers


def forwards(apps, schema_editor):
    install_triggers(schema_editor.connection)


def backwards(apps, schema_editor):
    remove_triggers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
