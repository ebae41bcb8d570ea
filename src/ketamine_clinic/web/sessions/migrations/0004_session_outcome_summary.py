"""The sessions' outcome summaries (issue 17), backfilled from the timelines already
charted; reversing drops the table (the summaries are derived, the timeline stays)."""

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
        # The series' summaries come with a later migration (0005), which works them out.
        series_summary_model=False)


class Migration(migrations.Migration):

    dependencies = [
        ('infusion_sessions', '0003_state_and_kind_choices'),
        ('orders', '0005_order_choices_and_checks'),
    ]

    operations = [
        migrations.CreateModel(
            name='SessionOutcomeSummary',
            fields=[
                ('session', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='outcome_summary', serialize=False, to='infusion_sessions.infusionsession')),
                ('scheduled_for', models.DateTimeField()),
                ('started', models.BooleanField(help_text='an infusion start was charted')),
                ('first_given', models.BooleanField(help_text='the given session of the series with the lowest visit number')),
                ('last_given', models.BooleanField(help_text='the given session of the series with the highest visit number')),
                ('pain_before_nrs', models.FloatField(blank=True, null=True)),
                ('pain_at_end_nrs', models.FloatField(blank=True, null=True)),
                ('adverse_event_count', models.PositiveIntegerField(default=0)),
                ('adverse_events', models.JSONField(blank=True, default=dict, help_text='type -> count')),
                ('series', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='orders.series')),
            ],
            options={
                'abstract': False,
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
