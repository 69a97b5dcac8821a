"""When a paired difference between rows counts as larger than the seed-to-seed spread."""
from signbest.eval.seeds import paired


def results(row: str, top1: dict[int, float]) -> list[dict]:
    return [{"row": row, "seed": s, "label": row, "val": {"per_instance_top1": v}} for s, v in top1.items()]


def test_a_difference_beyond_each_rows_spread_with_one_sign_is_clear():
    res = results("best", {0: 70.0, 1: 72.0, 2: 71.0}) + results("scratch", {0: 40.0, 1: 45.0, 2: 43.0})
    d = paired(res, "scratch")["best"]
    assert d["diffs"] == [30.0, 27.0, 28.0] and d["clear"]


def test_equal_small_differences_of_two_seeds_are_not_clear():
    # Both seeds +0.6: the differences' own std is 0, but each row's seeds spread over 2-5 points.
    res = results("best", {0: 70.0, 1: 72.0, 2: 62.0}) + results("any", {0: 70.6, 1: 72.6})
    d = paired(res, "best")["any"]
    assert d["std"] == 0.0 and not d["clear"]


def test_mixed_signs_or_one_seed_are_never_clear():
    res = results("best", {0: 70.0, 1: 72.0}) + results("a", {0: 90.0, 1: 65.0}) + results("b", {0: 99.0})
    diffs = paired(res, "best")
    assert not diffs["a"]["clear"] and not diffs["b"]["clear"]
    assert paired(res, "missing") == {}
