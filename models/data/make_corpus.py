"""Write corpus.txt: a small text whose words have known structure, for models/word2vec.nn.

Each line is one sentence drawn from a tiny grammar. Words of one group fill the same slot of
the same sentence patterns, so they share their contexts; words of different groups that never
appear in a common pattern share none:

    the ANIMAL ANIMAL_VERB                     the dog sleeps
    the PET sits on the sofa                   the cat sits on the sofa
    the FARM_ANIMAL grazes in the field        the cow grazes in the field
    PERSON wears a COLOUR GARMENT              alice wears a red hat
    PERSON flies to CITY                       bob flies to paris

Pets and farm animals share the animal verbs, so all animals end up near each other and each
subgroup nearer still; colours, garments, cities and people each form their own cluster.
Colours never appear near an animal, an animal verb or a city (and so on), which is what
tests/test_word2vec.py measures. Deterministic (seed 0), so the file can be re-made byte for byte:

    python models/data/make_corpus.py
"""
from pathlib import Path

import numpy as np

PETS = ["cat", "dog", "rabbit", "hamster"]
FARM_ANIMALS = ["cow", "sheep", "goat", "pig"]
ANIMALS = PETS + FARM_ANIMALS
ANIMAL_VERBS = ["eats", "sleeps", "runs", "jumps", "drinks"]
PEOPLE = ["alice", "bob", "carol", "dave", "erin", "frank"]
COLOURS = ["red", "blue", "green", "yellow", "purple", "orange"]
GARMENTS = ["hat", "coat", "scarf", "shirt", "dress", "sock"]
CITIES = ["paris", "london", "rome", "berlin", "madrid", "vienna"]

# the groups whose members share contexts (each pair of words in one group does)
GROUPS = {"pets": PETS, "farm animals": FARM_ANIMALS, "animal verbs": ANIMAL_VERBS, "people": PEOPLE,
          "colours": COLOURS, "garments": GARMENTS, "cities": CITIES}
SENTENCES = 4000


def sentence(rng: np.random.Generator) -> str:
    pick = lambda words: words[rng.integers(len(words))]
    pattern = rng.choice(5, p=[0.3, 0.1, 0.1, 0.3, 0.2])
    if pattern == 0:
        return f"the {pick(ANIMALS)} {pick(ANIMAL_VERBS)}"
    if pattern == 1:
        return f"the {pick(PETS)} sits on the sofa"
    if pattern == 2:
        return f"the {pick(FARM_ANIMALS)} grazes in the field"
    if pattern == 3:
        return f"{pick(PEOPLE)} wears a {pick(COLOURS)} {pick(GARMENTS)}"
    return f"{pick(PEOPLE)} flies to {pick(CITIES)}"


def main() -> None:
    rng = np.random.default_rng(0)
    text = "".join(sentence(rng) + "\n" for _ in range(SENTENCES))
    out = Path(__file__).with_name("corpus.txt")
    out.write_text(text)
    print(f"wrote {out}: {SENTENCES} sentences, {len(text.split())} words, "
          f"{len(set(text.split()))} distinct, {len(text) / 1024:.0f} KB")


if __name__ == "__main__":
    main()
