"""The Celery side: the app (``workers.app``), the beat schedule (``workers.beat``), thin tasks.

``celery -A workers worker`` and ``celery -A workers.app worker`` both find the app: Celery looks
for ``workers.app``, a module here, then for ``workers.celery``, which this package gives lazily
(importing the app reads the settings, so nothing is built until a Celery command asks).

A worker scores a batch's readers with small numpy products; OpenBLAS would start a thread per core
for them and keep it spinning between batches, beside the other worker processes. One thread per
process (unless the operator sets ``OPENBLAS_NUM_THREADS``), set before numpy is first imported.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def __getattr__(name: str):
    if name == "celery":
        from workers.app import app

        return app
    raise AttributeError(f"module 'workers' has no attribute {name!r}")
