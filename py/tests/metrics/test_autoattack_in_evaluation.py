"""AutoAttack inside evaluate(): its settings, its sample limit, and AA <= RA(PGD)."""

from __future__ import annotations

import pytest
from attack_fixtures import batches_of

from advmoe_worker.metrics import evaluate

pytest.importorskip("torchattacks")


def test_autoattack_is_reported_with_its_settings_and_beats_pgd(moe_model, data):
    spec = {
        "attacks": [{"name": "pgd"}],
        "autoattack": {"version": "fast", "steps": 20, "max_samples": 32},
        "batch_size": 16,
    }
    report = evaluate(moe_model, batches_of(data, 48), spec)
    aa = report["autoattack"]
    assert aa["samples"] == 32
    settings = aa["settings"]
    assert settings["version"] == "fast" and settings["attacks"] == ["apgd-ce", "apgd-t"]
    assert settings["n_classes"] == 4 and settings["norm"] == "linf" and settings["eps"] == 8 / 255
    assert settings["seed"] == 1234 and settings["max_samples"] == 32
    assert report["summary"]["aa"] == aa["robust_accuracy"]
    assert aa["robust_accuracy"] <= report["summary"]["ra"]["pgd10-linf-8/255"] + 0.05
