"""advmoe worker: MoE-CNN models, attacks and AdvMoE training served over signed ZeroMQ."""

__version__ = "0.1.0"
