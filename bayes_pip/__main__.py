"""`python -m bayes_pip`: hand over to the command-line interface."""

import sys

try:   # Ctrl-C while the libraries are still importing: the same one line as later
    from bayes_pip.cli import main
except KeyboardInterrupt:
    sys.stderr.write("bayes_pip: interrupted; nothing was written\n")
    sys.exit(130)

sys.exit(main())
