"""The series' follow-up summaries (issue 17), backfilled from the answers already
recorded; reversing drops the table (the summaries are derived, the answers stay).

The table is replaced by the follow-up cells of 0003, which backfills them; its own backfill
is left out (it called the refresh that now writes the cells).
"""

import django.db.models.deletion
from django.db import migrations, models


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
    ]
