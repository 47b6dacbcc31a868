import sys
from pathlib import Path

# the MCP face's test helpers (tests/mcp): the browser tests make plans through a real MCP client
sys.path.insert(0, str(Path(__file__).parent.parent / "mcp"))

from _console_support import _no_failure_delay  # noqa: E402,F401 (an autouse fixture for every console test)
