"""From a data spec to validated files, splits, fitted transforms and datasets."""

from __future__ import annotations

from dataclasses import dataclass

from stgan.data.dataset import WindowDataset
from stgan.data.io import Source, open_source
from stgan.data.spec import DataSpec
from stgan.data.transforms import Transforms, fit_transforms, train_statistics
from stgan.data.windows import TimeLayout, build_layout
from stgan.errors import SpecError


@dataclass
class PreparedData:
    """A spec checked against its files: the source, its time layout, train statistics
    (physical units) and the transforms fitted on them."""

    spec: DataSpec
    source: Source
    layout: TimeLayout
    stats: dict[str, dict]
    transforms: Transforms

    def dataset(
        self, split: str = "train", patch: int | None = None, seed: int | None = None
    ) -> WindowDataset:
        """The windows of ``split``; ``patch`` and ``seed`` default to the spec's."""
        if split not in self.layout.windows:
            raise SpecError(
                f"split '{split}' is not defined; defined: {', '.join(self.layout.windows)}"
            )
        return WindowDataset(
            self.source,
            self.layout.windows[split],
            self.transforms,
            self.spec.window.length,
            patch=self.spec.patch if patch is None else patch,
            seed=self.spec.seed if seed is None else seed,
            cache=self.spec.cache == "memory",
        )


def prepare(spec: DataSpec, transforms: Transforms | None = None) -> PreparedData:
    """Validate files and splits, stream the train statistics and fit the transforms.

    Pass saved ``transforms`` (e.g. when resuming) to reuse them instead of refitting.
    """
    source = open_source(spec)
    layout = build_layout(source.time, spec.split, spec.window)
    kinds = {name: v.transform for name, v in spec.variables.items()}
    train = slice(*layout.splits["train"])
    stats = train_statistics(source.to_dask(), kinds, source.dims.time, train)
    fitted = fit_transforms(stats, kinds)
    return PreparedData(spec, source, layout, stats, transforms or fitted)
