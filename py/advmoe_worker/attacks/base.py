"""The Attack base class: every bit of bookkeeping, so an attack writes only its loss.

The base owns what every evidence-grade attack must get right and what is easy to get
subtly wrong when each attack does it alone:

- eval mode during the attack, and each submodule's own train/eval flag restored after;
- the model's device and dtype (inputs come back on the caller's device and dtype);
- the step (signed gradient for L∞, unit-L2 gradient for L2), the projection onto the
  ε-ball around the clean input, and the clamp to [0, 1] pixels;
- randomness from a `torch.Generator` seeded per call, never the global RNG, so the same
  seed gives the same result and callers' RNG streams are untouched;
- gradients taken with `torch.autograd.grad` w.r.t. the input only, so no parameter
  `.grad` is ever written;
- restarts, keeping per sample the strongest example found;
- a gradient-masking check: input gradients that are exactly zero or non-finite are
  counted per sample and step (`Attack.stats`) so a report can warn.

A subclass sets `name`, `norms` and `requires_moe`, and implements `loss` (per-sample,
to be maximized); it may override `prepare` (clean-input context), `init` (start point)
and `succeeded` (what counts as a win when choosing between restarts).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import BadTensorError, SpecError

NORMS = ("linf", "l2")

# Defaults of the paper's evaluation (ε = 8/255, PGD step 2/255) for L∞; for L2 the common
# CIFAR setting (ε = 0.5) with step ε/5 so that 10 steps can cross the ball twice.
DEFAULT_EPS = {"linf": 8 / 255, "l2": 0.5}
DEFAULT_STEP_SIZE = {"linf": 2 / 255, "l2": 0.1}

_PIXEL_SLACK = 1e-6  # inputs may overshoot [0, 1] by float rounding, no more


@dataclass
class GradientStats:
    """Health of the input gradients an attack saw, counted per sample and step.

    Many zero gradients mean the loss is flat where the attack stands (saturated softmax,
    a non-differentiable or constant model): a sign of gradient masking, and a reason to
    trust a high robust accuracy less. Non-finite ones are zeroed before the step.
    """

    sample_steps: int = 0  # samples x steps for which a gradient was taken
    zero: int = 0  # of those, gradients that were exactly zero everywhere
    non_finite: int = 0  # of those, gradients with a NaN or ±inf entry

    def add(self, other: GradientStats) -> None:
        self.sample_steps += other.sample_steps
        self.zero += other.zero
        self.non_finite += other.non_finite

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Puts every submodule in eval mode, then gives each its own previous flag back."""
    states = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in states:
            module.training = training  # not .train(): that would recurse into children


@contextlib.contextmanager
def unchanged(model: nn.Module) -> Iterator[None]:
    """Eval mode inside; after, every module's mode and every buffer are what they were.

    Eval mode alone keeps BatchNorm statistics still, but a caller may run the model in
    its own mode inside the block; restoring the buffers makes "measuring never changes
    the model" hold whatever runs there.
    """
    saved = {name: b.detach().clone() for name, b in model.named_buffers()}
    try:
        with eval_mode(model):
            yield
    finally:
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name in saved:
                    b.copy_(saved[name])


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters (else buffers) live; CPU for a stateless model."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype:
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()


