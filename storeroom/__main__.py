"""Entry point of ``python -m storeroom`` (the ``storeroom`` command line)."""

import sys

from storeroom.cli import main

if __name__ == "__main__":
    sys.exit(main())
