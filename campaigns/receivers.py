"""anymail's signals and candidates' signals → campaign services. Connected in
CampaignsConfig.ready(); candidates never imports campaigns."""

from anymail.signals import inbound, tracking
from django.dispatch import receiver

from campaigns.services.audience import NO_CAMPAIGN_EMAIL_STATUSES
from campaigns.services.replies import inbound_receive
from campaigns.services.sequences import enrollments_stop_for_status
from campaigns.services.webhooks import tracking_event_record
from candidates.signals import candidate_changed, candidates_changed_in_bulk


@receiver(tracking, dispatch_uid="campaigns.tracking")
def on_tracking(sender, event, esp_name, **kwargs):
    tracking_event_record(event=event, esp_name=esp_name)


@receiver(inbound, dispatch_uid="campaigns.inbound")
def on_inbound(sender, event, esp_name, **kwargs):
    inbound_receive(message=event.message, esp_name=esp_name)


# A candidate marked "Do not contact" or Hired leaves every campaign at once, in the
# transaction that changed the status (as a move to a won stage does), not at the next step.


@receiver(candidate_changed, dispatch_uid="campaigns.status_stops_enrollments")
def on_candidate_changed(sender, *, candidate, created, **kwargs) -> None:
    """A profile edited (its status on the profile page), or merged: one indexed query when
    the candidate is do-not-contact or hired, none otherwise."""
    if created or candidate.status not in NO_CAMPAIGN_EMAIL_STATUSES:
        return
    enrollments_stop_for_status(
        organization_id=candidate.organization_id, candidate_ids=[candidate.pk]
    )


@receiver(candidates_changed_in_bulk, dispatch_uid="campaigns.status_stops_enrollments_bulk")
def on_candidates_changed_in_bulk(sender, *, organization, candidate_ids=None, **kwargs) -> None:
    """A bulk action (inline: the candidates it acted on; a job: after its last batch) or an
    import (after it landed): the do-not-contact and hired ones among them — among everyone
    in the organisation when they are not named."""
    enrollments_stop_for_status(organization_id=organization.pk, candidate_ids=candidate_ids)
