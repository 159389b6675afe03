import pytest

from core.errors import IllegalTransition
from core.jobs import JobState, sources_of, transition


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("queued", "processing"),
        ("processing", "completed"),
        ("processing", "failed"),
        ("processing", "queued"),
        ("queued", "cancelled"),
        ("processing", "cancelled"),
        ("failed", "queued"),
    ],
)
def test_design_transitions_are_allowed(current: str, target: str) -> None:
    assert transition(current, target) == JobState(target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("completed", "queued"),
        ("completed", "failed"),
        ("queued", "completed"),
        ("queued", "failed"),
        ("failed", "completed"),
        ("cancelled", "processing"),
    ],
)
def test_illegal_moves_raise(current: str, target: str) -> None:
    with pytest.raises(IllegalTransition):
        transition(current, target)


def test_sources_of_queued_are_the_states_that_may_requeue() -> None:
    assert sources_of(JobState.QUEUED) == {JobState.PROCESSING, JobState.FAILED, JobState.CANCELLED}
