"""Signals other apps listen to, so candidates never imports them (pipelines and campaigns
build on candidates, not the other way round).

- `candidate_changed(candidate, created)`: a profile was created or edited through the
  services (after the write, inside its transaction; receivers defer work with
  `transaction.on_commit`).
- `candidates_changed_in_bulk(organization, job)`: an import or a bulk action changed many
  profiles at once; receivers refresh whatever depends on profile fields set-wise.
"""

from django.dispatch import Signal

candidate_changed = Signal()
candidates_changed_in_bulk = Signal()
