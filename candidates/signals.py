"""Signals other apps listen to, so candidates never imports them (pipelines and campaigns
build on candidates, not the other way round).

- `candidate_changed(candidate, created)`: a profile was created or edited through the
  services (after the write, inside its transaction; receivers defer work with
  `transaction.on_commit`).
- `candidates_changed_in_bulk(organization, job, candidate_ids=None)`: an import or a bulk
  action changed many profiles at once; `candidate_ids` names them when they are few (a small
  inline bulk action), None when they are many. Receivers refresh what depends on profile
  fields: per candidate when named, set-wise otherwise.
- `saved_search_changed(saved_search)`: a saved search's filters were replaced (inside the
  transaction); smart pools defined by it re-evaluate their members.
"""

from django.dispatch import Signal

candidate_changed = Signal()
candidates_changed_in_bulk = Signal()
saved_search_changed = Signal()
