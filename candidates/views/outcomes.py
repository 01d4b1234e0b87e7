"""What a bulk action did, in a sentence: the message after an inline run
(views/search.py) and the outcome on a finished job's page (views/jobs.py)."""

from candidates.models import Candidate


def _candidates(number: int) -> str:
    return f"{number:,} candidate{'' if number == 1 else 's'}"


def _quoted(values: list[str]) -> str:
    """“a”, “b” and “c”."""
    quoted = [f"“{value}”" for value in values]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def bulk_outcome(action: str, args: dict, changed: int, total: int) -> str:
    """What a bulk action did, as a sentence: “Tagged 2 candidates with “python”.”, then how
    many were already that way (“1 already had it.”)."""
    if action == "delete":
        return f"Deleted {_candidates(changed)}."
    unchanged = total - changed
    it = "it" if len(args.get("tags", [])) < 2 else "them"
    if action == "tag":
        done = f"Tagged {_candidates(changed)} with {_quoted(args['tags'])}."
        already = f"already had {it}"
    elif action == "untag":
        done = f"Removed {_quoted(args['tags'])} from {_candidates(changed)}."
        already = f"did not have {it}"
    elif action == "owner" and args.get("owner_id"):
        done = f"Assigned {_candidates(changed)} to {args['owner_name']}."
        already = "already had that owner"
    elif action == "owner":
        done = f"Unassigned {_candidates(changed)}."
        already = f"{'was' if unchanged == 1 else 'were'} already unassigned"
    elif action == "status":
        status = Candidate.Status(args["status"]).label
        done = f"Set the status of {_candidates(changed)} to “{status}”."
        already = "already had that status"
    else:
        done = f"Changed {_candidates(changed)}."
        already = "already had the change"
    if not changed:
        everyone = "the candidate" if total == 1 else f"all {total:,} candidates"
        return f"Nothing changed: {everyone} {already}."
    if unchanged:
        return f"{done} {unchanged:,} {already}."
    return done
