"""Write corpus.txt: a small text whose words have known structure, for models/word2vec.nn; and
docstrings.txt: 1.5 MB of real English, for the character GPT of models/gpt_docs.nn.

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

docstrings.txt is the docstrings of Python's standard library (every module, class and function
docstring of at least 40 characters, ASCII only, first occurrence kept), read from the source
files with `ast` (nothing is imported, so nothing runs), in sorted file order. The same Python
version (minor and patch: the files change between releases) makes the same file on any machine:
Python 3.11.7 gives 1,577,106 characters in 6,256 docstrings (96 distinct characters).
Third-party packages, tests and demos (site-packages, test, idlelib, ...) are left out.
"""
import ast
import sysconfig
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


# standard-library folders that are not the library's own documentation
NOT_DOCS = {"site-packages", "dist-packages", "test", "tests", "idlelib", "turtledemo", "lib2to3", "ensurepip",
            "__pycache__", "pydoc_data"}
SHORTEST_DOCSTRING = 40


def stdlib_docstrings() -> str:
    """The docstrings of the standard library's source files, blank-line separated (see above)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if not set(p.relative_to(root).parts[:-1]) & NOT_DOCS)
    docs, seen = [], set()
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):     # a few files are templates, not Python
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= SHORTEST_DOCSTRING and doc.isascii() and doc not in seen:
                    seen.add(doc)
                    docs.append(doc)
    return "\n\n".join(docs) + "\n"


def main() -> None:
    docs = stdlib_docstrings()
    out = Path(__file__).with_name("docstrings.txt")
    out.write_text(docs, encoding="utf-8")
    print(f"wrote {out}: {len(docs):,} characters, {len(set(docs))} distinct")
    rng = np.random.default_rng(0)
    text = "".join(sentence(rng) + "\n" for _ in range(SENTENCES))
    out = Path(__file__).with_name("corpus.txt")
    out.write_text(text)
    print(f"wrote {out}: {SENTENCES} sentences, {len(text.split())} words, "
          f"{len(set(text.split()))} distinct, {len(text) / 1024:.0f} KB")


if __name__ == "__main__":
    main()
