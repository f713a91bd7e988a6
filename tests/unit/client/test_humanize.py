from __future__ import annotations

import pytest

from nbdock.client.humanize import human_duration, human_size


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"), (60, "About a minute"),
     (150, "2 minutes"), (3600, "About an hour"), (47 * 3600, "47 hours"),
     (3 * 86400, "3 days"), (20 * 86400, "2 weeks"), (90 * 86400, "3 months"),
     (56 * 365 * 86400, "56 years")],
)
def test_durations_word_like_docker(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize(("size", "text"), [(0, "0B"), (999, "999B"), (2_130_000, "2.13MB"),
                                            (5 * 10**12, "5TB")])
def test_sizes_are_decimal_like_docker(size: int, text: str) -> None:
    assert human_size(size) == text
