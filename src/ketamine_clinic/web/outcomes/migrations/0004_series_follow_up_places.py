"""The series' follow-up answers as the report takes them, place by place in one row per
series (issue 17), so that the report reads them with the series instead of grouping the
cells: backfilled from the answers already recorded and the series' last given sessions;
reversing drops the table (the places are derived, the answers stay)."""

import django.db.models.deletion
from django.db import migrations, models

from ketamine_clinic.web.outcomes.summaries import followup_summaries_refresh


def backfill(apps, schema_editor):
    follow_up = apps.get_model("outcomes", "FollowUp")
    series_ids = list(follow_up.objects.order_by().values_list("series_id", flat=True)
                      .distinct())
    followup_summaries_refresh(
        series_ids, response_model=apps.get_model("outcomes", "FollowUpResponse"),
        cell_model=apps.get_model("outcomes", "FollowUpCell"),
        places_model=apps.get_model("outcomes", "SeriesFollowUpPlaces"),
        series_summary_model=apps.get_model("infusion_sessions", "SeriesOutcomeSummary"))


class Migration(migrations.Migration):

    dependencies = [
        ('infusion_sessions', '0005_series_outcome_summary'),
        ('orders', '0005_order_choices_and_checks'),
        ('outcomes', '0003_follow_up_cells'),
    ]

    operations = [
        migrations.CreateModel(
            name='SeriesFollowUpPlaces',
            fields=[
                ('series', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='follow_up_places', serialize=False, to='orders.series')),
                ('layout', models.CharField(max_length=200)),
                ('values', models.BinaryField(help_text='per place: pain (NRS), MME per day; float64, NaN: none')),
                ('last_given_session', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='infusion_sessions.infusionsession')),
            ],
            options={
                'abstract': False,
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
