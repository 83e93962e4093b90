"""``python -m codeclab.pipeline.eval eval run ...``: the eval commands without the main CLI."""

import sys

from .cli_commands import main

if __name__ == "__main__":
    sys.exit(main())
