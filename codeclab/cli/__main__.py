"""``python -m codeclab.cli ARGS`` = ``codeclab ARGS``."""

import sys

from codeclab.cli import main

sys.exit(main())
