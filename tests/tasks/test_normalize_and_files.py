"""Input normalisation kept with the task, data files in three formats, the unknown token."""

import json

import pytest
import torch

from attnkit.tasks import CharVocab, Normalizer, PairTask, from_config, read_pairs, times
from attnkit.tasks.normalize import steps_for


@pytest.mark.property
def test_normalizer_steps():
    n = Normalizer(["casefold", "spaces", "nfkc", "quotes"])
    assert n.steps == ["nfkc", "quotes", "casefold", "spaces"]  # one fixed order
    assert n("  Seven\tO’Clock  PM ") == "seven o'clock pm"
    assert n("１９：３０") == "19:30"  # full-width forms, NFKC
    assert Normalizer()("A  b") == "A  b"
    with pytest.raises(ValueError, match="unknown normalisation steps"):
        Normalizer(["lower"])


@pytest.mark.property
def test_file_data_gets_only_the_steps_its_inputs_already_satisfy():
    assert "casefold" in steps_for(["7:45 pm", "noon"])
    assert "casefold" not in steps_for(["Paris", "paris"])  # case may carry meaning
    assert "spaces" not in steps_for(["a  b"])
    task = PairTask.from_pairs([("abc", "x"), ("bca", "y")])
    assert task.normalize("ABC") == "abc" and task.input_problem("  ABC ") is None


@pytest.mark.property
def test_normalisation_travels_with_the_task_and_applies_everywhere():
    task = times.TimesTask.from_pairs(times.generate(3000, 0))
    again = from_config(json.loads(json.dumps(task.to_config())))
    assert again.normalizer.steps == task.normalizer.steps == list(times.TimesTask.normalization)
    assert again.input_problem("QUARTER  TO SIX PM") is None
    data = again.dataset([("Quarter To Six PM", "17:45")])
    assert again.src_vocab.decode(data.src[0].tolist()) == "quarter to six pm"
    # a checkpoint of an older version, without the key, reads inputs as they are
    old = {k: v for k, v in task.to_config().items() if k not in ("normalize", "unknown_token")}
    assert from_config(old).normalizer.steps == []


@pytest.mark.property
def test_unknown_token_reads_any_character_and_is_seen_in_training():
    pairs = [(f"{i} ab", str(i)) for i in range(200)]
    task = PairTask.from_pairs(pairs, unknown_token=True)
    assert task.input_problem("7 a€b") is None
    unk = task.src_vocab.unk_id
    assert task.src_vocab.encode("€") == [unk]
    assert (task.dataset(pairs, train=True).src == unk).any()
    assert not (task.dataset(pairs).src == unk).any()  # only training data is perturbed
    assert from_config(task.to_config()).src_vocab.unk_id == unk
    plain = PairTask.from_pairs(pairs)
    assert "never saw" in plain.input_problem("7 a€b")


@pytest.mark.property
def test_vocab_with_unknown_keeps_ids_of_specials():
    v = CharVocab("ab", unk=True)
    assert (v.pad_id, v.bos_id, v.eos_id, v.unk_id) == (0, 1, 2, 3)
    assert v.decode([4, 3, 5, 2, 4]) == "ab" and v.to_list() == ["a", "b"]


PAIRS = [("six fifty five am", "06:55"), ("t11:36", "11:36"), ('say "hi", ok', "x,y")]


@pytest.mark.bad_input
@pytest.mark.parametrize("suffix", [".tsv", ".csv", ".json", ".txt"])
def test_read_pairs_in_every_format(tmp_path, suffix):
    path = tmp_path / f"pairs{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps([list(p) for p in PAIRS]))
    elif suffix == ".csv":
        import csv

        with path.open("w", newline="") as f:
            csv.writer(f).writerows([("input", "target"), *PAIRS])
    else:  # TSV, and content sniffing for an unknown extension
        path.write_text("".join(f"{a}\t{b}\n" for a, b in PAIRS))
    assert read_pairs(path) == PAIRS


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "name,text,message",
    [
        ("a.json", '[["a", "b"], ["c"]]', r"a.json: item 1 is not an \[input, target\] pair"),
        ("a.json", '[["a", "b"],', r"a.json:1: not valid JSON"),
        ("a.json", '{"a": "b"}', "expected a JSON list"),
        ("a.csv", "a,b\nc,d,e\n", "a.csv:2: expected two columns"),
        ("a.csv", 'a,b\n"c,d\n', "a.csv"),
        ("a.tsv", "a\tb\nc d\n", "a.tsv:2: expected 'input<TAB>target'"),
        ("a.csv", "", "holds no pairs"),
    ],
)
def test_malformed_files_name_the_file_and_line(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_pairs(path)


def test_a_csv_first_row_is_data_unless_it_names_the_columns(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("noon,12:00\nmidnight,00:00\n")
    assert read_pairs(path)[0] == ("noon", "12:00")


@pytest.mark.property
def test_predict_weights_have_one_column_per_normalised_character():
    torch.manual_seed(0)
    from attnkit.models import PRESETS, Seq2Seq, Seq2SeqConfig

    task = times.TimesTask.from_pairs(times.generate(300, 0))
    model = Seq2Seq(Seq2SeqConfig(len(task.src_vocab), len(task.tgt_vocab), **PRESETS["tiny"]))
    ((_, weights),) = task.predict(model, ["  Noon  "])
    assert weights.shape[1] == len("noon")
