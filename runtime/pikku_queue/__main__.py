"""`python -m pikku_queue worker --registry PKG …`: the worker runner (`pikku_queue.runner`)."""

import sys

from pikku_queue.runner import main

if __name__ == "__main__":
    sys.exit(main())
