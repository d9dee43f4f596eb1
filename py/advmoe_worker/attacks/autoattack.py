"""AutoAttack (Croce & Hein, 2020) from torchattacks, under our bookkeeping.

The attacks themselves are torchattacks' (APGD-CE, APGD-DLR, APGD-T, FAB-T, Square),
chained with its `MultiAttack` (each attack only sees the samples the previous ones did
not break). This module picks them with the reference settings of the AutoAttack paper,
which torchattacks' own `AutoAttack` class does not expose (it runs APGD for 10 steps):
100 steps for APGD/APGD-T/FAB-T, 9 target classes, 5,000 Square queries, one restart.

What our base class adds around torchattacks: the model's own per-submodule train flags
restored (torchattacks only restores the top-level one), the global RNG left untouched
(torchattacks re-seeds it on every call), no parameter `.grad` written (FAB calls
`.backward()`), and the real number of classes (never the default 10).

torchattacks is an optional dependency (`pip install --no-deps torchattacks`, see
docs): it is imported on first use, and its absence is a clear error, not an import crash.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import SpecError, WorkerError
from .base import Attack, check_number

# version -> the attacks it chains, in order (AutoAttack's own order for 'standard')
AUTOATTACK_VERSIONS: dict[str, tuple[str, ...]] = {
    "standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
    "fast": ("apgd-ce", "apgd-t"),  # the two gradient attacks of 'standard'
    "rand": ("apgd-ce", "apgd-dlr"),  # for randomized defenses: EOT over 20 draws
    "apgd-ce": ("apgd-ce",),
    "apgd-dlr": ("apgd-dlr",),
    "apgd-t": ("apgd-t",),
    "fab-t": ("fab-t",),
    "square": ("square",),
}

# fewest classes each attack's loss is defined for (DLR reads the 3rd, targeted DLR the 4th
# largest logit)
_MIN_CLASSES = {"apgd-ce": 2, "apgd-dlr": 3, "apgd-t": 4, "fab-t": 2, "square": 2}

_NORMS = {"linf": "Linf", "l2": "L2"}


def import_torchattacks() -> Any:
    try:
        import torchattacks
    except ImportError as error:
        raise WorkerError(
            "AutoAttack needs the torchattacks package, which is not installed in the "
            "worker's Python; install it with `pip install --no-deps torchattacks` "
            "(it needs only torch, numpy and scipy at run time)",
            {"path": "autoattack", "package": "torchattacks", "cause": str(error)},
        ) from error
    return torchattacks


def torchattacks_version() -> str | None:
    try:
        import torchattacks
    except ImportError:
        return None
    return str(getattr(torchattacks, "__version__", "unknown"))


@contextlib.contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Parameters stop requiring grad for the block: a `.backward()` inside leaves no `.grad`."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


@contextlib.contextmanager
def private_rng(device: torch.device) -> Iterator[None]:
    """The global CPU (and this CUDA device's) RNG state is the same after the block."""
    devices = (
        [device.index if device.index is not None else torch.cuda.current_device()]
        if device.type == "cuda"
        else []
    )
    with torch.random.fork_rng(devices=devices):
        yield


class AutoAttack(Attack):
    r"""AutoAttack ensembles from torchattacks; a sample counts as robust if none breaks it.

    Paper: "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", https://arxiv.org/abs/2003.01690.

    `version`: 'standard' (APGD-CE, APGD-T, FAB-T, Square), 'fast' (APGD-CE, APGD-T),
    'rand' (APGD-CE and APGD-DLR with 20-draw EOT), or one attack alone: 'apgd-ce',
    'apgd-dlr', 'apgd-t', 'fab-t', 'square'. `norm` 'linf' (ε 8/255) or 'l2' (ε 0.5).
    `n_classes` None: read from the model's output on the first call. `steps` (100) is the
    iteration count of APGD, APGD-T and FAB-T; `n_queries` (5,000) Square's query budget;
    `target_classes` (9) how many of the most likely wrong classes APGD-T and FAB-T target.
    The seed of each call is drawn from the attack's generator, so a seed fixes the result.

    Shapes: x (B, C, H, W) pixels in [0, 1]; y (B,) labels; returns x_adv like x.
    """

    name = "autoattack"

    def __init__(
        self,
        model: nn.Module,
        *,
        version: str = "standard",
        norm: str = "linf",
        eps: float | None = None,
        seed: int | None = None,
        n_classes: int | None = None,
        steps: int = 100,
        n_queries: int = 5000,
        target_classes: int = 9,
    ):
        params = {
            "version": version,
            "norm": norm,
            "eps": eps,
            "seed": seed,
            "n_classes": n_classes,
            "steps": steps,
            "n_queries": n_queries,
            "target_classes": target_classes,
        }
        check_autoattack(params, path="")
        super().__init__(model, norm=norm, eps=eps, steps=steps, random_start=True, restarts=1, seed=seed)
        self.version = version
        self.n_classes = n_classes
        self.n_queries = int(n_queries)
        self.target_classes = int(target_classes)

    def settings(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "attacks": list(AUTOATTACK_VERSIONS[self.version]),
            "norm": self.norm,
            "eps": self.eps,
            "seed": self.seed,
            "n_classes": self.n_classes,
            "steps": self.steps,
            "n_queries": self.n_queries,
            # what APGD-T and FAB-T really target: at most the wrong classes there are
            "target_classes": self._targets() if self.n_classes is not None else self.target_classes,
            "library": f"torchattacks {torchattacks_version()}",
        }

    def perturb(self, x: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
        if self.n_classes is None:
            with torch.no_grad():
                self.n_classes = int(self.model(x[:1]).shape[1])
        self._check_classes()
        call_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=x.device).item())
        device = x.device
        with private_rng(device), frozen_parameters(self.model):
            attack = self._build(call_seed)
            x_adv = attack(x, y)
        # torchattacks' arithmetic can leave the box by one ulp; the projection is ours.
        return self.project(x_adv.detach(), x)

    def _targets(self) -> int:
        return max(1, min(self.target_classes, self.n_classes - 1))

    def _check_classes(self) -> None:
        for name in AUTOATTACK_VERSIONS[self.version]:
            if self.n_classes < _MIN_CLASSES[name]:
                raise SpecError(
                    "autoattack.version",
                    "min_classes",
                    f"autoattack.version: {name} in version {self.version!r} needs at least "
                    f"{_MIN_CLASSES[name]} classes, the model has {self.n_classes}; "
                    "use version 'apgd-ce' or 'square'",
                    {"received": self.version, "n_classes": self.n_classes},
                )

    def _build(self, seed: int) -> Any:
        ta = import_torchattacks()
        norm, eps, model = _NORMS[self.norm], self.eps, self.model
        targets = self._targets()
        common = {"norm": norm, "eps": eps, "seed": seed, "verbose": False}
        eot = 20 if self.version == "rand" else 1
        attacks = []
        for name in AUTOATTACK_VERSIONS[self.version]:
            if name in ("apgd-ce", "apgd-dlr"):
                loss = "ce" if name == "apgd-ce" else "dlr"
                atk = ta.APGD(model, steps=self.steps, n_restarts=1, loss=loss, eot_iter=eot, **common)
            elif name == "apgd-t":
                atk = ta.APGDT(model, steps=self.steps, n_restarts=1, n_classes=self.n_classes, **common)
                atk.n_target_classes = targets
            elif name == "fab-t":
                atk = ta.FAB(
                    model,
                    steps=self.steps,
                    n_restarts=1,
                    multi_targeted=True,
                    n_classes=self.n_classes,
                    **common,
                )
                atk.n_target_classes = targets
            else:
                atk = ta.Square(model, n_queries=self.n_queries, n_restarts=1, **common)
            attacks.append(atk)
        return attacks[0] if len(attacks) == 1 else ta.MultiAttack(attacks)


