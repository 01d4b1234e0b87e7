"""Signals other apps listen to, so pipelines never imports them (campaigns builds on pipelines,
not the other way round). Both are sent inside the writing transaction; receivers defer slow
work with `transaction.on_commit`.

- `candidates_entered_pool(pool, candidate_ids)`: candidates joined a pool (by hand, a bulk
  action, or a smart pool's search) — only those who were not in it before.
- `candidates_moved_to_stage(pool, stage, candidate_ids)`: cards moved to `stage` (one card
  or many at once); `stage.outcome` tells a won or lost (final) stage.
"""

from django.dispatch import Signal

candidates_entered_pool = Signal()
candidates_moved_to_stage = Signal()
