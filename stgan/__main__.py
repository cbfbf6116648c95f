import sys

from stgan.cli import main

sys.exit(main())
