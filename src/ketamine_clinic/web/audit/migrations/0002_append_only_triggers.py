from django.db import migrations

# The triggers as this migration first installed them (the current set is installed by
# 0003 from triggers.py); kept here so that the history replays on a new database.
INSTALL = {
    "sqlite": [
        """CREATE TRIGGER IF NOT EXISTS audit_entry_no_update BEFORE UPDATE
           ON audit_auditentry
           BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;""",
        """CREATE TRIGGER IF NOT EXISTS audit_entry_no_delete BEFORE DELETE
           ON audit_auditentry
           BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;""",
    ],
    "postgresql": [
        """CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger AS $$
           BEGIN RAISE EXCEPTION 'audit entries are append-only'; END;
           $$ LANGUAGE plpgsql;""",
        """CREATE OR REPLACE TRIGGER audit_entry_append_only
           BEFORE UPDATE OR DELETE ON audit_auditentry
           FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only();""",
    ],
}
REMOVE = {
    "sqlite": ["DROP TRIGGER IF EXISTS audit_entry_no_update;",
               "DROP TRIGGER IF EXISTS audit_entry_no_delete;"],
    "postgresql": ["DROP TRIGGER IF EXISTS audit_entry_append_only ON audit_auditentry;",
                   "DROP FUNCTION IF EXISTS audit_entry_append_only();"],
}


def _run(connection, statements):
    with connection.cursor() as cursor:
        for sql in statements.get(connection.vendor, []):
            cursor.execute(sql)


def forwards(apps, schema_editor):
    _run(schema_editor.connection, INSTALL)


def backwards(apps, schema_editor):
    _run(schema_editor.connection, REMOVE)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