def check_autoattack(params: dict[str, Any], path: str = "autoattack") -> None:
    """Semantic rules of an AutoAttack spec; SpecError names the field."""

    def at(field: str) -> str:
        return f"{path}.{field}" if path else field

    version = params.get("version", "standard")
    if version not in AUTOATTACK_VERSIONS:
        raise SpecError(
            at("version"),
            "enum",
            f"{at('version')}: unknown AutoAttack version {version!r}; known: {list(AUTOATTACK_VERSIONS)}",
            {"received": version, "allowed": list(AUTOATTACK_VERSIONS)},
        )
    norm = params.get("norm", "linf")
    if norm not in _NORMS:
        raise SpecError(
            at("norm"),
            "enum",
            f"{at('norm')}: AutoAttack supports norms {list(_NORMS)}, got {norm!r}",
            {"received": norm, "allowed": list(_NORMS)},
        )
    if params.get("eps") is not None:
        check_number(at("eps"), params["eps"], minimum=0)
    if params.get("n_classes") is not None:
        check_number(at("n_classes"), params["n_classes"], minimum=2, integer=True)
    check_number(at("steps"), params.get("steps", 100), minimum=1, integer=True)
    check_number(at("n_queries"), params.get("n_queries", 5000), minimum=1, integer=True)
    check_number(at("target_classes"), params.get("target_classes", 9), minimum=1, integer=True)
    if params.get("seed") is not None:
        check_number(at("seed"), params["seed"], minimum=0, integer=True)
