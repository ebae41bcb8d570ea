"""The series' outcome summaries (issue 17), backfilled from the timelines already charted
(with the sessions' summaries, worked out again alongside); reversing drops the table (the
summaries are derived, the timeline stays)."""

import django.db.models.deletion
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
        ('infusion_sessions', '0004_session_outcome_summary'),
        ('orders', '0005_order_choices_and_checks'),
    ]

    operations = [
        migrations.CreateModel(
            name='SeriesOutcomeSummary',
            fields=[
                ('series', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='outcome_summary', serialize=False, to='orders.series')),
                ('given_sessions', models.PositiveIntegerField()),
                ('first_given_at', models.DateTimeField()),
                ('pain_before_first_nrs', models.FloatField(blank=True, null=True)),
                ('pain_at_end_last_nrs', models.FloatField(blank=True, null=True)),
                ('adverse_events', models.JSONField(blank=True, default=dict, help_text='type -> count')),
                ('last_given_session', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='infusion_sessions.infusionsession')),
            ],
            options={
                'abstract': False,
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
