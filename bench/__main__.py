"""``python -m bench``: every benchmark, one table of targets."""

from bench.run_all import main

raise SystemExit(main())
