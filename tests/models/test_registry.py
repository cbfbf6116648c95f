import pytest

from stgan.config import build
from stgan.errors import SpecError, StganError
from stgan.models import (
    DISCRIMINATORS,
    GENERATORS,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    build_discriminator,
    build_generator,
)
from stgan.models.discriminator import Conv3dDiscriminator, DualDiscriminator
from stgan.models.layers import ConvGRUCell, ConvLSTMCell


def test_every_name_builds():
    cells = {"convgru": ConvGRUCell, "convlstm": ConvLSTMCell}
    for name in GENERATORS:
        g = build_generator(
            GeneratorConfig(name=name, base_channels=4), channels=1, height=8, width=8, frames=4
        )
        assert isinstance(g, Generator)
        if name in cells:
            assert isinstance(g.cells[0], cells[name])
    kinds = {"conv3d": Conv3dDiscriminator, "dual": DualDiscriminator}
    for name in DISCRIMINATORS:
        d = build_discriminator(
            DiscriminatorConfig(name=name, base_channels=4), channels=1, height=8, width=8, frames=4
        )
        assert isinstance(d, kinds[name])


def test_unknown_names_list_the_known_ones():
    # A config built in code skips the Literal check that stgan.config.build does.
    with pytest.raises(
        StganError, match="unknown generator 'gru'; choose one of conv3d, convgru, convlstm"
    ):
        build_generator(GeneratorConfig(name="gru"), channels=1, height=8, width=8, frames=4)
    with pytest.raises(
        StganError, match="unknown discriminator 'patch'; choose one of conv3d, dual"
    ):
        build_discriminator(
            DiscriminatorConfig(name="patch"), channels=1, height=8, width=8, frames=4
        )


def test_configs_build_from_yaml_mappings():
    g = build(
        GeneratorConfig, {"name": "convlstm", "conditional": True, "context_frames": 3}, "generator"
    )
    assert g == GeneratorConfig(name="convlstm", conditional=True, context_frames=3)
    assert build(DiscriminatorConfig, None, "discriminator") == DiscriminatorConfig()


@pytest.mark.parametrize(
    "cls, mapping, message",
    [
        (GeneratorConfig, {"name": "gru"}, r"generator.name: 'gru' is not allowed.*'convgru'"),
        (
            GeneratorConfig,
            {"latent_dims": 8},
            r"generator.latent_dims: unknown key; did you mean 'latent_dim'",
        ),
        (
            GeneratorConfig,
            {"latent_dim": 0},
            r"generator.latent_dim: 0 is out of range; use an integer >= 1",
        ),
        (GeneratorConfig, {"noise_channels": -1}, r"generator.noise_channels: -1 is out of range"),
        (GeneratorConfig, {"up_stages": 7}, r"generator.up_stages: 7 is out of range; use 0 to 6"),
        (
            GeneratorConfig,
            {"temporal_up_stages": 3},
            r"temporal_up_stages: 3 .* use 0 to up_stages \(2\)",
        ),
        (GeneratorConfig, {"spectral_norm": "yes"}, r"generator.spectral_norm: expected bool"),
        (
            GeneratorConfig,
            {"name": "conv3d", "decoder_noise": True},
            r"generator.decoder_noise: True is out of range; needs a recurrent generator",
        ),
        (
            GeneratorConfig,
            {"noise_channels": 0, "decoder_noise": True},
            r"decoder_noise: .* noise_channels >= 1",
        ),
        (
            DiscriminatorConfig,
            {"name": "dual", "num_frames": 0},
            r"discriminator.num_frames: 0 is out of range",
        ),
        (DiscriminatorConfig, {"num_stages": 0}, r"discriminator.num_stages: 0 is out of range"),
    ],
)
def test_config_errors_name_the_key(cls, mapping, message):
    where = "generator" if cls is GeneratorConfig else "discriminator"
    with pytest.raises(SpecError, match=message):
        build(cls, mapping, where)
