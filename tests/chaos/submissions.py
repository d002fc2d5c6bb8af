"""The chaos run's submissions: their files on disk, their snapshots, and their job rows
written and rung as the bridge does it."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from devstack import samples
from sidecar.store import NewJob, Store
from tests.chaos.plan import Plan
from tests.integration.delivery import snapshot, text_fields

FORM_ID = 12
VALID_KINDS = ("pdf", "jpeg", "png")
HTML_KIND = "html_as_pdf"


@dataclass(frozen=True)
class Submission:
    number: int
    reference: str
    files: tuple[Path, ...]
    kinds: tuple[str, ...]

    @property
    def html_positions(self) -> frozenset[int]:
        return frozenset(i for i, kind in enumerate(self.kinds) if kind == HTML_KIND)

    @property
    def valid_count(self) -> int:
        return len(self.files) - len(self.html_positions)


def make_submissions(uploads: Path, plan: Plan, rng: random.Random) -> list[Submission]:
    """`plan.submissions` submissions with 1-3 documents each; a few carry one HTML page
    named .pdf (a login page saved instead of the upload), which must be rejected."""
    count = plan.submissions
    with_html = set(rng.sample(range(1, count + 1), max(1, round(count * plan.html_share))))
    folder = uploads / "wpforms" / f"{FORM_ID}-chaos"
    made = []
    for n in range(1, count + 1):
        kinds = [rng.choice(VALID_KINDS) for _ in range(rng.randint(1, 3))]
        if n in with_html:
            kinds[rng.randrange(len(kinds))] = HTML_KIND
        files = []
        for i, kind in enumerate(kinds):
            size = rng.randint(max(samples.MIN_SIZES[kind], 1536), 8192)
            path = folder / f"{n:04d}-{i}{samples.EXTENSIONS[kind]}"
            files.append(samples.WRITERS[kind](path, size))
        made.append(Submission(n, f"wpforms:{FORM_ID}:{n}", tuple(files), tuple(kinds)))
    return made


def submission_snapshot(sub: Submission, uploads: Path) -> str:
    fields = text_fields()
    fields["1"] = {**fields["1"], "value": f"Chaos Person {sub.number}", "last": str(sub.number)}
    return snapshot(FORM_ID, sub.number, fields, uploads, list(sub.files))


def enqueue_all(store: Store, subs: Iterable[Submission], uploads: Path,
                ring: Callable[[int, int], None]) -> dict[str, int]:
    """One job per submission, as the bridge writes it, each rung like a notify would."""
    ids = {}
    for sub in subs:
        job, _ = store.enqueue(NewJob(sub.reference, FORM_ID, sub.number,
                                      submission_snapshot(sub, uploads)))
        ring(job.id, job.priority)
        ids[sub.reference] = job.id
    return ids
