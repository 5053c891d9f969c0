import json
import math

import pandas as pd
import pytest

from trajfusion.io import InputError
from trajfusion.verify import compute_stats, verify_frame
from trajfusion.verify.stats import shannon_entropy


def _row(pid, status, correct=False, group=None, source="gsm8k"):
    return {"problem_id": pid, "source": source, "status": status, "correct": correct, "answer_group": group}


def _table():
    rows = [
        # p1: K=6, 2 correct, 4 incorrect in groups 7 (x2), 8, 9; one filtered, one timeout
        _row("p1", "ok", True), _row("p1", "ok", True),
        _row("p1", "ok", group="7"), _row("p1", "ok", group="7"), _row("p1", "ok", group="8"),
        _row("p1", "ok", group="9"), _row("p1", "filtered:repetition"), _row("p1", "timeout"),
        # p0: every response filtered or failed -> K = 0
        _row("p0", "filtered:no_answer", source="math"), _row("p0", "error", source="math"),
        # p2: all correct
        _row("p2", "ok", True), _row("p2", "ok", True),
    ]
    return pd.DataFrame(rows)


def test_hand_built_table():
    stats = compute_stats(_table()).set_index("problem_id")
    assert list(stats.index) == ["p0", "p1", "p2"]
    p1 = stats.loc["p1"]
    assert (p1["K"], p1["n_correct"], p1["n_incorrect"]) == (6, 2, 4)
    assert p1["error_rate"] == pytest.approx(4 / 6)
    assert p1["n_distinct_incorrect"] == 3
    expected = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert p1["entropy"] == pytest.approx(expected)
    assert (p1["n_filtered"], p1["n_timeout"], p1["n_error"]) == (1, 1, 0)
    assert json.loads(p1["answer_groups"]) == [{"answer": "7", "size": 2}, {"answer": "8", "size": 1},
                                               {"answer": "9", "size": 1}]
    p0 = stats.loc["p0"]
    assert p0["K"] == 0 and math.isnan(p0["error_rate"]) and math.isnan(p0["entropy"])
    assert (p0["n_filtered"], p0["n_error"], p0["source"]) == (1, 1, "math")
    p2 = stats.loc["p2"]
    assert (p2["error_rate"], p2["entropy"], p2["n_distinct_incorrect"]) == (0.0, 0.0, 0)
    assert json.loads(p2["answer_groups"]) == []


def test_column_types():
    stats = compute_stats(_table())
    assert stats["K"].dtype == "int64" and stats["error_rate"].dtype == "float64"
    assert list(stats.columns)[:10] == ["problem_id", "source", "K", "n_correct", "n_incorrect", "error_rate",
                                        "n_distinct_incorrect", "entropy", "n_filtered", "n_timeout"]


def test_table_without_source_column():
    stats = compute_stats(_table().drop(columns=["source"]))
    assert stats["source"].tolist() == [None, None, None]


def test_entropy():
    assert shannon_entropy([5]) == 0.0
    assert shannon_entropy([1, 1]) == pytest.approx(math.log(2))
    assert shannon_entropy([]) == 0.0


def test_merged_groups_from_the_verifier():
    responses = ["\\boxed{0.5}", "\\boxed{\\frac{1}{2}}", "\\boxed{\\frac{1}{2}}", "\\boxed{4}", "\\boxed{3}"]
    verified = verify_frame(pd.DataFrame({"problem_id": "q", "gold": "3", "response": responses}), workers=0)
    stats = compute_stats(verified).iloc[0]
    assert (stats["K"], stats["n_incorrect"], stats["n_distinct_incorrect"]) == (5, 4, 2)
    assert stats["error_rate"] == pytest.approx(0.8)
    assert stats["entropy"] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert json.loads(stats["answer_groups"]) == [{"answer": "\\frac{1}{2}", "size": 3},
                                                  {"answer": "4", "size": 1}]


def test_bad_tables():
    with pytest.raises(InputError, match="missing required column"):
        compute_stats(_table().drop(columns=["answer_group"]))
    bad = _table()
    bad.loc[3, "status"] = "weird"
    with pytest.raises(InputError, match=r"^input: record 4 \(problem_id='p1'\): field 'status' must be one of "
                                         r"\['ok', .*\], got 'weird'$"):
        compute_stats(bad)
    bad = _table()
    bad.loc[2, "answer_group"] = None
    with pytest.raises(InputError, match=r"record 3 \(problem_id='p1'\): field 'answer_group' breaks rule "
                                         r"'incorrect-has-group'"):
        compute_stats(bad)
