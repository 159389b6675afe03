"""A part whose own import is broken (used by test_server): it must not be skipped silently."""

import no_such_dependency_for_blanklogo_tests  # noqa: F401
