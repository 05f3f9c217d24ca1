"""The Celery side: the app (``workers.app``), the beat schedule (``workers.beat``), thin tasks.

``celery -A workers worker`` and ``celery -A workers.app worker`` both find the app: Celery looks
for ``workers.app``, a module here, then for ``workers.celery``, which this package gives lazily
(importing the app reads the settings, so nothing is built until a Celery command asks).
"""


def __getattr__(name: str):
    if name == "celery":
        from workers.app import app

        return app
    raise AttributeError(f"module 'workers' has no attribute {name!r}")
