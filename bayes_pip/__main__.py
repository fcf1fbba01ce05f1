"""`python -m bayes_pip`: hand over to the command-line interface."""

import sys

from bayes_pip.cli import main

sys.exit(main())
