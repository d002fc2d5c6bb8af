"""What masking a partner's error text costs (sidecar.redact.Masker, issue 10).

Builds the masker a failed step builds (every value of the job, every file
name), then masks partner texts that echo parts of those values. Prints the
median and p95 in ms of the build and of one mask, and the command.

    .venv/bin/python bench/masking.py [--fields 200] [--words 50] [--runs 50]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sidecar.redact import Masker

WORDS = ("diabetes", "type", "insulin", "dependent", "jane", "doe", "obrien", "street",
         "avenue", "clinic", "referral", "result", "positive", "negative", "consent", "signed",
         "history", "allergy", "penicillin")


def ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fields", type=int, default=200)
    parser.add_argument("--words", type=int, default=50, help="words per field value")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    rng = random.Random(10)
    values = [" ".join(f"{rng.choice(WORDS)}{rng.randrange(1000)}" for _ in range(args.words))
              for _ in range(args.fields)]
    texts = [f"field rejected: '{' '.join(rng.choice(values).split()[:8])}' is not valid; "
             + "please check the value and send the record again " * 4
             for _ in range(args.runs)]
    builds, masks = [], []
    for text in texts:
        started = time.perf_counter()
        masker = Masker(values)
        built = time.perf_counter()
        masker.mask(text)
        builds.append(built - started)
        masks.append(time.perf_counter() - built)
    print(f"masker for {args.fields} fields x {args.words} words: build {ms(builds)};"
          f" mask one {len(texts[0])}-character text: {ms(masks)}")
    print(f"command: .venv/bin/python bench/masking.py --fields {args.fields}"
          f" --words {args.words} --runs {args.runs}")


if __name__ == "__main__":
    main()
