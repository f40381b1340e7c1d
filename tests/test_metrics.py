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


def test_ties_count_in_the_querys_favour():
    # Only strictly higher similarities push the target down.
    s = np.array([[0.5, 0.5, 0.5], [0.2, 0.2, 0.9], [0.0, 0.0, 0.0]])
    assert ranks(s).tolist() == [1, 2, 1]


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
