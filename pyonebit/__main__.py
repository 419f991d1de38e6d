"""python -m pyonebit: the command line (pyonebit.cli.main holds the commands)."""
import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
