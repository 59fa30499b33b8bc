"""The manipulation benchmark's report keeps what it measured: rows whose runs are gone stay, a retrained preset
version is a new row beside the earlier one, and the earlier one is marked and left out of the comparisons."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import bench_manipulation as bench  # noqa: E402


def row(preset, variant, seed, sha, nominal):
    cells = [bench.TRAINING, "nominal"]
    return {"preset": preset, "variant": variant, "seed": seed, "preset_sha": sha, "run_dir": "gone", "steps": 100,
            "budget": 100, "train_minutes": 1.0, "success": {c: nominal for c in cells},
            "fallbacks": {c: 0 for c in cells}, "curve": {"step": [100], "minutes": [1.0], "success": [nominal]}}


def test_report_merges_recorded_rows_and_marks_earlier_preset_versions(tmp_path):
    current = bench.preset_digest("fetch-push")
    assert len(current) == 12 and current == bench.preset_digest("fetch-push")
    assert current != bench.preset_digest("fetch-reach")
    recorded = [row("fetch-push", "randomized", 0, current, 0.10),      # replaced by the new measurement below
                row("fetch-push", "randomized", 0, "0ld0ld0ld0ld", 0.20),  # an earlier version: kept, marked
                row("fetch-reach", "none", 1, bench.preset_digest("fetch-reach"), 0.30)]  # not asked for: kept
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"runs": recorded}))
    fresh = [row("fetch-push", "randomized", 0, current, 0.90)]

    merged = sorted(bench.merge_recorded(path, fresh, bench.row_key), key=bench.table_order)

    assert [(r["preset"], r["preset_sha"], r["success"]["nominal"]) for r in merged] == [
        ("fetch-reach", bench.preset_digest("fetch-reach"), 0.30),
        ("fetch-push", current, 0.90), ("fetch-push", "0ld0ld0ld0ld", 0.20)]
    assert [bench.is_current(r) for r in merged] == [True, True, False]
    text = bench.markdown({"episodes": 50, "eval_seed": bench.EVAL_SEED, "machine": "test", "runs": merged})
    table = [line for line in text.splitlines() if line.startswith("| fetch-push")]
    assert table[0].startswith("| fetch-push | randomized | 0 |") and "0.90" in table[0]
    assert table[1].startswith("| fetch-push | randomized † | 0 |") and "0.20" in table[1]
    assert "fetch-push: its file's sha256 began 0ld0ld0ld0ld" in text
    assert bench.merge_recorded(tmp_path / "absent.json", fresh, bench.row_key) == fresh


def test_curves_are_thinned_to_block_means_and_thinning_is_idempotent():
    nan = float("nan")
    c = {"step": [10 * (i + 1) for i in range(10)], "minutes": [0.5 * (i + 1) for i in range(10)],
         "success": [0.0, nan, 1.0, 0.5, 0.5, 0.5, nan, nan, 1.0, 0.0]}
    thin = bench.thin_curve(c, points=4)  # blocks of iterations 0-2, 3-5, 6-7, 8-9
    assert thin["step"] == [30, 60, 80, 100]
    assert thin["minutes"] == [1.5, 3.0, 4.0, 5.0]
    assert thin["success"][:2] == [0.5, 0.5] and thin["success"][3] == 0.5
    assert thin["success"][2] != thin["success"][2]  # a block without a finished episode stays NaN
    assert bench.thin_curve(thin, points=4) is thin
    assert bench.thin_curve(c, points=10) is c
