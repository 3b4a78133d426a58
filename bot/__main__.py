"""`python -m bot` is the same as the `evangelist` command."""

from bot.cli import main

raise SystemExit(main())
