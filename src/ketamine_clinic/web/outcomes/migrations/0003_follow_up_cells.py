"""The series' follow-up answers as the report reads them, one row per cell by column
(issue 17) instead of a JSON list per series: backfilled from the answers already recorded;
reversing drops the table (the cells are derived, the answers stay)."""

import django.db.models.deletion
from django.db import migrations, models

from ketamine_clinic.web.outcomes.summaries import followup_summaries_refresh


def backfill(apps, schema_editor):
    follow_up = apps.get_model("outcomes", "FollowUp")
    series_ids = list(follow_up.objects.order_by().values_list("series_id", flat=True)
                      .distinct())
    followup_summaries_refresh(
        series_ids, response_model=apps.get_model("outcomes", "FollowUpResponse"),
        cell_model=apps.get_model("outcomes", "FollowUpCell"), places_model=False)


class Migration(migrations.Migration):

    dependencies = [
        ('infusion_sessions', '0004_session_outcome_summary'),
        ('orders', '0005_order_choices_and_checks'),
        ('outcomes', '0002_series_follow_up_summary'),
    ]

    operations = [
        migrations.CreateModel(
            name='FollowUpCell',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('point', models.CharField(max_length=20)),
                ('pain_nrs', models.FloatField()),
                ('mme_per_day', models.FloatField(blank=True, null=True)),
                ('mme_response', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='outcomes.followupresponse')),
                ('pain_response', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='outcomes.followupresponse')),
                ('series', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='orders.series')),
                ('session', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='infusion_sessions.infusionsession')),
            ],
        ),
        migrations.AddIndex(
            model_name='followupcell',
            index=models.Index(fields=['series', 'point'], name='outcomes_fo_series__374dfe_idx'),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.DeleteModel(
            name='SeriesFollowUpSummary',
        ),
    ]
