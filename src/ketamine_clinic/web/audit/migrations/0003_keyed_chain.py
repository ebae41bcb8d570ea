"""The keyed chain: entries carry an HMAC of their content and
are linked into the chain by the sealer, so writers no longer take a global lock.

The existing trail is carried over in its order: each entry gets its MAC under the audit
key and a link with its old sequence number. Run ``ketamine-clinic audit verify`` with
the previous version first: this migration re-keys what it finds. Going back is not
possible (the old unkeyed hashes are not kept): restore the backup taken before upgrading.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from ketamine_clinic.web.audit.chain import GENESIS_HASH, entry_mac, link_hash


def _old_triggers(apps, schema_editor):
    module = __import__("ketamine_clinic.web.audit.migrations.0002_append_only_triggers",
                        fromlist=["REMOVE"])
    module._run(schema_editor.connection, module.REMOVE)


def _rekey(apps, schema_editor):
    Entry = apps.get_model("audit", "AuditEntry")
    Link = apps.get_model("audit", "AuditLink")
    Head = apps.get_model("audit", "AuditHead")
    key = settings.AUDIT_KEY
    prev, seq, last_id = GENESIS_HASH, 0, 0
    links = []
    for e in Entry.objects.order_by("seq", "id").iterator(chunk_size=2000):
        nonce = e.hash[:32]
        content = {
            "at": e.at.isoformat(timespec="microseconds"), "nonce": nonce,
            "user_id": e.user_id_value, "username": e.username, "role": e.role,
            "site_code": e.site_code, "action": e.action, "object_type": e.object_type,
            "object_id": e.object_id, "client_address": e.client_address, "detail": e.detail,
        }
        mac = entry_mac(key, content)
        Entry.objects.filter(pk=e.pk).update(nonce=nonce, mac=mac)
        seq += 1
        h = link_hash(key, prev_hash=prev, seq=seq, entry_id=e.pk, mac=mac)
        links.append(Link(seq=seq, entry_id=e.pk, prev_hash=prev, hash=h))
        prev, last_id = h, max(last_id, e.pk)
        if len(links) >= 2000:
            Link.objects.bulk_create(links)
            links = []
    Link.objects.bulk_create(links)
    Head.objects.update_or_create(pk=1, defaults={"seq": seq, "hash": prev,
                                                  "entry_id_max": last_id})


def _irreversible(apps, schema_editor):
    raise RuntimeError("the keyed audit chain cannot be turned back into the unkeyed one: "
                       "restore the backup taken before the upgrade")


def _install(apps, schema_editor):
    from ketamine_clinic.web.audit.triggers import install_triggers

    install_triggers(schema_editor.connection)


def _remove(apps, schema_editor):
    from ketamine_clinic.web.audit.triggers import remove_triggers

    remove_triggers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_triggers")]

    operations = [
        migrations.RunPython(_old_triggers, _irreversible),
        migrations.AddField("auditentry", "nonce",
                            models.CharField(default="", max_length=32), preserve_default=False),
        migrations.AddField("auditentry", "mac",
                            models.CharField(default="", max_length=64), preserve_default=False),
        migrations.AddField("audithead", "entry_id_max", models.BigIntegerField(default=0)),
        migrations.CreateModel(
            name="AuditLink",
            fields=[
                ("seq", models.PositiveBigIntegerField(primary_key=True, serialize=False)),
                ("prev_hash", models.CharField(max_length=64)),
                ("hash", models.CharField(max_length=64, unique=True)),
                ("entry", models.OneToOneField(on_delete=django.db.models.deletion.PROTECT,
                                               related_name="link", to="audit.auditentry")),
            ],
            options={"ordering": ["seq"]},
        ),
        migrations.RunPython(_rekey, migrations.RunPython.noop),
        migrations.RemoveField("auditentry", "seq"),
        migrations.RemoveField("auditentry", "prev_hash"),
        migrations.RemoveField("auditentry", "hash"),
        migrations.AlterField("auditentry", "mac", models.CharField(max_length=64, unique=True)),
        migrations.AlterModelOptions("auditentry", options={
            "ordering": ["id"], "verbose_name_plural": "audit entries"}),
        migrations.AddIndex("auditentry", models.Index(fields=["client_address", "at"],
                                                       name="audit_entry_addr_at")),
        migrations.RunPython(_install, _remove),
    ]
