"""``python -m policies_export POLICY.onnx --robot KIND:ARG``: the same as ``robopg-controller`` (cli.py)."""

from policies_export.cli import main

raise SystemExit(main())
