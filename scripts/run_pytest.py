"""Run pytest and exit with its status, whatever happens at interpreter exit.

temporalio's native runtime can abort the interpreter during shutdown after
every test has passed (https://github.com/temporalio/sdk-python/issues/300),
which would turn a green run red. Exit straight from here instead.
"""

import os
import sys

import pytest

if __name__ == "__main__":
    code = int(pytest.main(sys.argv[1:]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
