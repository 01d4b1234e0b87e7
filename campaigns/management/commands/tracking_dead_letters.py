"""Look at, or write again, the tracking events whose batch the database refused three times
(campaigns/services/tracking.py moves such a batch aside so that later events flow).

    manage.py tracking_dead_letters            # how many, and the first few
    manage.py tracking_dead_letters --requeue  # back to the buffer, for the next flush
"""

from django.core.management.base import BaseCommand

from campaigns.services import tracking


class Command(BaseCommand):
    help = "Show the tracking events moved aside after failed flushes, or put them back."

    def add_arguments(self, parser):
        parser.add_argument(
            "--requeue",
            action="store_true",
            help="put them back in front of the buffer; the next flush writes them",
        )
        parser.add_argument("--sample", type=int, default=5, help="how many to show (default 5)")

    def handle(self, *args, requeue: bool, sample: int, **options):
        count, head = tracking.tracking_dead_letters(sample=sample)
        if not count:
            self.stdout.write("No tracking events wait in the dead-letter list.")
            return
        if requeue:
            moved = tracking.tracking_dead_letters_requeue()
            self.stdout.write(
                self.style.SUCCESS(f"{moved} events are back in the buffer for the next flush.")
            )
            return
        self.stdout.write(f"{count} tracking events wait in the dead-letter list. The first:")
        for event in head:
            self.stdout.write(
                f"  {event.get('k', '?')} message {event.get('m', '?')} "
                f"organisation {event.get('o', '?')} at {event.get('t', '?')}"
            )
        self.stdout.write("Fix what made their batches fail (the log says), then --requeue.")
