"""Model signals the candidates app listens to. Attachment rows are deleted by services and by
cascades alike (a candidate in a bulk delete or the admin, a whole organisation), so their
stored files follow every deleted row here rather than in each deleting service."""

from django.db.models.signals import post_delete
from django.dispatch import receiver

from candidates.models import Attachment
from candidates.services.attachments import attachment_file_delete_on_commit


@receiver(post_delete, sender=Attachment, dispatch_uid="candidates.attachment_file_delete")
def attachment_file_delete(sender, *, instance: Attachment, using: str, **kwargs) -> None:
    attachment_file_delete_on_commit(attachment=instance, using=using)
