# The index diet of issue 17: every widget message updates its session row, and each update that
# is not HOT writes one entry into every index of the table (26 before this). Dropped: the FK
# index on site_id (session_site_started leads with site_id), the lead_email btree (its lookups
# are case-insensitive: qa's trigram index on UPPER(lead_email) answers them), the FK indexes of
# the six who-did-it columns (nothing filters by them), and the idle-close index on
# last_activity_at (session_compl_started answers completion_status = 'in_progress'; EXPLAIN in
# bench/results.md). bench/hot_updates.py measures the HOT ratio before and after.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('sessions_app', '0016_openings'),
        ('widget', '0008_inbox_retention'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='chatsession',
            name='session_lead_email',
        ),
        migrations.RemoveIndex(
            model_name='chatsession',
            name='session_idle_candidates',
        ),
        migrations.AlterField(
            model_name='chatsession',
            name='archived_by',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='chatsession',
            name='deleted_by',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='chatsession',
            name='dev_feedback_by',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='chatsession',
            name='held_by',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='chatsession',
            name='qa_notes_by',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='chatsession',
            name='qa_status_by',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='chatsession',
            name='site',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='sessions', to='widget.site'),
        ),
    ]
