from _console_support import _no_failure_delay  # noqa: F401 (an autouse fixture for every console test)