def check_batch(x: Any, y: Any) -> None:
    """x (B, C, H, W) floating pixels in [0, 1]; y (B,) integer labels."""
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        shape = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
        dtype = str(x.dtype) if isinstance(x, Tensor) else None
        raise BadTensorError(
            f"attack input x must be a floating (B, C, H, W) tensor, got shape {shape} dtype {dtype}",
            {"path": "x", "expected": ["B", "C", "H", "W"], "received": shape, "dtype": dtype},
        )
    if x.numel():
        low, high = torch.stack([x.amin(), x.amax()]).tolist()  # one host sync
        if not (low >= -_PIXEL_SLACK and high <= 1 + _PIXEL_SLACK):  # NaN fails too
            raise BadTensorError(
                f"attack input x must hold pixels in [0, 1], got values from {low:.4g} "
                f"to {high:.4g} (normalization belongs inside the model)",
                {"path": "x", "min": low, "max": high},
            )
    if (
        not isinstance(y, Tensor)
        or y.dim() != 1
        or y.is_floating_point()
        or y.is_complex()
        or y.dtype == torch.bool
        or y.shape[0] != x.shape[0]
    ):
        shape = list(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise BadTensorError(
            f"attack labels y must be an integer tensor of shape [{x.shape[0]}], got {shape}",
            {"path": "y", "expected": [x.shape[0]], "received": shape},
        )


def per_sample_norm(t: Tensor, norm: str) -> Tensor:
    """(B, ...) -> (B,) L∞ or L2 norm of each sample."""
    flat = t.flatten(1)
    if norm == "linf":
        return flat.abs().amax(dim=1)
    return flat.norm(p=2, dim=1)


def check_number(
    path: str, value: Any, *, minimum: float, integer: bool = False, exclusive: bool = False
) -> None:
    """SpecError naming `path` unless value is a finite number >= (or >) minimum."""
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok or not math.isfinite(value):
        raise SpecError(path, "type", f"{path} must be {kind}, got {value!r}", {"received": repr(value)})
    if value < minimum or (exclusive and value == minimum):
        rule = "exclusiveMinimum" if exclusive else "minimum"
        sign = ">" if exclusive else ">="
        raise SpecError(
            path,
            rule,
            f"{path} must be {sign} {minimum}, got {value!r}",
            {"received": value, "limit": minimum},
        )


class Attack:
    """An attack on a classifier whose inputs are pixels in [0, 1].

    Call it as `attack(x, y, seed=None) -> x_adv`: x (B, C, H, W) in [0, 1], y (B,) labels;
    x_adv has x's shape, device and dtype, lies in [0, 1] and within `eps` of x in `norm`.
    `seed` overrides the attack's own seed for this call (e.g. one per batch).
    """

    name: ClassVar[str] = ""
    norms: ClassVar[tuple[str, ...]] = NORMS  # norms this attack supports
    requires_moe: ClassVar[bool] = False  # needs a router (forward_routed with L >= 1)

    def __init__(
        self,
        model: nn.Module,
        *,
        norm: str = "linf",
        eps: float | None = None,
        steps: int = 10,
        step_size: float | None = None,
        random_start: bool = True,
        restarts: int = 1,
        seed: int | None = None,
    ):
        self.model = model
        params = {
            "norm": norm,
            "eps": eps,
            "steps": steps,
            "step_size": step_size,
            "random_start": random_start,
            "restarts": restarts,
            "seed": seed,
        }
        type(self).check_spec(params, model)
        self.norm: str = params["norm"]
        self.eps = float(DEFAULT_EPS[self.norm] if params["eps"] is None else params["eps"])
        self.steps = int(params["steps"])
        step = params["step_size"]
        self.step_size = float(DEFAULT_STEP_SIZE[self.norm] if step is None else step)
        self.random_start = bool(params["random_start"])
        self.restarts = int(params["restarts"])
        self.seed = 0 if params["seed"] is None else int(params["seed"])
        self.stats = GradientStats()
        self._pending: Tensor | None = None  # (non_finite, zero) counts not yet on the host

    @classmethod
    def check_spec(cls, params: dict[str, Any], model: nn.Module | None, path: str = "") -> None:
        """Semantic rules on the settings; SpecError names the field, prefixed by `path`."""
        check_common(cls, params, model, path)

    # ---- what a subclass writes -------------------------------------------------------

    def loss(self, x_adv: Tensor, y: Tensor, ctx: dict[str, Tensor]) -> Tensor:
        """(B,) per-sample loss that the attack maximizes; differentiable in x_adv."""
        raise NotImplementedError

    def prepare(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """What the loss needs from the clean input (runs without grad, in eval mode)."""
        return {}

    def init(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """Start point: x, or a uniform draw in the ε-ball with `random_start`."""
        if not self.random_start:
            return x.clone()
        if self.norm == "linf":
            noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            return self.project(x + (2 * noise - 1) * self.eps, x)
        # L2: a uniform direction times a radius uniform in [0, eps]
        direction = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        direction = direction / per_sample_norm(direction, "l2").clamp_min(1e-12).view(-1, 1, 1, 1)
        radius = torch.rand(x.shape[0], generator=generator, device=x.device, dtype=x.dtype)
        return self.project(x + direction * (radius * self.eps).view(-1, 1, 1, 1), x)

    def succeeded(self, x_adv: Tensor, y: Tensor, ctx: dict[str, Tensor]) -> Tensor:
        """(B,) bool: the attack won on this sample (default: misclassified)."""
        return self.model(x_adv).argmax(dim=1) != y

    # ---- settings and bookkeeping -------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """The exact settings a report states next to the numbers this attack produced."""
        return {
            "name": self.name,
            "norm": self.norm,
            "eps": self.eps,
            "steps": self.steps,
            "step_size": self.step_size,
            "restarts": self.restarts,
            "random_start": self.random_start,
            "seed": self.seed,
            **self.extra_settings(),
        }

    def extra_settings(self) -> dict[str, Any]:
        return {}

    def reset_stats(self) -> None:
        self.stats = GradientStats()
        self._pending = None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items() if k != "name")
        return f"{type(self).__name__}({args})"

    def __call__(self, x: Tensor, y: Tensor, *, seed: int | None = None) -> Tensor:
        check_batch(x, y)
        device, dtype = model_device(self.model), model_dtype(self.model)
        x0 = x.detach().to(device=device, dtype=dtype)
        y0 = y.detach().to(device=device, dtype=torch.long)
        generator = torch.Generator(device=device)
        generator.manual_seed(self.seed if seed is None else int(seed))
        try:
            with eval_mode(self.model), torch.enable_grad():
                x_adv = self.perturb(x0, y0, generator)
        finally:
            self.flush_stats()
        return x_adv.detach().to(device=x.device, dtype=x.dtype)

    def perturb(self, x: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
        """Restarts of the iterative attack; per sample, the strongest result wins."""
        with torch.no_grad():
            ctx = self.prepare(x, y)
        best = self.run(x, y, ctx, generator)
        if self.restarts == 1:
            return best
        with torch.no_grad():
            best_won, best_loss = self.succeeded(best, y, ctx), self.loss(best, y, ctx)
        for _ in range(self.restarts - 1):
            candidate = self.run(x, y, ctx, generator)
            with torch.no_grad():
                won, loss = self.succeeded(candidate, y, ctx), self.loss(candidate, y, ctx)
            # a win beats no win; between equals, the higher loss (NaN never wins)
            better = (won & ~best_won) | ((won == best_won) & (loss > best_loss))
            best = torch.where(better.view(-1, 1, 1, 1), candidate, best)
            best_won = best_won | won
            best_loss = torch.where(better, loss, best_loss)
        return best

    def run(self, x: Tensor, y: Tensor, ctx: dict[str, Tensor], generator: torch.Generator) -> Tensor:
        """One restart: start point, then `steps` ascent steps, each projected."""
        x_adv = self.init(x, generator)
        for _ in range(self.steps):
            # `_graph` holds the previous step's loss until this step's forward has run:
            # freeing it earlier measured ~10% slower on CPU (allocator churn: its buffers
            # go back to the OS and the next forward faults them in again).
            grad, _graph = self.input_grad(x_adv, y, ctx)
            x_adv = self.project(self.ascend(x_adv, grad), x)
        return x_adv

    def input_grad(self, x_adv: Tensor, y: Tensor, ctx: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """d(sum of per-sample losses)/d x_adv, with zero and non-finite ones counted; and the loss."""
        x_adv = x_adv.detach().requires_grad_(True)
        loss = self.loss(x_adv, y, ctx).sum()
        grad = None
        if loss.requires_grad:  # else the output does not depend on anything differentiable
            (grad,) = torch.autograd.grad(loss, x_adv, allow_unused=True)
        if grad is None:
            grad = torch.zeros_like(x_adv)
        return self.record(grad.detach()), loss

    def record(self, grad: Tensor) -> Tensor:
        """Counts zero / non-finite gradients per sample and zeroes non-finite entries.

        The counts stay on the device until the call ends (`flush_stats`): no host sync
        per step. A sample's gradient L2 norm is 0 exactly when the gradient is all zero,
        and NaN or inf when an entry is (or, in theory, when it overflows float).
        """
        norms = torch.linalg.vector_norm(grad.flatten(1), dim=1)  # (B,), the cheapest full reduction
        counts = torch.stack([(~torch.isfinite(norms)).sum(), (norms == 0).sum()])
        self._pending = counts if self._pending is None else self._pending + counts
        self.stats.sample_steps += grad.shape[0]
        return grad.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)

    def flush_stats(self) -> None:
        """Adds the counts gathered on the device during a call to `stats` (one host sync)."""
        if self._pending is not None:
            non_finite, zero = self._pending.tolist()
            self.stats.non_finite += int(non_finite)
            self.stats.zero += int(zero)
            self._pending = None

    def ascend(self, x_adv: Tensor, grad: Tensor) -> Tensor:
        """One step of size `step_size` along the steepest-ascent direction of the norm."""
        if self.norm == "linf":
            return x_adv + self.step_size * grad.sign()
        unit = grad / per_sample_norm(grad, "l2").clamp_min(1e-12).view(-1, 1, 1, 1)
        return x_adv + self.step_size * unit

    def project(self, x_adv: Tensor, x: Tensor) -> Tensor:
        """Onto the ε-ball around x, then into [0, 1] (which only shrinks the perturbation)."""
        delta = x_adv - x
        if self.norm == "linf":
            delta = delta.clamp(-self.eps, self.eps)
        else:
            norms = per_sample_norm(delta, "l2")
            delta = delta * (self.eps / norms.clamp_min(self.eps)).view(-1, 1, 1, 1)
        return (x + delta).clamp(0.0, 1.0)


def check_common(cls: type[Attack], params: dict[str, Any], model: nn.Module | None, path: str = "") -> None:
    """Rules every attack shares; SpecError names the field (prefixed by `path`)."""

    def at(field: str) -> str:
        return f"{path}.{field}" if path else field

    norm = params.get("norm", "linf")
    if norm not in cls.norms:
        raise SpecError(
            at("norm"),
            "enum",
            f"{at('norm')}: attack {cls.name!r} supports norms {list(cls.norms)}, got {norm!r}",
            {"received": norm, "allowed": list(cls.norms)},
        )
    if params.get("eps") is not None:
        check_number(at("eps"), params["eps"], minimum=0)
    check_number(at("steps"), params.get("steps", 1), minimum=1, integer=True)
    step = params.get("step_size")
    if step is not None:
        check_number(at("step_size"), step, minimum=0, exclusive=True)
    check_number(at("restarts"), params.get("restarts", 1), minimum=1, integer=True)
    if params.get("seed") is not None:
        check_number(at("seed"), params["seed"], minimum=0, integer=True)
    if not isinstance(params.get("random_start", True), bool):
        raise SpecError(at("random_start"), "type", f"{at('random_start')} must be a boolean")
    if cls.requires_moe and model is not None and not getattr(model, "is_moe", False):
        raise SpecError(
            at("name"),
            "requires_moe",
            f"{at('name')}: attack {cls.name!r} targets the routing and needs an MoE model; "
            "this model is dense",
            {"received": cls.name},
        )


def cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """(B, K), (B,) -> (B,) per-sample cross-entropy."""
    return F.cross_entropy(logits, y, reduction="none")
