"""Every method trains: its loss falls over a few steps on a small learnable set."""

from __future__ import annotations

import math

import pytest
from training_fixtures import data_spec, make_model

from advmoe_worker.data import create_dataset
from advmoe_worker.training import Trainer

METHODS = ["standard", "pgd-at", "trades", "at-moe", "advmoe"]


@pytest.mark.parametrize("method", METHODS)
def test_each_method_lowers_its_loss_on_a_repeated_batch(method):
    # one batch of 32 seen over and over: the loss of the same phase must fall
    data = create_dataset(data_spec(train_size=32, test_size=0))
    model = make_model(moe=method in ("at-moe", "advmoe"))
    spec = {
        "method": method,
        "batch_size": 32,
        "epochs": 50,
        "optimizer": {"lr": 0.05},
        "schedule": {"name": "constant"},
    }
    trainer = Trainer(model, data, spec)
    history: dict[str, list[float]] = {}
    for _ in range(16 if method == "advmoe" else 10):
        m = trainer.step()
        history.setdefault(m["phase"], []).append(m["loss"])
    for phase, losses in history.items():
        assert losses[-1] < 0.8 * losses[0], (phase, losses)


@pytest.mark.parametrize("method", METHODS)
def test_step_metrics_report_every_field(method):
    data = create_dataset(data_spec(train_size=32, test_size=0))
    moe = method in ("at-moe", "advmoe")
    trainer = Trainer(make_model(moe=moe), data, {"method": method, "batch_size": 16, "epochs": 2})
    m = trainer.step()
    assert m["phase"] == ("router" if method == "advmoe" else "joint")
    assert m["step"] == 1 and m["epoch"] == 0 and m["batch"] == 0
    assert m["clean_acc"] is not None and 0 <= m["clean_acc"] <= 1
    assert (m["adv_acc"] is None) == (method == "standard")
    assert m["grad_norm"] > 0 and m["step_time_s"] > 0 and m["images_per_s"] > 0
    expected_lr = {"router", "expert"} if method == "advmoe" else {"model"}
    assert set(m["lr"]) == expected_lr
    if moe:
        assert len(m["expert_load"]) == 2 and sum(m["expert_load"]) == pytest.approx(1.0)
        assert m["router_entropy"] is not None and m["router_entropy"] >= 0
    else:
        assert m["expert_load"] is None and m["router_entropy"] is None
    terms = {"standard": {"ce"}, "pgd-at": {"adv_ce"}, "trades": {"ce", "kl"}, "at-moe": {"ce", "kl"}}
    # advmoe supervises its router by default (CE to y mod E) in the router phase
    assert set(m["terms"]) == terms.get(method, {"ce", "kl", "router_ce"})
    if moe:
        assert set(m["balance"]) == {"switch", "entropy"}
        assert 0 <= m["balance"]["switch"] <= 2 + 1e-6  # E * sum f_e P_e lies in [0, E]
        assert -1e-6 <= m["balance"]["entropy"] <= math.log(2) + 1e-6
    else:
        assert m["balance"] is None


def test_trades_loss_is_ce_plus_beta_times_kl():
    data = create_dataset(data_spec(train_size=32, test_size=0))
    trainer = Trainer(make_model(moe=False), data, {"method": "trades", "batch_size": 16, "beta": 3.0})
    m = trainer.step()
    assert m["loss"] == pytest.approx(m["terms"]["ce"] + 3.0 * m["terms"]["kl"], rel=1e-5)


def test_training_attack_defaults_to_the_paper_codes_settings():
    data = create_dataset(data_spec(train_size=32, test_size=0))
    trainer = Trainer(make_model(moe=False), data, {"method": "pgd-at", "batch_size": 16})
    attack = trainer.describe()["attack"]
    assert attack["name"] == "pgd"
    assert attack["eps"] == pytest.approx(8 / 255)
    assert attack["steps"] == 2
    assert attack["step_size"] == pytest.approx(5 / 255)
    assert attack["random_start"] is True


def test_label_mod_e_supervision_adds_the_router_term_in_router_phases_only():
    data = create_dataset(data_spec(train_size=32, test_size=0))
    spec = {"method": "advmoe", "batch_size": 16, "router_supervision": "label_mod_e", "alpha": 2.0}
    trainer = Trainer(make_model(), data, spec)
    router = trainer.step("router")
    expert = trainer.step("expert")
    assert "router_ce" in router["terms"] and "router_ce" not in expert["terms"]
    assert router["loss"] == pytest.approx(
        router["terms"]["ce"] + 6.0 * router["terms"]["kl"] + 2.0 * router["terms"]["router_ce"], rel=1e-5
    )
    # the training attack becomes router-aware (the paper code's KL(f) + KL(R) ascent)
    assert trainer.describe()["attack"]["router_weight"] == 1.0


def test_pgd_robust_loss_with_label_mod_e_trains_against_the_official_attack():
    data = create_dataset(data_spec(train_size=32, test_size=0))
    spec = {"method": "at-moe", "robust_loss": "pgd", "batch_size": 16, "router_supervision": "label_mod_e"}
    trainer = Trainer(make_model(), data, spec)
    assert trainer.describe()["attack"]["name"] == "official"
    assert set(trainer.step()["terms"]) == {"adv_ce", "router_ce"}


def test_advmoe_trains_on_the_real_digits_for_an_epoch():
    data = create_dataset({"kind": "digits", "size": 8, "channels": 3, "max_train": 64, "val_fraction": 0.25})
    model = make_model(num_classes=10)
    trainer = Trainer(model, data, {"method": "advmoe", "batch_size": 16, "epochs": 1})
    summary = trainer.epoch()
    assert summary["epochs_completed"] == 1 and summary["steps"] == 2 * 3
    assert trainer.val_data is data.val and len(data.val) == 16
