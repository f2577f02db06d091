"""`python -m medtrans` runs the CLI."""

import sys

from medtrans.cli import main

sys.exit(main())
