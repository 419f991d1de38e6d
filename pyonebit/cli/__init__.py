"""The command line, ``python -m pyonebit``: the commands (demo, bench,
convert, info) and their helpers; :mod:`pyonebit.cli.main` parses and dispatches."""
