"""anymail's signals → campaign services. Connected in CampaignsConfig.ready()."""

from anymail.signals import inbound, tracking
from django.dispatch import receiver

from campaigns.services.replies import inbound_receive
from campaigns.services.webhooks import tracking_event_record


@receiver(tracking, dispatch_uid="campaigns.tracking")
def on_tracking(sender, event, esp_name, **kwargs):
    tracking_event_record(event=event, esp_name=esp_name)


@receiver(inbound, dispatch_uid="campaigns.inbound")
def on_inbound(sender, event, esp_name, **kwargs):
    inbound_receive(message=event.message, esp_name=esp_name)
