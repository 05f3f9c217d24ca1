"""``python -m bench.worker <celery worker args>``: a Celery worker with :mod:`bench.whatif` applied.

Used only by ``python -m bench e2e --what-if`` to measure the proposed fixes in real workers (the
prefork children inherit the patches from the parent).
"""

import sys

from bench import whatif

whatif.apply()

from celery.__main__ import main  # noqa: E402

sys.argv = ["celery", *sys.argv[1:]]
sys.exit(main())
