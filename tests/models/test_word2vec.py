"""word2vec (models/word2vec.nn): the skip-gram loader, the nearest-neighbours command, and the
measured quality of the vectors trained from --seed 0 (about 1 s on 2 cores)."""
import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest

import nngraph
from nngraph.cli import main
from nngraph.diagnostics import NNError
from tests.helpers import ROOT

MODELS = ROOT / "models"
CORPUS = MODELS / "data" / "corpus.txt"


def _make_corpus():
    spec = importlib.util.spec_from_file_location("make_corpus", MODELS / "data" / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_corpus = _make_corpus()


@pytest.fixture(scope="module")
def trained():
    model = nngraph.load(str(MODELS / "word2vec.nn"))
    return model, model.train(seed=0, progress=False)


def contexts_in_corpus(window: int = 2) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    for line in CORPUS.read_text().splitlines():
        words = line.split()
        for i, w in enumerate(words):
            seen.setdefault(w, set()).update(words[j] for j in range(max(0, i - window), min(len(words), i + window + 1))
                                             if j != i)
    return seen


def test_corpus_is_what_the_script_writes():
    rng = np.random.default_rng(0)
    text = "".join(make_corpus.sentence(rng) + "\n" for _ in range(make_corpus.SENTENCES))
    assert CORPUS.read_text() == text
    assert CORPUS.stat().st_size < 200_000


def test_words_sharing_contexts_end_up_closer_than_words_that_never_do(trained):
    """Every pair of one group (cat/dog, red/blue, paris/rome: the same slots of the same sentence
    patterns) has a higher cosine than every pair of words whose contexts in the corpus (window 2)
    are disjoint (cat/red, paris/hat), by at least 0.4. From seed 0: same-group pairs 0.974 to
    0.999 (mean 0.992), never-sharing pairs at most 0.432 (mean 0.232): a gap of 0.54."""
    model, result = trained
    words = model.vocabulary()
    vectors = model.word_vectors(result.params).astype(np.float64)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = lambda a, b: float(unit[words.index(a)] @ unit[words.index(b)])
    context = contexts_in_corpus()
    groups = make_corpus.GROUPS
    sharing = [(a, b) for g in groups.values() for a, b in itertools.combinations(g, 2)]
    assert all(context[a] & context[b] for a, b in sharing)
    grouped = [w for g in groups.values() for w in g]
    never = [(a, b) for a, b in itertools.combinations(grouped, 2) if not context[a] & context[b]]
    assert {("cat", "red"), ("hat", "paris"), ("cow", "alice")} <= set(never) and len(never) == 384
    near = [cosine(a, b) for a, b in sharing]
    far = [cosine(a, b) for a, b in never]
    assert min(near) - max(far) >= 0.4, (min(near), max(far))
    assert np.mean(near) >= 0.9 and np.mean(far) <= 0.4


def test_nearest_neighbours_follow_the_grammar(trained):
    model, result = trained
    assert {w for w, _ in model.neighbours(result.params, "cat", k=3)} == {"dog", "rabbit", "hamster"}
    assert {w for w, _ in model.neighbours(result.params, "cow", k=3)} == {"sheep", "goat", "pig"}
    assert {w for w, _ in model.neighbours(result.params, "red", k=5)} == set(make_corpus.COLOURS) - {"red"}
    found = model.neighbours(result.params, "paris", k=5)
    assert [c for _, c in found] == sorted((c for _, c in found), reverse=True)


def test_neighbours_command(trained, tmp_path, capsys):
    model, result = trained
    nngraph.save_npz(str(tmp_path / "w2v.npz"), result.params)
    code = main(["neighbours", str(MODELS / "word2vec.nn"), "--params", str(tmp_path / "w2v.npz"),
                 "--word", "paris", "-k", "3"])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("paris: ")
    assert {part.split()[0] for part in out[len("paris: "):].split(", ")} <= set(make_corpus.CITIES)

    code = main(["neighbours", str(MODELS / "word2vec.nn"), "--params", str(tmp_path / "w2v.npz"), "--word", "parsi"])
    err = capsys.readouterr().err
    assert code == 1
    assert "error: `parsi` is not one of the 48 words of" in err and "did you mean `paris`?" in err


def test_skipgram_pairs_stay_within_a_line_and_negatives_are_noise():
    model = nngraph.load(str(MODELS / "word2vec.nn"))
    data = model.load_data()
    words = data.classes["centre"]
    lines = [line.split() for line in CORPUS.read_text().splitlines()]
    assert data.size == sum(sum(min(len(s), i + 3) - max(0, i - 2) - 1 for i in range(len(s))) for s in lines)
    assert data.arrays["negatives"].shape == (data.size, 5)
    assert not (data.arrays["negatives"] == data.arrays["context"][:, None]).any()
    first = lines[0]                                          # the first line's pairs come first
    assert [words[i] for i in data.arrays["centre"][:2]] == [first[0], first[0]]
    assert [words[i] for i in data.arrays["context"][:2]] == first[1:3]
    again = model.load_data()
    np.testing.assert_array_equal(again.arrays["negatives"], data.arrays["negatives"])   # seeded
    counts = np.bincount(data.arrays["negatives"].ravel(), minlength=len(words))
    assert counts[words.index("the")] > counts[words.index("rome")]      # drawn by frequency ** 3/4


def _variant(tmp_path, old: str, new: str) -> str:
    # the corpus beside the variant: a model reads data files inside its own folder tree only
    (tmp_path / "corpus.txt").write_bytes(CORPUS.read_bytes())
    text = (MODELS / "word2vec.nn").read_text().replace('"data/corpus.txt"', '"corpus.txt"')
    assert old in text
    path = tmp_path / "w2v.nn"
    path.write_text(text.replace(old, new, 1))
    return str(path)


def test_vocabulary_size_is_checked_against_the_corpus(tmp_path):
    model = nngraph.load(_variant(tmp_path, "words = embedding[48, 16]", "words = embedding[40, 16]"))
    with pytest.raises(NNError) as info:
        model.train(seed=0, progress=False)
    err = info.value
    assert err.message.endswith("has 48 distinct words, but the table `words.table` that `centre` indexes "
                                "has 40 rows (float32[40, 16])")
    lines = Path(err.span.file).read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "skipgram(" in text)
    assert (err.span.line, err.span.column) == (line, lines[line - 1].index("skipgram(") + 1)
    assert err.hint == "make the model's vocabulary size 48, one row per word"


def test_negatives_shape_and_settings_are_checked(tmp_path):
    model = nngraph.load(_variant(tmp_path, "input negatives: [N, 5] int", "input negatives: [N, 3] int"))
    with pytest.raises(NNError, match=r"input `negatives` is int64\[N, 3\], but this skipgram\(...\) source "
                                      r"gives \[N, 5\] int"):
        model.load_data()
    with pytest.raises(NNError, match="skipgram\\(...\\) has no setting `windows`") as info:
        nngraph.load(_variant(tmp_path, "window = 2", "windows = 2"))
    assert info.value.hint == "did you mean `window`?"


def test_models_without_a_corpus_have_no_neighbours():
    model = nngraph.load(str(MODELS / "iris.nn"))
    with pytest.raises(NNError, match="is not trained on a text corpus"):
        model.neighbours(model.init(0), "cat")
