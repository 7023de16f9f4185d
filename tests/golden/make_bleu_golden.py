"""Writes tests/data/golden/bleu_small.json: NLTK corpus_bleu (BLEU-1..4, no smoothing) on a few
small corpora of tokenised candidates and reference sets.

NLTK, like coco-caption, sums clipped n-gram matches over the corpus and takes the brevity
penalty from the reference length closest to each candidate (ties: the shorter). Every corpus
here has at least one match for every n, so no smoothing is involved, and no candidate is
shorter than 4 words: NLTK counts max(1, number of n-grams) candidate n-grams per sentence, where
coco-caption (and the engine) count 0 for a sentence shorter than n. Needs python3-nltk:
  /usr/bin/python3 tests/golden/make_bleu_golden.py
"""
import json
import os

from nltk.translate.bleu_score import corpus_bleu

WEIGHTS = [(1.0,), (0.5, 0.5), (1 / 3, 1 / 3, 1 / 3), (0.25, 0.25, 0.25, 0.25)]


def split(s):
    return s.split()


CORPORA = {
    # Two images, candidates longer than the closest references: no brevity penalty.
    "long_candidates": [
        ("a dog runs across the green grass in the park",
         ["a dog runs on the grass", "the brown dog is running across a park", "dog in park"]),
        ("a man rides a bike down a street",
         ["a man riding a bicycle on the street", "a person rides a bike", "man on bike down a street"]),
    ],
    # Short candidates: brevity penalty below 1, and repeated words that clipping must cap.
    "short_candidates": [
        ("the the dog runs",
         ["the dog runs in the field", "a dog is running through the tall grass", "the dog runs fast"]),
        ("girl swims in the pool",
         ["a young girl swims in the blue pool", "a girl is swimming in a pool"]),
        ("two kids play outside",
         ["two kids play soccer on a field", "two small children are playing outside"]),
    ],
    # The candidate's length (5) lies halfway between the references' (4 and 6): the shorter
    # one counts, so there is no brevity penalty; with the longer there would be.
    "length_tie": [
        ("a cat sits on mat", ["a cat sits down", "the cat sits on the mat"]),
        ("a black dog jumps high", ["a black dog jumps", "one black dog jumps very high"]),
    ],
}


def main():
    cases = []
    for name, corpus in CORPORA.items():
        hyps = [split(c) for c, _ in corpus]
        refs = [[split(r) for r in rs] for _, rs in corpus]
        bleu = [corpus_bleu(refs, hyps, weights=w) for w in WEIGHTS]
        assert all(b > 1e-3 for b in bleu), name  # every n has matches
        cases.append({"name": name, "candidates": hyps, "references": refs, "bleu": bleu})
    out = os.path.join(os.path.dirname(__file__), "..", "data", "golden", "bleu_small.json")
    with open(out, "w") as f:
        json.dump({"cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
