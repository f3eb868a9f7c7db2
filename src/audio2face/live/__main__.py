"""``python -m audio2face.live``: the ``live`` command on its own."""

from __future__ import annotations

import sys

from audio2face.live.cli import main

sys.exit(main())
