"""Generators and discriminators for (B, T, C, H, W) sequences, built by name."""

from stgan.models.config import DiscriminatorConfig, GeneratorConfig
from stgan.models.generator import Generator
from stgan.models.registry import DISCRIMINATORS, GENERATORS, build_discriminator, build_generator

__all__ = [
    "DISCRIMINATORS",
    "GENERATORS",
    "DiscriminatorConfig",
    "Generator",
    "GeneratorConfig",
    "build_discriminator",
    "build_generator",
]
