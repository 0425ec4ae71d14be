"""Entry point of ``python -m featlib``."""

import sys

from featlib.cli import main

if __name__ == "__main__":
    sys.exit(main())
