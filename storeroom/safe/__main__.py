"""Entry point of ``python -m storeroom.safe``."""

import sys

from storeroom.safe.cli import main

if __name__ == "__main__":
    sys.exit(main())
