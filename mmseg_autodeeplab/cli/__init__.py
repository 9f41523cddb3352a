"""What the scripts in ``tools/`` run: one module per command-line tool
(argparse ``main``), importable for tests and other tools."""
