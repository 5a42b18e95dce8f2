"""``python -m airflow_provider_fuse.sandbox``: the same as the ``fuse-sandbox`` console script."""

from __future__ import annotations

import sys

from airflow_provider_fuse.sandbox.cli import main

sys.exit(main())
