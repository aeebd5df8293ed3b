"""topk_metrics against torch-rechub's own function, and match_evaluation against a by-hand
evaluation."""

from __future__ import annotations

import numpy as np
import pytest

import vecindex

from conftest import brute_force, clustered, need


def test_the_originals_self_check():
    y_pred = {"0": [0, 1], "1": [0, 1], "2": [2, 3]}
    y_true = {"0": [1, 2], "1": [0, 1, 2], "2": [2, 3]}
    out = vecindex.topk_metrics(y_true, y_pred, (1, 2))
    assert list(out) == ["NDCG", "MRR", "Recall", "Hit", "Precision"]
    assert out["NDCG"][1] == "NDCG@2: 0.7956"
    assert out["MRR"][1] == "MRR@2: 0.8333"
    assert out["Recall"][1] == "Recall@2: 0.7222"
    assert out["Hit"][1] == "Hit@2: 0.7143"
    assert out["Precision"][1] == "Precision@2: 0.8333"
    assert out.values["PooledRecall@2"] == pytest.approx(5 / 7)
    assert out.values["HitRate@2"] == 1.0
    assert out.users == 3 and out.users_without_truth == 0


@pytest.mark.parametrize("seed", range(5))
def test_same_strings_as_torch_rechub_where_it_is_well_defined(seed):
    """Random users (no repeated predictions, no empty truth, lists at least k long: the cases
    the original gets right) give exactly the original's strings."""
    need("torch_rechub")
    from torch_rechub.basic.metric import topk_metrics as original

    rng = np.random.default_rng(seed)
    y_true, y_pred = {}, {}
    for u in range(200):
        y_true[f"user{u}"] = [int(i) for i in rng.choice(60, size=rng.integers(1, 8), replace=False)]
        y_pred[f"user{u}"] = rng.choice(60, size=20, replace=False)
    ks = [1, 5, 10, 20]
    ours = vecindex.topk_metrics(y_true, y_pred, ks)
    theirs = original(y_true, y_pred, ks)
    assert dict(ours) == dict(theirs)


def test_fixed_defects():
    # a repeated prediction counts once; -1 (empty slot) is never a hit; short lists are fine
    out = vecindex.topk_metrics({"u": [7]}, {"u": [7, 7, -1]}, [5])
    assert out.values["Recall@5"] == 1.0 and out.values["NDCG@5"] == 1.0
    out = vecindex.topk_metrics({"u": [-1], "v": [3]}, {"u": [-1], "v": [3]}, [1])
    assert out.values["Recall@1"] == 0.5
    # users with empty truth are left out of the averages and counted
    out = vecindex.topk_metrics({"u": [1], "v": []}, {"u": [1], "v": [2]}, [1])
    assert out.values["Recall@1"] == 1.0 and out.users_without_truth == 1
    with pytest.raises(ValueError, match="tuple or list"):
        vecindex.topk_metrics({"u": [1]}, {"u": [1]}, 5)
    with pytest.raises(ValueError):
        vecindex.topk_metrics({"u": [1]}, {"u": [1]}, [0])
    with pytest.raises(KeyError, match="'u'"):
        vecindex.topk_metrics({"u": [1]}, {"v": [1]}, [1])


def test_match_evaluation_against_a_by_hand_evaluation():
    rng = np.random.default_rng(3)
    items = clustered(500, 16, 8)
    users = clustered(60, 16, 9)
    encoded_items = np.arange(500) + 1  # the encoded movie ids of item rows (0 is padding)
    encoded_users = np.arange(60) + 1
    user_map = np.array([f"U{i}" for i in range(61)], dtype=object)
    item_map = np.array([f"M{i}" for i in range(501)], dtype=object)
    test_items = rng.integers(1, 501, size=60)
    test_user = {"user_id": encoded_users, "movie_id": test_items}
    all_item = {"movie_id": encoded_items}

    res = vecindex.match_evaluation(
        users, items, test_user, all_item, raw_id_maps=(user_map, item_map), topk=10, metric="IP"
    )
    ids, _ = brute_force(items, users, 10, "IP")
    y_true = {user_map[u]: [item_map[i]] for u, i in zip(encoded_users, test_items)}
    y_pred = {user_map[u]: [item_map[encoded_items[r]] for r in row] for u, row in zip(encoded_users, ids)}
    assert res["predictions"] == y_pred
    assert dict(res["metrics"]) == dict(vecindex.topk_metrics(y_true, y_pred, [10]))
    assert res["recall_vs_exact"] == 1.0  # Flat is exact

    # an approximate index: recall against exact search is reported
    res = vecindex.match_evaluation(
        users, items, test_user, all_item, raw_id_maps=(user_map, item_map), topk=10,
        model="annoy", n_trees=2, searchk=20,
    )
    assert 0.0 < res["recall_vs_exact"] < 1.0
    assert res["exact_metrics"] is not None

    # multi-interest users (users, interests, d): the best distinct items over all interests
    multi = np.stack([users, users[::-1]], axis=1)
    res = vecindex.match_evaluation(multi, items, test_user, all_item, topk=5, metric="IP")
    a, sa = brute_force(items, users, 5, "IP")
    b, sb = brute_force(items, users[::-1], 5, "IP")
    for u in range(60):
        best = sorted(zip(np.r_[sa[u], sb[u]], np.r_[a[u], b[u]]), key=lambda t: -t[0])
        want, seen = [], set()
        for _, i in best:
            if i not in seen:
                seen.add(i)
                want.append(int(encoded_items[i]))
        assert res["predictions"][int(encoded_users[u])] == want[:5]
