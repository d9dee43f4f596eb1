"""The TensorBoard writer subscribes to a trainer's events; read back with tensorboard's reader."""

from __future__ import annotations

import pytest
from training_fixtures import data_spec, make_model

from advmoe_worker.data import create_dataset
from advmoe_worker.training import Trainer
from advmoe_worker.training.tensorboard import TensorBoardLogger

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def read(log_dir):
    acc = event_accumulator.EventAccumulator(
        str(log_dir), size_guidance={event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0}
    )
    acc.Reload()
    return acc


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_step_and_epoch_scalars_and_the_load_histogram_are_the_emitted_numbers(tmp_path):
    data = create_dataset(data_spec(train_size=32, test_size=0, val_fraction=0.25))
    spec = {"method": "advmoe", "batch_size": 8, "eval": {"attacks": [], "per_class": False}}
    logger = TensorBoardLogger(tmp_path / "tb")
    events: list[tuple[str, dict]] = []

    def emit(event: str, payload: dict) -> None:
        logger(event, payload)
        events.append((event, payload))

    trainer = Trainer(make_model(moe=True), data, spec, emit=emit)
    trainer.epoch()
    logger.close()

    acc = read(tmp_path / "tb")
    steps = [d for kind, d in events if kind == "step"]
    assert [(e.step, e.value) for e in acc.Scalars("step/loss")] == [
        (d["step"], pytest.approx(d["loss"], rel=1e-6)) for d in steps
    ]
    (summary,) = [d for kind, d in events if kind == "epoch"]
    (histogram,) = acc.Histograms("epoch/expert_load_histogram")
    assert histogram.step == 1
    assert histogram.histogram_value.bucket == pytest.approx(summary["expert_load"], rel=1e-6)
    (sa,) = acc.Scalars("eval/sa")
    assert sa.step == trainer.global_step
    assert sa.value == pytest.approx(summary["eval"]["summary"]["sa"], rel=1e-6)


def test_a_missing_tensorboard_package_is_a_spec_error_naming_log_dir(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "torch.utils.tensorboard":
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    from advmoe_worker.errors import SpecError

    with pytest.raises(SpecError) as err:
        TensorBoardLogger(tmp_path / "tb")
    assert err.value.to_wire()["details"]["path"] == "log_dir"
