"""What keeps a top-1 router using its experts: supervision, balance terms, collapse warnings."""

from __future__ import annotations

import pytest
import torch
from training_fixtures import data_spec, make_model

from advmoe_worker.data import create_dataset
from advmoe_worker.errors import SpecError
from advmoe_worker.training import Trainer
from advmoe_worker.training.methods import Forward, balance_terms


def trainer_for(spec, **model_overrides):
    data = create_dataset(data_spec(train_size=32, test_size=0))
    base = {"batch_size": 16, "optimizer": {"lr": 0.1, "weight_decay": 0.0}}
    return Trainer(make_model(**model_overrides), data, {**base, **spec})


def test_the_paper_router_objective_has_no_task_loss_and_leaves_the_experts_alone():
    trainer = trainer_for({"method": "advmoe", "router_supervision": "paper", "alpha": 2.0, "beta": 3.0})
    experts = [p.detach().clone() for p in trainer.model.expert_parameters()]
    m = trainer.step("router")
    assert set(m["terms"]) == {"router_ce", "router_kl"}
    assert m["loss"] == pytest.approx(2.0 * m["terms"]["router_ce"] + 3.0 * m["terms"]["router_kl"], rel=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(experts, trainer.model.expert_parameters(), strict=True))
    assert trainer.describe()["attack"]["router_weight"] == 1.0  # the paper code's router-aware attack
    expert = trainer.step("expert")
    assert set(expert["terms"]) == {"ce", "kl"}  # the expert step is plain TRADES


@pytest.mark.parametrize("kind", ["switch", "entropy"])
def test_a_balance_term_enters_the_router_loss_with_its_weight(kind):
    trainer = trainer_for(
        {"method": "advmoe", "router_supervision": "none", "balance": kind, "balance_weight": 0.5}
    )
    m = trainer.step("router")
    term = m["terms"][f"balance_{kind}"]
    assert term == pytest.approx(m["balance"][kind], rel=1e-5)
    assert m["loss"] == pytest.approx(m["terms"]["ce"] + 6.0 * m["terms"]["kl"] + 0.5 * term, rel=1e-5)
    assert f"balance_{kind}" not in trainer.step("expert")["terms"]


def test_balance_terms_are_zero_cost_when_balanced_and_maximal_when_collapsed():
    e = 2
    uniform = torch.full((4, 1, e), 0.5)
    balanced = Forward(torch.zeros(4, 3), torch.tensor([[0], [1], [0], [1]]), uniform, uniform.log())
    assert balance_terms(balanced)["switch"].item() == pytest.approx(1.0)
    assert balance_terms(balanced)["entropy"].item() == pytest.approx(0.0, abs=1e-7)
    one_hot = torch.tensor([1.0, 0.0]).expand(4, 1, e)
    collapsed = Forward(torch.zeros(4, 3), torch.zeros(4, 1, dtype=torch.long), one_hot, one_hot)
    assert balance_terms(collapsed)["switch"].item() == pytest.approx(2.0)
    assert balance_terms(collapsed)["entropy"].item() == pytest.approx(torch.log(torch.tensor(2.0)).item())


@pytest.mark.parametrize("field, value", [("balance", "switch"), ("router_supervision", "paper")])
def test_routing_terms_need_a_method_with_a_router(field, value):
    with pytest.raises(SpecError) as err:
        trainer_for({"method": "trades", field: value}, moe=False)
    assert err.value.path == field and err.value.rule == "requires_moe_method"


def test_a_collapsing_router_raises_one_warning_at_once():
    events = []
    data = create_dataset(data_spec(train_size=64, test_size=0))
    model = make_model()
    with torch.no_grad():  # every sample to expert 0, whatever the image
        model.router.fc.bias.copy_(torch.tensor([50.0, -50.0]))
    spec = {"method": "advmoe", "batch_size": 16, "router_supervision": "none", "epochs": 1}
    trainer = Trainer(model, data, spec, emit=lambda name, d: events.append((name, d)))
    trainer.step()
    warnings = [d for name, d in events if name == "warning"]
    assert len(warnings) == 1, "raised at the first collapsed step, not at evaluation"
    w = warnings[0]
    assert (w["code"], w["expert"], w["share"], w["step"]) == ("routing_collapse", 0, 1.0, 1)
    trainer.step()  # still collapsed: not raised again
    assert [d for name, d in events if name == "warning"] == [w]


def test_a_balanced_router_raises_no_warning():
    events = []
    data = create_dataset(data_spec(train_size=64, test_size=0))
    model = make_model()
    spec = {"method": "advmoe", "batch_size": 16, "max_share": 1.0, "epochs": 1}
    trainer = Trainer(model, data, spec, emit=lambda name, d: events.append((name, d)))
    trainer.epoch()
    # max_share 1.0: no share can exceed it, so no warning whatever the routing
    assert [d for name, d in events if name == "warning"] == []
    summary = [d for name, d in events if name == "epoch"][0]
    assert len(summary["expert_load"]) == 2 and sum(summary["expert_load"]) == pytest.approx(1.0)
