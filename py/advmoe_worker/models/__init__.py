"""MoE-CNN models: one registry, one factory, dense and MoE forms of every backbone."""

# Backbone modules are imported for their registrations.
from . import densenet, resnet, vgg, wide_resnet  # noqa: F401
from .classifier import Classifier, Normalize, RoutedOutput
from .costs import count_macs, count_parameters, measure_costs
from .factory import create_model
from .moe import MoEConv2d, Route, top1_route
from .registry import BackboneConfig, get_model_entry, list_models, register_model
from .routers import ImageRouter, LayerGate, LayerRouter
from .routing import routing_stats, routing_warnings

__all__ = [
    "BackboneConfig",
    "Classifier",
    "ImageRouter",
    "LayerGate",
    "LayerRouter",
    "MoEConv2d",
    "Normalize",
    "Route",
    "RoutedOutput",
    "count_macs",
    "count_parameters",
    "create_model",
    "get_model_entry",
    "list_models",
    "measure_costs",
    "register_model",
    "routing_stats",
    "routing_warnings",
    "top1_route",
]
