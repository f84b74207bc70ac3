"""Lets this checkout run its own suite even where specgate is not pip-installed.

Installed (pip install -e .), the pytest11 entry point has already loaded the plugin.
"""

import sys
from pathlib import Path

try:
    import specgate  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).parent / "src"))
    pytest_plugins = ["specgate.plugin"]
