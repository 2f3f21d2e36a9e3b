"""The course map (minidocker/coursemap.py): every chapter is placed on it and highlights its own parts."""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")

from minidocker.coursemap import CHAPTERS, PARTS, chapters_of, map_figure  # noqa: E402

pytestmark = pytest.mark.ch00


def test_every_chapter_00_to_14_has_a_part_on_the_map():
    assert list(CHAPTERS) == [f"{n:02d}" for n in range(15)]
    placed = {c for part in PARTS for c in part.chapters}
    assert placed == set(CHAPTERS), f"chapters without a part: {set(CHAPTERS) - placed}"


def test_parts_do_not_overlap():
    def overlap(a, b):
        return a.x < b.x + b.width and b.x < a.x + a.width and a.y < b.y + b.height and b.y < a.y + a.height
    clashes = [(a.label, b.label) for i, a in enumerate(PARTS) for b in PARTS[i + 1:] if overlap(a, b)]
    assert clashes == []


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_the_map_of_each_chapter_draws_and_highlights_its_parts(chapter: str, tmp_path):
    import matplotlib.pyplot as plt

    fig = map_figure(chapter)
    try:
        fig.savefig(tmp_path / "map.png", dpi=40)
        assert (tmp_path / "map.png").stat().st_size > 5000
        labels = {t.get_text() for t in fig.axes[0].texts}
        mine = chapters_of(chapter)
        assert mine and {p.label for p in mine} <= labels
        assert chapter in fig.axes[0].get_title(loc="left") or chapter == "00"
    finally:
        plt.close(fig)


def test_an_unknown_chapter_is_a_clear_error():
    with pytest.raises(ValueError, match="no chapter '15' on the map"):
        map_figure("15")
    assert [p.label for p in chapters_of(4)] == ["cgroups"]
