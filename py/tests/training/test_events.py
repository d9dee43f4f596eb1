"""What the training engine emits conforms to the event schemas generated from the zod ones."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator
from training_fixtures import data_spec, make_model

from advmoe_worker.data import create_dataset
from advmoe_worker.schema_files import schema_dir
from advmoe_worker.training import Trainer


def validator(kind: str) -> Draft202012Validator:
    path = schema_dir() / "events" / f"{kind}.json"
    assert path.is_file(), f"no schema for event kind {kind!r}"
    return Draft202012Validator(json.loads(path.read_text()))


def roundtrip(data: dict) -> dict:
    # The wire carries msgpack; JSON is as strict about types for these payloads.
    return json.loads(json.dumps(data))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_every_event_of_an_advmoe_epoch_matches_its_schema(tmp_path):
    data = create_dataset(data_spec(train_size=32, test_size=0, val_fraction=0.25))
    spec = {
        "method": "advmoe",
        "batch_size": 8,
        "amp": "bf16",  # ignored on the CPU, with a warning event
        "checkpoint_dir": str(tmp_path),
        "eval": {"attacks": [{"name": "pgd", "steps": 1}], "per_class": False},
    }
    events: list[tuple[str, dict]] = []
    trainer = Trainer(make_model(moe=True), data, spec, emit=lambda e, d: events.append((e, roundtrip(d))))
    trainer.epoch()
    kinds = {kind for kind, _ in events}
    assert {"warning", "step", "epoch", "eval", "progress", "checkpoint"} <= kinds
    for kind, payload in events:
        errors = [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator(kind).iter_errors(payload)
        ]
        assert errors == [], f"{kind} event breaks its schema"


def test_a_step_event_with_an_unknown_metric_still_conforms_when_the_metric_is_a_number():
    step = validator("step")
    data = create_dataset(data_spec(train_size=16, test_size=0))
    events: list[dict] = []
    trainer = Trainer(
        make_model(moe=True),
        data,
        {"method": "advmoe", "batch_size": 8},
        emit=lambda e, d: events.append(roundtrip(d)) if e == "step" else None,
    )
    trainer.step()
    payload = {**events[0], "balance_loss": 0.25}
    assert list(step.iter_errors(payload)) == []
    assert list(step.iter_errors({**payload, "balance_loss": "high"})) != []
