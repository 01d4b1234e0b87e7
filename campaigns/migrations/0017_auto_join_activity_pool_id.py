"""Timeline entries of sequences' auto-join written before they carried `data.pool_id`.

"Joined the campaign “X” (entered the pool “P”)" names the pool P; the timeline keeps a
colleague's "Only me" pool out of other people's view by `data.pool_id`
(pipelines.selectors.activity_names_hidden_pool), which older entries lack. Give them the pool
they name: the campaign's auto-join pool when its name is still the one written, otherwise the
organisation's only pool of that name. An entry that fits neither (the pool renamed and its
old name gone) is left as it is.
"""

from django.db import migrations

# Entries that name a pool but carry no pool_id, given the pool whose quoted name ends the
# summary: “Python”) is not the end of “Senior Python”). No LIKE: a name may hold % or _.
BY_CAMPAIGN = """
UPDATE candidates_activity a
   SET data = a.data || jsonb_build_object('pool_id', p.id)
  FROM campaigns_campaign c
  JOIN pipelines_pool p ON p.id = c.auto_join_pool_id
 WHERE a.kind = 'enrollment'
   AND NOT (a.data ? 'pool_id')
   AND position(' (entered the pool “' IN a.summary) > 0
   AND c.organization_id = a.organization_id
   AND c.id = (a.data ->> 'campaign_id')::bigint
   AND right(a.summary, char_length(p.name) + 3) = '“' || p.name || '”)'
"""

BY_NAME = """
UPDATE candidates_activity a
   SET data = a.data || jsonb_build_object('pool_id', p.id)
  FROM pipelines_pool p
 WHERE a.kind = 'enrollment'
   AND NOT (a.data ? 'pool_id')
   AND position(' (entered the pool “' IN a.summary) > 0
   AND p.organization_id = a.organization_id
   AND right(a.summary, char_length(p.name) + 3) = '“' || p.name || '”)'
   AND NOT EXISTS (
       SELECT 1 FROM pipelines_pool other
        WHERE other.organization_id = p.organization_id
          AND other.name = p.name
          AND other.id <> p.id
   )
"""


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0016_sending_domain_verification"),
        ("candidates", "0015_customfield_number_limits"),
        ("pipelines", "0007_pool_archived_at"),
    ]

    operations = [
        migrations.RunSQL(BY_CAMPAIGN, migrations.RunSQL.noop, elidable=True),
        migrations.RunSQL(BY_NAME, migrations.RunSQL.noop, elidable=True),
    ]
