"""Campaigns used to be marked done once every email was written; since campaigns_finish they
are done when every email has left the outbox. Those marked done with emails still queued or
sending go back to running, and the send task or the dispatcher finishes them."""

from django.db import migrations


def reopen(apps, schema_editor):
    Campaign = apps.get_model("campaigns", "Campaign")
    Message = apps.get_model("campaigns", "Message")
    still_sending = Message.objects.filter(status__in=["queued", "sending"]).values("campaign_id")
    Campaign.objects.filter(status="done", pk__in=still_sending).update(
        status="running", finished_at=None
    )


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0008_audience_batches")]

    operations = [migrations.RunPython(reopen, migrations.RunPython.noop)]
