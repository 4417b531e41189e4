"""Hypothesis strategies shared by the data-driven model tests."""

from hypothesis import strategies as st

from stream.attribution.paths import PathCount

COUNTS = st.builds(
    PathCount,
    conversions=st.integers(0, 4).map(float),
    value=st.integers(0, 100).map(float),
    nulls=st.integers(0, 4).map(float),
)


def path_stats(channels: tuple[str, ...], max_paths: int) -> st.SearchStrategy:
    """Small random path counts over `channels`: up to `max_paths` paths of 1-5 touches."""
    paths = st.lists(st.sampled_from(channels), min_size=1, max_size=5).map(tuple)
    return st.dictionaries(paths, COUNTS, max_size=max_paths)
