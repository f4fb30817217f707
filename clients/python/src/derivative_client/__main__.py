"""``python -m derivative_client`` runs the ``deriv`` command."""

from .cli import main

raise SystemExit(main())
