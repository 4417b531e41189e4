"""`python -m stream.cli` is `touchstream`."""

import sys

from stream.cli import main

sys.exit(main())
