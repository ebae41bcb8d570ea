"""The series' follow-up summaries (issue 17), backfilled from the answers already
recorded; reversing drops the table (the summaries are derived, the answers stay)."""

import django.db.models.deletion
from django.db import migrations, models

from ketamine_clinic.web.outcomes.summaries import followup_summaries_refresh


def backfill(apps, schema_editor):
    follow_up = apps.get_model("outcomes", "FollowUp")
    series_ids = list(follow_up.objects.order_by().values_list("series_id", flat=True)
                      .distinct())
    followup_summaries_refresh(
        series_ids, response_model=apps.get_model("outcomes", "FollowUpResponse"),
        summary_model=apps.get_model("outcomes", "SeriesFollowUpSummary"))


class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0005_order_choices_and_checks'),
        ('outcomes', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='SeriesFollowUpSummary',
            fields=[
                ('series', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='follow_up_summary', serialize=False, to='orders.series')),
                ('cells', models.JSONField(blank=True, default=list)),
            ],
            options={
                'abstract': False,
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
