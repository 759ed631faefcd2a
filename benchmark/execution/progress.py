"""The driver's progress: one bar per stage of the grid."""
from __future__ import annotations

from tqdm.auto import tqdm


class Progress:
    """One bar per stage, so a long stage never looks frozen: images embedded (with a rate), training parts
    augmented (with the synthetic images made), cells fitted and scored. Quiet when ``enabled`` is false."""

    def __init__(self, enabled: bool, cells: int, augmenting: int):
        def bar(position: int, desc: str, unit: str, total: int | None) -> tqdm:
            return tqdm(total=total, desc=desc, unit=unit, position=position, leave=True, disable=not enabled,
                        dynamic_ncols=True)

        self.embedding = bar(0, "embed images", "img", 0)
        self.augmenting = bar(1, "augment parts", "part", augmenting)
        self.cells = bar(2, "fit+score cells", "cell", cells)
        self.synthetic = 0

    def to_embed(self, images: int) -> None:
        if images:
            self.embedding.total += images
            self.embedding.refresh()

    def embedded(self, images: int) -> None:
        self.embedding.update(images)

    def augmented(self, images: int) -> None:
        self.synthetic += images
        self.augmenting.set_postfix_str(f"{self.synthetic} synthetic images", refresh=False)
        self.augmenting.update(1)

    def close(self) -> None:
        for bar in (self.embedding, self.augmenting, self.cells):
            bar.close()
