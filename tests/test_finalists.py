"""Choosing finalists from a study's table, the rank agreement between search and final accuracy,
and the winner policies: on tables the tests write, with hand-worked answers."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import ROOT, compose_config

from compress.core import metrics as M
from compress.core.errors import ConfigError
from compress.core.options import FAMILIES
from compress.finalize import selection as finalists
from compress.finalize.winner_policy import pick_finalist, shipped_seed


def trials_table(rows, float32: tuple = ()):
    """(trial, val_accuracy, size_bytes, latency_ms[, status]) -> a study table of cnn trials whose
    parameters make an int8 file of size_bytes, or, for the trials in `float32`, a quarter of it."""
    out = []
    for row in rows:
        trial, val, size, latency, *status = row
        params = (size / 4 if trial in float32 else size) - FAMILIES["cnn"].int8_overhead_bytes
        out.append({"study": "s", "trial": trial, "status": status[0] if status else "FINISHED",
                    "student.arch": "cnn", M.PARAMS: params,
                    M.VAL_ACCURACY: val, M.TEST_ACCURACY: val - 0.001, M.SIZE_BYTES: size, M.LATENCY_MS: latency})
    return pd.DataFrame(out)


def test_selection_keeps_the_best_front_trial_of_each_size_class_then_spreads_over_size():
    table = trials_table([
        (0, 0.80, 10_000, 1.0), (1, 0.85, 15_000, 1.0), (2, 0.84, 16_000, 0.5),  # 2: on the front by latency
        (3, 0.88, 30_000, 1.0), (4, 0.90, 60_000, 1.0), (5, 0.89, 64_000, 2.0),  # 5 is dominated by 4
        (6, 0.91, 200_000, 1.0), (7, 0.915, 700_000, 1.0), (8, 0.99, 5_000, 0.1, "FAILED"),
    ])
    chosen = finalists.select(table, 4, [16_384, 65_536])
    trials = chosen["trial"].tolist()
    assert 1 in trials and 4 in trials  # most accurate at or under 16 KB and under 64 KB
    assert 5 not in trials and 8 not in trials  # dominated; failed
    assert len(trials) == 4 and trials == sorted(trials, key=lambda t: table.set_index("trial").loc[t, M.SIZE_BYTES])
    assert {0, 7} <= set(trials)  # the two free slots go to the ends of the front's size range
    assert finalists.select(table, 1, [16_384, 65_536])["trial"].tolist() == [1]


def test_a_latency_budget_adds_each_size_class_s_most_accurate_recipe_within_it():
    # 4 is the most accurate under 64 KB but runs at 0.08 of the teacher's latency; 3 is within 0.05
    table = trials_table([(0, 0.80, 10_000, 1.0), (1, 0.85, 15_000, 1.0), (3, 0.89, 50_000, 0.5),
                          (4, 0.90, 60_000, 1.0), (5, 0.91, 200_000, 1.0)])
    table[M.LATENCY_RATIO] = table[M.LATENCY_MS] * 0.08
    assert finalists.select(table, 2, [16_384, 65_536])["trial"].tolist() == [1, 4]
    assert finalists.select(table, 3, [16_384, 65_536], max_latency_ratio=0.05)["trial"].tolist() == [1, 3, 4]
    # nothing within the budget under 16 KB: that class keeps its one finalist; none at all: the same as no budget
    assert finalists.select(table, 3, [16_384], max_latency_ratio=0.01)["trial"].tolist() == \
        finalists.select(table, 3, [16_384])["trial"].tolist()


def test_size_classes_read_the_int8_file_a_recipe_ships_not_its_search_file():
    # 3's search file is float32 (240 KB) but its recipe ships as about 60 KB of int8: it is the most
    # accurate recipe that fits 64 KB; 2 (60 KB in the search) would take the class by the search file
    table = trials_table([(0, 0.80, 10_000, 1.0), (1, 0.85, 15_000, 1.0), (2, 0.88, 60_000, 0.5),
                          (3, 0.91, 240_000, 1.0), (4, 0.93, 500_000, 2.0)], float32=(3,))
    chosen = finalists.select(table, 2, [16_384, 65_536])
    assert chosen["trial"].tolist() == [1, 3]
    assert chosen[finalists.SHIP_ESTIMATE].tolist() == [15_000, 60_000]
    dsconv = finalists.with_ship_estimate(table.assign(**{"student.arch": "dsconv"}))
    assert (dsconv[finalists.SHIP_ESTIMATE] - table[M.PARAMS]).eq(FAMILIES["dsconv"].int8_overhead_bytes).all()


def test_selection_leaves_out_recipes_the_search_scored_below_the_floor():
    table = trials_table([(0, 0.35, 9_000, 0.5), (1, 0.82, 12_000, 1.0), (2, 0.88, 40_000, 1.0)])
    assert finalists.select(table, 6, [16_384])["trial"].tolist() == [0, 1, 2]  # 0: smallest, on the front
    assert finalists.select(table, 6, [16_384], min_accuracy=0.7)["trial"].tolist() == [1, 2]


def test_pruned_recipes_prune_patiently_and_unpruned_ones_keep_their_hash(small_cfg):
    from compress.finalize.recipe import finalist_config, recipe_hash

    cfg = small_cfg
    row = {"trial": 1, "prune.sparsity": 0.0}
    before = recipe_hash(finalist_config(cfg, row, 0))
    cfg.finalize.prune_epochs = cfg.finalize.prune_epochs + 3
    assert recipe_hash(finalist_config(cfg, row, 0)) == before
    pruned = finalist_config(cfg, {"trial": 1, "prune.sparsity": 0.9}, 0)
    assert pruned.prune.epochs == cfg.finalize.prune_epochs and pruned.prune.sparsity == 0.9


def test_recipes_that_fit_the_smallest_size_class_train_longer(small_cfg):
    from compress.finalize.recipe import finalist_config, recipe_hash

    cfg = small_cfg
    cfg.finalize.size_classes = [16_384, 65_536]
    cfg.finalize.epochs, cfg.finalize.small_class_epochs = 30, 60
    tiny = {"trial": 1, "prune.sparsity": 0.0, "student.arch": "cnn", M.PARAMS: 16_384 - FAMILIES["cnn"].int8_overhead_bytes}
    just_over = {**tiny, M.PARAMS: tiny[M.PARAMS] + 1}
    dsconv = {**tiny, "student.arch": "dsconv"}  # the same parameters carry dsconv's larger overhead
    assert finalist_config(cfg, tiny, 0).distill.epochs == 60
    assert finalist_config(cfg, just_over, 0).distill.epochs == 30
    assert finalist_config(cfg, dsconv, 0).distill.epochs == 30
    assert finalist_config(cfg, {"trial": 1, "prune.sparsity": 0.0}, 0).distill.epochs == 30  # no parameter count
    # the recipe is what trained: 60 epochs hash apart from 30
    assert recipe_hash(finalist_config(cfg, tiny, 0)) != recipe_hash(finalist_config(cfg, just_over, 0))


def test_a_recipe_read_from_the_committed_table_is_the_recipe_read_from_mlflow(small_cfg):
    from compress.finalize.recipe import finalist_config, recipe_hash

    from_mlflow = {"trial": 3, "distill.temperature": 1.6909127403, "student.width": 0.11143318, "prune.sparsity": 0.25}
    from_table = {k: float(f"{v:.6g}") for k, v in from_mlflow.items()}  # analysis.table.write's precision
    assert from_table != from_mlflow
    assert recipe_hash(finalist_config(small_cfg, from_table, 0)) == recipe_hash(finalist_config(small_cfg, from_mlflow, 0))
    other = {**from_mlflow, "distill.temperature": 1.7}
    assert recipe_hash(finalist_config(small_cfg, other, 0)) != recipe_hash(finalist_config(small_cfg, from_mlflow, 0))


def test_selection_of_an_empty_study_is_empty_and_by_hand_refuses_unknown_trials():
    assert finalists.select(trials_table([(0, 0.5, 1, 1, "FAILED")]), 6, [16_384]).empty
    table = trials_table([(0, 0.8, 10_000, 1.0), (1, 0.9, 20_000, 1.0, "FAILED")])
    assert finalists.by_hand(table, [0])["trial"].tolist() == [0]
    with pytest.raises(ConfigError, match=r"trial\(s\) \[1, 9\]"):
        finalists.by_hand(table, [0, 1, 9])


def test_spearman_matches_hand_worked_values():
    assert finalists.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert finalists.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks (1,2,3,4) vs (1,3,2,4): 1 - 6*sum(d^2)/(n(n^2-1)) = 1 - 6*2/60 = 0.8
    assert finalists.spearman([0.1, 0.2, 0.3, 0.4], [0.5, 0.7, 0.6, 0.8]) == pytest.approx(0.8)
    assert math.isnan(finalists.spearman([1, 2], [1, 2]))  # too few pairs to say anything


def test_rank_agreement_reports_n_per_size_class():
    rows = pd.DataFrame({"trial": [1, 2, 3, 4, 5], "seed": [0] * 5,
                         "search_val_accuracy": [0.80, 0.85, 0.88, 0.90, 0.91],
                         M.VAL_ACCURACY: [0.86, 0.88, 0.90, 0.925, 0.92],
                         "search_size_bytes": [9_000, 14_000, 30_000, 50_000, 120_000]})
    out = finalists.rank_agreement(rows, [16_384, 65_536])
    assert out["overall"]["n"] == 5 and out["overall"]["rho"] == pytest.approx(0.9)
    assert out["<= 16384 B"]["n"] == 2 and math.isnan(out["<= 16384 B"]["rho"])
    assert out["<= 65536 B"]["n"] == 2 and out["> 65536 B"]["n"] == 1
    # classed by the shipped int8 file where the table has it: trial 5's 120 KB search file ships at 60 KB
    shipped = finalists.rank_agreement(rows.assign(**{M.SHIP_SIZE_BYTES: [9_000, 14_000, 30_000, 50_000, 60_000]}),
                                       [16_384, 65_536])
    assert shipped["<= 65536 B"]["n"] == 3 and shipped["> 65536 B"]["n"] == 0


def test_finalists_table_appends_replaces_same_key_and_resumes(tmp_path):
    path = tmp_path / "finalists.csv"
    finalists.append(path, {"study": "s", "trial": 3, "seed": 0, "recipe": "abc", "x": 1})
    finalists.append(path, {"study": "s", "trial": 4, "seed": 0, "recipe": "abc", "x": 2})
    table = finalists.append(path, {"study": "s", "trial": 3, "seed": 0, "recipe": "abc", "x": 3})
    assert len(table) == 2 and table.set_index("trial").loc[3, "x"] == 3
    assert finalists.done(finalists.read(path), "s", 4, 0, "abc")
    assert not finalists.done(finalists.read(path), "s", 4, 1, "abc")  # another seed
    assert not finalists.done(finalists.read(path), "s", 4, 0, "new")  # another recipe: trained again, kept beside


def test_a_count_read_back_as_a_float_keeps_every_digit_in_the_table(tmp_path):
    path = tmp_path / "finalists.csv"
    finalists.append(path, {"study": "s", "trial": 3, "seed": 0, "recipe": "abc", M.MACS: 1_956_736, "w": 0.251365})
    # a row copied from another table, where a missing value had made its counts floats
    table = finalists.append(path, {"study": "s", "trial": 4, "seed": 0, "recipe": "abc", M.MACS: 3_847_878.0,
                                    "w": 0.5})
    assert list(table[M.MACS]) == [1_956_736, 3_847_878] and "3847878" in path.read_text()
    assert "1956740" not in path.read_text() and list(table["w"]) == [0.251365, 0.5]


def ship_table():
    return pd.DataFrame({"trial": [1, 2, 3, 4], "seed": [0] * 4,
                         M.SHIP_VAL_ACCURACY: [0.905, 0.921, 0.926, 0.931],
                         M.SHIP_SIZE_BYTES: [15_000, 40_000, 60_000, 90_000],
                         M.SHIP_LATENCY_RATIO: [0.010, 0.030, 0.054, 0.040]})


def test_max_bytes_policy_takes_the_most_accurate_file_within_the_budget():
    row, why = pick_finalist(ship_table(), "max_bytes", 65_536, 0.005, 0.9268)
    assert int(row["trial"]) == 3 and "65,536" in why
    row, _ = pick_finalist(ship_table(), "max_bytes", 16_384, 0.005, 0.9268)
    assert int(row["trial"]) == 1
    assert pick_finalist(ship_table(), "max_bytes", 10_000, 0.005, 0.9268)[0] is None


def test_a_latency_budget_leaves_out_the_slower_files_under_either_policy():
    # trial 3 is the most accurate within 64 KB, but runs at 0.054 of the teacher's latency: 18.5x, not 20x
    row, why = pick_finalist(ship_table(), "max_bytes", 65_536, 0.005, 0.9268, max_latency_ratio=0.05)
    assert int(row["trial"]) == 2 and "at most 0.05 of the teacher's latency (20x faster)" in why
    assert int(pick_finalist(ship_table(), "max_bytes", 65_536, 0.005, 0.9268, max_latency_ratio=0.06)[0]["trial"]) == 3
    none, why = pick_finalist(ship_table(), "max_bytes", 65_536, 0.005, 0.9268, max_latency_ratio=0.005)
    assert none is None and "at most 0.005 of the teacher's latency (200x faster)" in why
    row, _ = pick_finalist(ship_table(), "smallest_within", 65_536, 0.003, 0.9268, max_latency_ratio=0.05)
    assert int(row["trial"]) == 4  # trial 3 is within 0.3 points but too slow
    seeds = ship_table().assign(trial=3, seed=[0, 1, 2, 3], **{M.SHIP_SIZE_BYTES: 60_000})
    assert int(shipped_seed(seeds, "max_bytes", 65_536, 0.005, 0.9268, 0.05)["seed"]) == 3  # 0.931 at 0.040


def test_the_latency_budget_follows_the_instruction_set_each_file_was_measured_with():
    from compress.finalize.latency_budget import LatencyBudget

    budget = LatencyBudget(0.05, (("avx2", 0.10),))
    # trial 3 (the most accurate within 64 KB) ran at 0.054 of the teacher's latency: over 0.05 on a VNNI CPU ...
    vnni = ship_table().assign(isa="avx512_vnni")
    row, why = pick_finalist(vnni, "max_bytes", 65_536, 0.005, 0.9268, max_latency_ratio=budget)
    assert int(row["trial"]) == 2 and "at most 0.05 of the teacher's latency (20x faster) (0.1 on avx2)" in why
    # ... within 0.10 where it was measured on an AVX2-only CPU; a row without a machine takes the default
    avx2 = ship_table().assign(isa="avx2")
    assert int(pick_finalist(avx2, "max_bytes", 65_536, 0.005, 0.9268, budget)[0]["trial"]) == 3
    assert int(pick_finalist(ship_table(), "max_bytes", 65_536, 0.005, 0.9268, budget)[0]["trial"]) == 2


def test_smallest_within_policy_takes_the_smallest_file_close_to_the_teacher():
    row, why = pick_finalist(ship_table(), "smallest_within", 65_536, 0.006, 0.9268)
    assert int(row["trial"]) == 2 and "0.6 points" in why  # 0.921 >= 0.9268 - 0.006
    assert pick_finalist(ship_table(), "smallest_within", 65_536, 0.0, 0.94)[0] is None
    with pytest.raises(ValueError, match="allowed max_bytes, smallest_within"):
        pick_finalist(ship_table(), "knee", 65_536, 0.0, 0.9)


def test_candidates_come_from_the_studys_own_table_when_the_named_one_holds_another_study(tmp_path, small_cfg):
    """A fresh clone: no MLflow runs; report/trials.csv may still hold the previous study."""
    from compress.finalize.paths import Paths
    from compress.finalize.plan import candidate_table
    from compress.tracking import trials_table

    small_cfg.tracking.enabled = False
    older, own = tmp_path / "trials.csv", tmp_path / "trials_new.csv"
    trials_table.write(trials_table_of("old", [0, 1]), older)
    trials_table.write(trials_table_of("new", [5, 6, 7]), own)
    paths = Paths(older, tmp_path / "f.csv", tmp_path / "f.json", tmp_path / "w", tmp_path / "work", own)
    assert candidate_table(small_cfg, "new", paths)["trial"].tolist() == [5, 6, 7]
    assert candidate_table(small_cfg, "old", paths)["trial"].tolist() == [0, 1]
    with pytest.raises(ConfigError, match="no trial runs in MLflow and none in"):
        candidate_table(small_cfg, "third", paths)


def trials_table_of(study: str, numbers: list[int]) -> pd.DataFrame:
    table = trials_table([(n, 0.8, 10_000 + n, 1.0) for n in numbers])
    return table.assign(study=study, curve_val="", curve_train="")


def _append_rows(path, first, n):
    from compress.finalize import selection as finalists

    for trial in range(first, first + n):
        finalists.append(path, {"study": "s", "trial": trial, "seed": 0, "recipe": "r", "val_accuracy": 0.9})


@pytest.mark.slow
def test_two_processes_appending_side_by_side_lose_no_row(tmp_path):
    import multiprocessing

    from compress.finalize import selection as finalists

    path = tmp_path / "finalists.csv"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_rows, args=(path, first, 25)) for first in (0, 100)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    assert sorted(finalists.read(path)["trial"]) == [*range(25), *range(100, 125)]


def test_side_by_side_groups_balance_the_cost_and_keep_every_trial_once():
    from compress.finalize.workers import plan

    groups = plan({1: 10.0, 2: 9.0, 3: 5.0, 4: 4.0, 5: 1.0}, 2)
    assert sorted(t for g in groups for t in g) == [1, 2, 3, 4, 5]
    loads = sorted(sum({1: 10.0, 2: 9.0, 3: 5.0, 4: 4.0, 5: 1.0}[t] for t in g) for g in groups)
    assert loads == [14.0, 15.0]  # largest first, each to the lighter group: {1, 4, 5} and {2, 3}
    assert plan({7: 1.0}, 3) == [[7]]  # no empty processes


def test_side_by_side_runs_one_seed_s_finalists_by_cost_and_extra_seeds_one_process_a_seed():
    from compress.finalize.workers import batches

    rows = {t: {"trial": t, M.MACS: 1_000, M.TIME_TRAIN_S: cost, "distill.epochs": 1}
            for t, cost in ((3, 30.0), (7, 10.0), (9, 15.0))}
    one_seed = batches([(rows[3], 0), (rows[7], 0), (rows[9], 0)], lambda row: 2, 2)
    assert one_seed == [([3], 0), ([9, 7], 0)]  # by cost: 60 against 20 + 30
    seeds = batches([(rows[3], 1), (rows[7], 2), (rows[3], 2), (rows[7], 1)], lambda row: 2, 2)
    assert seeds == [([3, 7], 1), ([3, 7], 2)]  # one process a seed, each with every trial of it


def test_side_by_side_costs_follow_the_searchs_measured_epochs_not_the_macs():
    from compress.finalize.workers import expected_costs, plan

    # the default study's trials 5 (dsconv) and 24 (cnn): the same MACs, 161 s and 44 s an epoch in the search
    dsconv = {"trial": 5, M.MACS: 3_621_050, M.TIME_TRAIN_S: 644.0, "distill.epochs": 4}
    cnn = {"trial": 24, M.MACS: 3_847_880, M.TIME_TRAIN_S: 176.0, "distill.epochs": 4}
    small = {"trial": 45, M.MACS: 402_441, M.TIME_TRAIN_S: 59.0, "distill.epochs": 4}
    costs = expected_costs([(dsconv, 30), (cnn, 30), (small, 60)])
    assert costs == {5: pytest.approx(4830), 24: pytest.approx(1320), 45: pytest.approx(885)}
    assert plan(costs, 2) == [[5], [24, 45]]  # by MACs, 5 and 24 would weigh the same
    # one row without a measured time: every cost falls back to the MACs times the epochs
    fallback = expected_costs([(dsconv, 30), ({**cnn, M.TIME_TRAIN_S: float("nan")}, 30), (small, 60)])
    assert fallback == {5: 3_621_050 * 30, 24: 3_847_880 * 30, 45: 402_441 * 60}


def test_the_shipped_seed_is_the_best_on_validation_that_still_meets_the_policy():
    # seed 2 is best on validation, but its own encoding came out per-channel and over the app's budget
    seeds = pd.DataFrame({"trial": [29, 29, 29], "seed": [0, 1, 2], M.SHIP_SIZE_BYTES: [64_712, 64_712, 69_056],
                          M.SHIP_VAL_ACCURACY: [0.9200, 0.9198, 0.9238]})
    assert int(shipped_seed(seeds, "max_bytes", 65_536, 0.005, 0.93)["seed"]) == 0
    assert int(shipped_seed(seeds, "max_bytes", 70_000, 0.005, 0.93)["seed"]) == 2
    # smallest_within: only seeds within the budget of the teacher's validation accuracy
    assert int(shipped_seed(seeds, "smallest_within", 65_536, 0.008, 0.93)["seed"]) == 2
    close = seeds.assign(**{M.SHIP_VAL_ACCURACY: [0.9225, 0.9230, 0.9100]})
    assert int(shipped_seed(close, "smallest_within", 65_536, 0.008, 0.93)["seed"]) == 1


def test_the_encoding_that_ships_fits_the_apps_budget_when_one_can():
    from types import SimpleNamespace

    from compress.finalize.finalist_run import choose_encoding

    f = SimpleNamespace(encoding_tolerance=0.002, policy="max_bytes", max_bytes=65_536)
    # trial 5 of the default study: per-channel is the most accurate by 0.28 points, and over the budget
    tried = {"ptq_per_channel": {"bytes": 68_232, "val": 0.9288}, "ptq_per_tensor": {"bytes": 50_640, "val": 0.9260}}
    assert choose_encoding(tried, f) == "ptq_per_tensor"
    assert choose_encoding(tried, SimpleNamespace(**{**vars(f), "max_bytes": 70_000})) == "ptq_per_channel"
    assert choose_encoding(tried, SimpleNamespace(**{**vars(f), "policy": "smallest_within"})) == "ptq_per_channel"
    # nothing fits: the usual choice stands; within the tolerance: the smallest
    assert choose_encoding(tried, SimpleNamespace(**{**vars(f), "max_bytes": 40_000})) == "ptq_per_channel"
    close = {"ptq_per_channel": {"bytes": 68_232, "val": 0.9262}, "ptq_per_tensor": {"bytes": 50_640, "val": 0.9260}}
    assert choose_encoding(close, SimpleNamespace(**{**vars(f), "max_bytes": 70_000})) == "ptq_per_tensor"
    # widened to fill the 16 KB class, under either policy: the timed main job's trial 60 (dsconv_sp, width 0.148),
    # whose per-channel file carries a scale a depthwise channel and was the more accurate by 0.48 points
    dsconv = {"ptq_per_channel": {"bytes": 21_720, "val": 0.9128}, "ptq_per_tensor": {"bytes": 15_384, "val": 0.9080}}
    assert choose_encoding(dsconv, f) == "ptq_per_channel"  # within the app's budget, not widened: as before
    for policy in ("max_bytes", "smallest_within"):
        g = SimpleNamespace(**{**vars(f), "policy": policy})
        assert choose_encoding(dsconv, g, filled_class=16_384) == "ptq_per_tensor"
        assert choose_encoding(dsconv, g, filled_class=8_192) == "ptq_per_channel"  # none fits: as before
    # none fits the class: the app's budget still holds (trial 5's files against a 16 KB class)
    assert choose_encoding(tried, f, filled_class=16_384) == "ptq_per_tensor"


def test_a_finalist_trained_under_the_earlier_choice_ships_by_todays(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from compress.finalize import finalist_run

    for name in ("int8_ptq_per_channel", "int8_ptq_per_tensor", "finalist"):
        (tmp_path / f"{name}.tflite").write_bytes(name.encode())
    (tmp_path / "finalist.tflite").write_bytes(b"int8_ptq_per_channel")
    monkeypatch.setattr(finalist_run, "ship_figures", lambda path, ctx, cfg, chosen: {
        "ship_encoding": chosen, M.SHIP_SIZE_BYTES: len(path.read_bytes()), M.SHIP_VAL_ACCURACY: 0.926})
    cfg = SimpleNamespace(finalize=SimpleNamespace(encoding_tolerance=0.002, policy="max_bytes", max_bytes=65_536))
    row = pd.Series({"trial": 5, "seed": 0, "ship_encoding": "ptq_per_channel", M.SHIP_SIZE_BYTES: 68_232,
                     "int8_ptq_per_channel_bytes": 68_232, "int8_ptq_per_channel_val_accuracy": 0.9288,
                     "int8_ptq_per_tensor_bytes": 50_640, "int8_ptq_per_tensor_val_accuracy": 0.9260,
                     "int8_qat_per_channel_bytes": float("nan"), "int8_qat_per_channel_val_accuracy": float("nan")})
    wide = SimpleNamespace(finalize=SimpleNamespace(**{**vars(cfg.finalize), "max_bytes": 70_000}))
    assert finalist_run.reship(wide, None, row, tmp_path) is None  # within a larger app budget it stands
    assert finalist_run.reship(wide, None, row, tmp_path, filled_class=65_536)["ship_encoding"] == "ptq_per_tensor"
    (tmp_path / "finalist.tflite").write_bytes(b"int8_ptq_per_channel")
    changed = finalist_run.reship(cfg, None, row, tmp_path)
    assert changed["ship_encoding"] == "ptq_per_tensor"
    assert (tmp_path / "finalist.tflite").read_bytes() == b"int8_ptq_per_tensor"  # the file that ships now
    assert finalist_run.reship(cfg, None, row.copy().replace("ptq_per_channel", "ptq_per_tensor"), tmp_path) is None
    (tmp_path / "int8_ptq_per_tensor.tflite").unlink()  # a fresh clone: the work folder is not there
    assert finalist_run.reship(cfg, None, row, tmp_path) is None


def test_channel_multiple_changes_a_dsconv_recipe_and_leaves_a_cnn_recipe_s_hash_alone(small_cfg):
    # the cnn family ignores student.channel_multiple, so its finalists trained before the key keep their hash
    from compress.finalize.recipe import finalist_config, recipe_hash

    hashes = {}
    for arch in ("cnn", "dsconv"):
        row = {"trial": 1, "prune.sparsity": 0.0, "student.arch": arch}
        for multiple in (1, 8):
            small_cfg.student.channel_multiple = multiple
            config = finalist_config(small_cfg, row, 0)
            assert config.student.channel_multiple == multiple
            hashes[arch, multiple] = recipe_hash(config)
    assert hashes["cnn", 1] == hashes["cnn", 8] and hashes["dsconv", 1] != hashes["dsconv", 8]


def test_finalize_temperature_alpha_and_width_set_every_finalist_s_recipe_and_its_hash():
    """`finalize.temperature`, `finalize.alpha` and `finalize.width` replace each trial's searched values
    (null keeps them and the recipe's hash); out of range is one line."""
    from compress.config.validate import validate
    from compress.finalize.recipe import finalist_config, recipe_hash
    from compress.tracking import trials_table

    row = trials_table.read(ROOT / "report" / "trials.csv").set_index("trial").loc[62].to_dict()
    row["trial"] = 62
    plain = finalist_config(compose_config(), row, 0)
    assert float(plain.distill.alpha) == pytest.approx(row["distill.alpha"])
    tuned = finalist_config(compose_config(["finalize.temperature=4", "finalize.alpha=0.1"]), row, 0)
    assert (float(tuned.distill.temperature), float(tuned.distill.alpha)) == (4.0, 0.1)
    assert recipe_hash(tuned) != recipe_hash(plain)
    wider = finalist_config(compose_config(["finalize.width=0.16"]), row, 0)
    assert float(wider.student.width) == 0.16 and float(plain.student.width) == pytest.approx(row["student.width"])
    assert recipe_hash(wider) not in (recipe_hash(plain), recipe_hash(tuned))
    for bad, allowed in (("finalize.alpha=1.5", r"\[0, 1\]"), ("finalize.temperature=0", "> 0"),
                         ("finalize.width=0", "> 0")):
        with pytest.raises(ConfigError, match=allowed):
            validate(compose_config([bad]))


def test_a_filled_size_class_trains_its_finalist_as_wide_as_the_class_allows():
    """finalize.fill_size_classes=[16384]: trial 62's recipe (5,969
    parameters, about 9.6 KB as int8) trains at the widest width whose int8 estimate is within 95% of 16 KB;
    the next thousandth is over; its recipe hashes apart; with the option off (`[]`) nothing changes."""
    from compress.config.validate import validate
    from compress.finalize.fill import estimate_at, fill, student_of
    from compress.finalize.recipe import finalist_config, recipe_hash
    from compress.tracking import trials_table

    trials = trials_table.read(ROOT / "report" / "trials.csv")
    picked = finalists.by_hand(trials, [62])
    plain = compose_config(["finalize.fill_size_classes=[]"])
    assert fill(picked, plain.finalize, plain.student, 10, (28, 28, 1)) is picked  # off: the same selection
    cfg = compose_config(["finalize.fill_size_classes=[16384]"])
    filled = fill(picked, cfg.finalize, cfg.student, 10, (28, 28, 1))
    row = filled.iloc[0]
    width = float(row[finalists.FINAL_WIDTH])
    node = student_of(cfg.student, row)
    assert 0.15 < width < 0.17 and float(row["student.width"]) == pytest.approx(0.111433)
    assert estimate_at(node, "cnn", width, 10, (28, 28, 1)) <= 0.95 * 16384
    assert estimate_at(node, "cnn", round(width + 0.001, 3), 10, (28, 28, 1)) > 0.95 * 16384  # the next is over
    assert finalists.filled_class(row) == 16384 and finalists.filled_class(picked.iloc[0]) is None
    recipe = finalist_config(cfg, row, 0)
    assert float(recipe.student.width) == width
    assert recipe_hash(recipe) != recipe_hash(finalist_config(plain, picked.iloc[0], 0))
    with pytest.raises(ConfigError, match=r"finalize.fill_size_classes=\[20000\]: each must be one of"):
        validate(compose_config(["finalize.fill_size_classes=[20000]"]))


def test_each_size_class_leader_is_its_best_first_seed_on_validation_within_the_latency_budget():
    """compress/finalize/classes.py: the finalist each class's target is counted on (and the winner's seeds
    are trained for, finalize.class_seeds): the most accurate first seed on validation that fits the class
    and ran within the latency budget for the instruction set it was measured on."""
    from compress.finalize import classes

    cfg = compose_config()
    rows = pd.DataFrame([
        # trial, seed, shipped bytes, validation, latency ratio, isa
        (45, 0, 15_128, 0.917, 0.029, "avx512_vnni"), (62, 0, 9_368, 0.906, 0.03, "avx512_vnni"),
        (5, 0, 51_288, 0.937, 0.063, "avx512_vnni"),  # the most accurate under 64 KB, over the 0.05 budget
        (29, 0, 64_712, 0.932, 0.028, "avx512_vnni"), (29, 1, 64_712, 0.99, 0.028, "avx512_vnni"),  # not a first seed
        (6, 0, 55_632, 0.920, 0.08, "avx2"),  # within avx2's 0.10
        (24, 0, 124_088, 0.95, 0.02, "avx512_vnni")],  # over every class
        columns=["trial", "seed", M.SHIP_SIZE_BYTES, M.SHIP_VAL_ACCURACY, M.SHIP_LATENCY_RATIO, "isa"])
    leaders = classes.leaders(rows, cfg)
    assert {size: int(row["trial"]) for size, row in leaders.items()} == {16384: 45, 65536: 29}
    unbudgeted = compose_config(["finalize.max_latency_ratio=null"])
    assert int(classes.leaders(rows, unbudgeted)[65536]["trial"]) == 5
    assert classes.leaders(rows[rows["trial"] == 24], cfg) == {}  # no finalist fits any class


def test_a_worker_process_trains_its_share_of_the_parents_selection_as_the_parent_would(monkeypatch):
    """finalize.jobs=2: a child trains its trials as the whole selection has them. Of trials 45 and 62
    (both under 16 KB as int8), the parent's fill widens 45, the more accurate; a child given 62 alone
    keeps 62 as it is (named by hand, 62 would be its class's only finalist and be widened: another recipe)."""
    from compress.finalize import workers
    from compress.finalize.plan import selected
    from compress.finalize.recipe import finalist_config, recipe_hash
    from compress.tracking import trials_table

    trials = trials_table.read(ROOT / "report" / "trials.csv")
    parent_cfg = compose_config(["finalize.trials=[45,62]", "finalize.fill_size_classes=[16384]"])
    parent, _ = selected(parent_cfg, trials)
    widths = parent.set_index("trial")[finalists.FINAL_WIDTH]
    assert widths[45] > 0.15 and pd.isna(widths[62])  # the class's most accurate finalist is widened

    assert workers.assigned_share() is None  # not a child: the whole selection
    cmd, env = workers.child_command(["finalize.trials=[45,62]"], [62], 0, ROOT / "run", "1")
    assert env[workers.SHARE_ENV] == "62" and "finalize.trials=[45,62]" in cmd and "finalize.export=false" in cmd
    monkeypatch.setenv(workers.CHILD_ENV, env[workers.CHILD_ENV])
    monkeypatch.setenv(workers.SHARE_ENV, env[workers.SHARE_ENV])
    share, _ = selected(parent_cfg, trials, workers.assigned_share())
    assert share["trial"].tolist() == [62]
    recipe = recipe_hash(finalist_config(parent_cfg, share.iloc[0], 0))
    assert recipe == recipe_hash(finalist_config(parent_cfg, parent[parent["trial"] == 62].iloc[0], 0))
    alone_cfg = compose_config(["finalize.trials=[62]", "finalize.fill_size_classes=[16384]"])
    alone, _ = selected(alone_cfg, trials)  # what a group named by hand trained before: widened, another recipe
    assert recipe_hash(finalist_config(alone_cfg, alone.iloc[0], 0)) != recipe
    with pytest.raises(ConfigError, match=r"finalize worker: trials \[7\] are not among this run's finalists"):
        selected(parent_cfg, trials, [62, 7])


def test_a_finalize_stopped_by_term_stops_its_worker_processes_first(tmp_path):
    """finalize.jobs=2 under TERM (a timer's or a scheduler's stop): the parent ends through its `finally`,
    terminating the children, where Python's default would end it at once and leave them training."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = tmp_path / "parent.py"
    script.write_text(f"""
import sys
from pathlib import Path
from compress.finalize import workers
workers.child_overrides = lambda: ([], Path({str(tmp_path)!r}))
workers.child_command = lambda o, trials, seed, folder, threads: (
    [sys.executable, "-c", "import time; time.sleep(600)"], {{}})
workers.side_by_side([([1], 0), ([2], 0)], 2, "finalists")
""")
    parent = subprocess.Popen([sys.executable, str(script)], cwd=ROOT)
    children: list[int] = []
    for _ in range(300):  # both children started
        children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and
                    (p / "status").is_file() and f"PPid:\t{parent.pid}\n" in (p / "status").read_text()]
        if len(children) == 2:
            break
        time.sleep(0.1)
    assert len(children) == 2
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=60) == 128 + signal.SIGTERM
    for pid in children:  # terminated and reaped by the parent, not orphaned
        assert not Path(f"/proc/{pid}").exists() or "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
