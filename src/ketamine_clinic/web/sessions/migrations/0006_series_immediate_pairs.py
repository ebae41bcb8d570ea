"""The series' outcome summaries keep the (pain before, pain at the end) of their given
sessions (issue 17), backfilled by working the summaries out again from the timelines
already charted; reversing drops the column (it is derived, the timeline stays)."""

from django.db import migrations, models

from ketamine_clinic.web.sessions.summaries import outcome_summaries_refresh


def backfill(apps, schema_editor):
    session = apps.get_model("infusion_sessions", "InfusionSession")
    series_ids = list(session.objects.order_by().values_list("series_id", flat=True)
                      .distinct())
    outcome_summaries_refresh(
        series_ids, session_model=session,
        entry_model=apps.get_model("infusion_sessions", "TimelineEntry"),
        summary_model=apps.get_model("infusion_sessions", "SessionOutcomeSummary"),
        series_summary_model=apps.get_model("infusion_sessions", "SeriesOutcomeSummary"))


class Migration(migrations.Migration):

    dependencies = [
        ('infusion_sessions', '0005_series_outcome_summary'),
    ]

    operations = [
        migrations.AddField(
            model_name='seriesoutcomesummary',
            name='immediate_pairs_nrs',
            field=models.BinaryField(blank=True, default=b''),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
