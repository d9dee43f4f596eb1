"""evaluate(): every metric of the report, its settings, its warnings, cancel and errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
from attack_fixtures import accuracy, batches_of, create_model, model_spec
from torch import nn

from advmoe_worker.attacks import create_attack
from advmoe_worker.errors import BadDataError, CancelledError, SpecError
from advmoe_worker.metrics import evaluate, resolve_evaluation_spec

MOE_SPEC = {
    "attacks": [{"name": "pgd", "steps": 5}, {"name": "router", "steps": 5}, {"name": "pathway", "steps": 5}],
    "batch_size": 16,
    "seed": 3,
}


@pytest.fixture(scope="module")
def moe_report(moe_model, data):
    events = []
    report = evaluate(
        moe_model, batches_of(data, 32), MOE_SPEC, emit=lambda name, d: events.append((name, d))
    )
    return report, events


def test_report_counts_every_sample_and_states_the_settings(moe_report, moe_model, data):
    report, _ = moe_report
    x, y = data
    assert report["samples"] == 48 and report["num_classes"] == 4
    assert report["model"] == {"is_moe": True, "num_experts": 2, "num_routing_layers": 1}
    assert report["settings"]["batch_size"] == 16 and report["settings"]["device"] == "cpu"
    assert report["summary"]["sa"] == pytest.approx(accuracy(moe_model, x, y))
    assert [a["label"] for a in report["attacks"]] == [
        "pgd5-linf-8/255",
        "router5-linf-8/255",
        "pathway5-linf-8/255",
    ]
    assert report["attacks"][0]["settings"] == {
        "name": "pgd",
        "norm": "linf",
        "eps": 8 / 255,
        "steps": 5,
        "step_size": 2 / 255,
        "restarts": 1,
        "random_start": True,
        "seed": 3,
    }
    json.dumps(report)  # plain data, ready for the wire


def test_robust_accuracy_is_what_the_attack_gives_batch_by_batch(moe_report, moe_model, data):
    report, _ = moe_report
    attack = create_attack({"name": "pgd", "steps": 5, "seed": 3}, moe_model)
    robust = 0
    for b, (x, y) in enumerate(batches_of(data, 16)):
        x_adv = attack(x, y, seed=3 + b)  # batch b uses seed + b
        with torch.no_grad():
            hit = (moe_model(x).argmax(1) == y) & (moe_model(x_adv).argmax(1) == y)
        robust += int(hit.sum())  # robust: right on the clean input and on its example
    assert report["summary"]["ra"]["pgd5-linf-8/255"] == pytest.approx(robust / 48)


def test_routing_metrics_of_an_moe_model(moe_report):
    report, _ = moe_report
    clean_load = report["clean"]["expert_load"]
    assert clean_load["num_samples"] == 48 and clean_load["num_experts"] == 2
    assert len(clean_load["histogram"]) == 1 and sum(clean_load["histogram"][0]) == 48
    share = clean_load["share"][0]
    entropy = -sum(p * math.log(p) for p in share if p > 0)
    assert clean_load["entropy"][0] == pytest.approx(entropy)
    assert clean_load["entropy_normalized"][0] == pytest.approx(entropy / math.log(2))
    pgd, router, pathway = report["attacks"]
    for entry in (pgd, router, pathway):
        agreement = entry["routing_agreement"]
        assert 0 <= agreement["overall"] <= 1 and len(agreement["per_layer"]) == 1
        assert entry["expert_load"]["num_samples"] == 48
        assert entry["frozen_pathway_accuracy"] is not None
    assert report["summary"]["ra_router"] == router["robust_accuracy"]
    assert report["summary"]["ra_pathway"] == pathway["frozen_pathway_accuracy"]


def test_per_class_accuracy_adds_up(moe_report):
    report, _ = moe_report
    rows = report["clean"]["per_class"]
    assert [r["class"] for r in rows] == [0, 1, 2, 3]
    assert sum(r["samples"] for r in rows) == 48
    assert sum(r["correct"] for r in rows) / 48 == pytest.approx(report["summary"]["sa"])
    for entry in report["attacks"]:
        assert sum(r["correct"] for r in entry["per_class"]) / 48 == pytest.approx(entry["robust_accuracy"])


def test_progress_is_emitted_once_per_batch(moe_report):
    report, events = moe_report
    assert [name for name, _ in events] == ["progress"] * 3  # 48 samples in batches of 16
    assert [d["batch"] for _, d in events] == [0, 1, 2]
    assert [d["samples"] for _, d in events] == [16, 32, 48]
    assert events[-1][1]["sa"] == report["summary"]["sa"]
    assert events[-1][1]["ra"] == report["summary"]["ra"]


def test_throughput_is_reported(moe_report):
    report, _ = moe_report
    assert report["clean"]["images_per_second"] > 0
    assert all(a["images_per_second"] > 0 for a in report["attacks"])
    assert report["seconds"] > 0


def test_same_spec_same_numbers(moe_model, data):
    spec = {"attacks": [{"name": "pgd", "steps": 2}], "batch_size": 24}
    first = evaluate(moe_model, batches_of(data, 48), spec)
    second = evaluate(moe_model, batches_of(data, 48), spec)
    assert first["summary"] == second["summary"]


def test_dense_model_skips_routing_attacks_with_a_warning(dense_model, data):
    report = evaluate(
        dense_model, batches_of(data, 48), {"attacks": [{"name": "pgd", "steps": 3}, {"name": "router"}]}
    )
    assert [a["settings"]["name"] for a in report["attacks"]] == ["pgd"]
    assert report["attacks"][0]["routing_agreement"] is None
    assert report["attacks"][0]["frozen_pathway_accuracy"] is None
    assert report["clean"]["expert_load"] is None
    assert report["summary"]["ra_router"] is None
    assert [w["code"] for w in report["warnings"]] == ["attack_skipped"]
    assert report["warnings"][0]["attack"] == "router"


def test_max_samples_and_rechunking(dense_model, data):
    report = evaluate(dense_model, batches_of(data, 48), {"attacks": [], "batch_size": 7, "max_samples": 20})
    assert report["samples"] == 20
    assert report["settings"]["max_samples"] == 20


def test_defaults_run_pgd10_at_8_over_255(dense_model, data):
    report = evaluate(dense_model, batches_of(data, 48), {"per_class": False})
    assert report["attacks"][0]["label"] == "pgd10-linf-8/255"
    assert report["attacks"][0]["per_class"] is None and report["clean"]["per_class"] is None
    assert report["settings"]["seed"] == 1234 and report["attacks"][0]["settings"]["seed"] == 1234


def test_duplicate_attacks_get_distinct_labels(dense_model, data):
    spec = {"attacks": [{"name": "fgsm"}, {"name": "fgsm", "seed": 1}]}
    report = evaluate(dense_model, batches_of(data, 48), spec)
    assert list(report["summary"]["ra"]) == ["fgsm-linf-8/255", "fgsm-linf-8/255#2"]


class ConstantModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.tensor([3.0, 0.0, 0.0, 0.0]))

    def forward(self, x):
        return self.bias.expand(x.shape[0], -1)


class NaNModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 12 * 12, 4)

    def forward(self, x):
        return self.fc(x.flatten(1)) * float("nan")


@pytest.mark.parametrize("model, word", [(ConstantModel(), "all-zero"), (NaNModel(), "NaN")])
def test_masked_gradients_raise_a_warning(model, word, data):
    report = evaluate(model, batches_of(data, 48), {"attacks": [{"name": "pgd", "steps": 2}]})
    warnings = [w for w in report["warnings"] if w["code"] == "gradient_masking"]
    assert warnings and word in warnings[0]["message"]
    assert warnings[0]["attack"] == "pgd2-linf-8/255"
    counts = report["attacks"][0]["gradients"]
    assert counts["sample_steps"] == 96 and (counts["zero"] == 96 or counts["non_finite"] == 96)


def test_a_healthy_model_gets_no_gradient_warning(moe_report):
    report, _ = moe_report
    assert not [w for w in report["warnings"] if w["code"] == "gradient_masking"]


def test_collapsed_routing_raises_a_warning(data):
    model = create_model(model_spec("moe"))
    with torch.no_grad():
        model.router.fc.bias.copy_(torch.tensor([50.0, -50.0]))  # every sample goes to expert 0
    model.eval()
    report = evaluate(model, batches_of(data, 48), {"attacks": [{"name": "pgd", "steps": 1}]})
    collapse = [w for w in report["warnings"] if w["code"] == "routing_collapse"]
    assert collapse and collapse[0]["attack"] is None
    assert collapse[0]["expert"] == 0 and collapse[0]["share"] == 1.0
    assert collapse[0]["message"].startswith("clean inputs: ")
    assert report["clean"]["expert_load"]["entropy_normalized"] == [0.0]


def test_max_share_sets_the_collapse_threshold(moe_report, moe_model, data):
    report, _ = moe_report
    top = max(report["clean"]["expert_load"]["max_share"])
    strict = evaluate(moe_model, batches_of(data, 48), {"attacks": [], "max_share": min(top, 1.0) - 0.01})
    assert [w["code"] for w in strict["warnings"]] == ["routing_collapse"]
    assert not [w for w in report["warnings"] if w["code"] == "routing_collapse"] or top > 0.9


def test_costs_state_macs_per_sample(moe_report, dense_model, data):
    report, _ = moe_report
    costs = report["costs"]
    assert costs["input_size"] == 12
    assert costs["macs_per_sample"] == costs["macs"]["active"] + costs["macs"]["router"] > 0
    assert costs["macs"]["active"] < costs["macs"]["dense"]
    dense = evaluate(dense_model, batches_of(data, 48), {"attacks": []})
    assert dense["costs"]["macs"]["router"] == 0


def test_should_stop_cancels_within_one_batch(moe_model, data):
    polls, events = [], []

    def should_stop():
        polls.append(len(events))
        return len(events) >= 1  # stop once the first batch is done

    with pytest.raises(CancelledError) as info:
        evaluate(
            moe_model,
            batches_of(data, 16),
            MOE_SPEC,
            emit=lambda n, d: events.append(d),
            should_stop=should_stop,
        )
    assert len(events) == 1
    assert info.value.code == "cancelled"
    assert info.value.details["samples_done"] == 16


def test_should_stop_before_the_first_batch_does_no_work(moe_model, data):
    events = []
    with pytest.raises(CancelledError):
        evaluate(
            moe_model,
            batches_of(data, 16),
            MOE_SPEC,
            emit=lambda n, d: events.append(d),
            should_stop=lambda: True,
        )
    assert events == []


def test_model_modes_are_restored(moe_model, data):
    moe_model.train()
    moe_model.router.eval()
    modes = [m.training for m in moe_model.modules()]
    try:
        evaluate(moe_model, batches_of(data, 48), {"attacks": [{"name": "fgsm"}], "max_samples": 8})
        after = [m.training for m in moe_model.modules()]
    finally:
        moe_model.eval()
    assert after == modes
    assert all(p.grad is None for p in moe_model.parameters())


@pytest.mark.parametrize(
    "spec, error, path",
    [
        ({"attacks": [{"name": "pgd"}, {"name": "pgd", "eps": -0.1}]}, SpecError, "attacks.1.eps"),
        ({"attacks": [{"name": "pgd", "steps": 0}]}, SpecError, "attacks.0.steps"),
        ({"attacks": [{"name": "trades", "norm": "l2"}]}, SpecError, "attacks.0.norm"),
        ({"attacks": [{"name": "deepfool"}]}, SpecError, "attacks.0.name"),
        ({"batch_size": 0}, SpecError, "batch_size"),
        ({"max_samples": 0}, SpecError, "max_samples"),
        ({"max_share": 1.5}, SpecError, "max_share"),
        ({"batchsize": 4}, SpecError, "batchsize"),
        ({"autoattack": {"version": "nope"}}, SpecError, "autoattack.version"),
        ({"autoattack": {"max_samples": 0}}, SpecError, "autoattack.max_samples"),
    ],
)
def test_bad_specs_raise_typed_errors_naming_the_field(dense_model, data, spec, error, path):
    with pytest.raises(error) as info:
        evaluate(dense_model, batches_of(data, 48), spec)
    found = getattr(info.value, "path", None) or info.value.details.get("path")
    assert found == path
    if path == "attacks.0.name":  # an unknown attack lists the known ones
        assert "pgd" in info.value.message and "fgsm" in info.value.message


def test_no_samples_is_an_error(dense_model):
    with pytest.raises(BadDataError):
        evaluate(dense_model, [], {"attacks": []})


def test_resolve_fills_the_defaults_from_the_generated_schema():
    spec = resolve_evaluation_spec({})
    assert (spec["batch_size"], spec["max_share"], spec["seed"]) == (128, 0.9, 1234)
    assert spec["autoattack"] is None and spec["max_samples"] is None and spec["per_class"] is True
    assert spec["attacks"][0]["name"] == "pgd" and spec["attacks"][0]["steps"] == 10


def test_resolve_names_the_field_of_a_bad_attack():
    with pytest.raises(SpecError) as info:
        resolve_evaluation_spec({"attacks": [{"name": "pgd", "eps": -1}]})
    assert info.value.path == "attacks.0.eps"


def test_no_robust_accuracy_exceeds_clean_accuracy(moe_report):
    report, _ = moe_report
    summary = report["summary"]
    sa = summary["sa"]
    ras = [entry["robust_accuracy"] for entry in report["attacks"]]
    for entry in report["attacks"]:
        assert entry["robust_accuracy"] <= sa
        assert entry["frozen_pathway_accuracy"] <= sa
        for clean_row, row in zip(report["clean"]["per_class"], entry["per_class"], strict=True):
            assert row["correct"] <= clean_row["correct"]
    assert summary["ra_router"] <= sa and summary["ra_pathway"] <= sa
    # worst case: no better than any one attack, no worse than losing every attack's breaks
    assert summary["ra_worst_over"] == [entry["label"] for entry in report["attacks"]]
    assert summary["ra_worst"] <= min(ras)
    assert summary["ra_worst"] >= sa - sum(sa - ra for ra in ras) - 1e-12


def test_worst_case_is_taken_per_sample(moe_model, data):
    spec = {"attacks": [{"name": "pgd", "steps": 3}, {"name": "fgsm"}], "batch_size": 16, "seed": 5}
    report = evaluate(moe_model, batches_of(data, 16), spec)
    pgd = create_attack({"name": "pgd", "steps": 3, "seed": 5}, moe_model)
    fgsm = create_attack({"name": "fgsm", "seed": 5}, moe_model)
    robust = 0
    for b, (x, y) in enumerate(batches_of(data, 16)):
        with torch.no_grad():
            hit = moe_model(x).argmax(1) == y
            hit &= moe_model(pgd(x, y, seed=5 + b)).argmax(1) == y
            hit &= moe_model(fgsm(x, y, seed=5 + b)).argmax(1) == y
        robust += int(hit.sum())
    assert report["summary"]["ra_worst"] == pytest.approx(robust / 48)


def test_evaluation_leaves_a_training_mode_model_as_it_found_it(data):
    from attack_fixtures import trained_model

    model = trained_model("moe", steps=10)
    model.train()
    modes = [m.training for m in model.modules()]
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    params = {n: p.clone() for n, p in model.named_parameters()}
    spec = {"attacks": [{"name": "pgd", "steps": 2}, {"name": "router", "steps": 2}], "batch_size": 16}
    evaluate(model, batches_of(data, 16), spec)
    assert [m.training for m in model.modules()] == modes
    for name, b in model.named_buffers():
        assert torch.equal(b, buffers[name]), name
    for name, p in model.named_parameters():
        assert torch.equal(p, params[name]) and p.grad is None, name
