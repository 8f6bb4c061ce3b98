"""python -m vidtoon: the same as the `vidtoon` command."""

from .cli import main

raise SystemExit(main())
