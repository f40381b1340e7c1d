"""Metrics against hand-computed cases, ties included."""

import numpy as np
import pytest

from clasp_cli.metrics import ranks, retrieval_scores


def test_perfect_retrieval():
    s = np.eye(4)
    sc = retrieval_scores(s)
    assert (sc.hits_at_1, sc.mrr, sc.mean_rank) == (1.0, 1.0, 1.0)


def test_hand_computed_ranks():
    s = np.array([
        [0.9, 0.1, 0.2],  # target 0 is best -> rank 1
        [0.8, 0.5, 0.6],  # target 1 has two above -> rank 3
        [0.1, 0.7, 0.3],  # target 2 has one above -> rank 2
    ])
    assert ranks(s).tolist() == [1, 3, 2]
    sc = retrieval_scores(s)
    assert sc.hits_at_1 == pytest.approx(1 / 3)
    assert sc.mrr == pytest.approx((1 + 1 / 3 + 1 / 2) / 3)
    assert sc.mean_rank == pytest.approx(2.0)
    assert sc.hits_at_5 == 1.0


def test_a_tie_takes_a_random_place_among_its_equals():
    s = np.array([[0.5, 0.5, 0.5], [0.2, 0.2, 0.9], [0.1, 0.1, 0.9]])
    r = ranks(s)
    assert 1 <= r[0] <= 3 and r[1] in (2, 3) and r[2] == 1


def test_ties_are_broken_the_same_way_every_run():
    s = np.zeros((50, 50))
    assert ranks(s).tolist() == ranks(s).tolist()


def test_scoring_every_candidate_alike_gets_chance_level_hits():
    # The old rule (ties in the query's favour) gave this degenerate system HITS@1 = 1.
    sc = retrieval_scores(np.zeros((2000, 10)), np.zeros(2000, dtype=int))
    assert sc.hits_at_1 == pytest.approx(0.1, abs=0.02) and sc.mean_rank == pytest.approx(5.5, abs=0.2)


def test_explicit_targets():
    s = np.array([[0.1, 0.9], [0.3, 0.2]])
    assert ranks(s, np.array([1, 0])).tolist() == [1, 1]


def test_as_dict_uses_the_report_keys():
    d = retrieval_scores(np.eye(2)).as_dict()
    assert set(d) == {"n", "hits@1", "hits@5", "hits@10", "mrr", "meanr"}


def test_a_target_scored_nan_ranks_last_not_first():
    from clasp_cli.metrics import ranks

    s = np.array([[np.nan, np.nan, np.nan], [0.1, 0.9, np.nan], [0.2, 0.1, 0.5]])
    assert ranks(s).tolist() == [3, 1, 1]
