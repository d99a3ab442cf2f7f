"""``python -m chainrule`` runs the command line (``chainrule train`` ...)."""

import sys

from chainrule.cli import main

sys.exit(main())
