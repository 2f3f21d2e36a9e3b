"""``python -m minidocker`` is the same as the ``minidocker`` command."""

import sys

from minidocker.cli.main import main

sys.exit(main())
