# One image for every role: web (gunicorn), worker, beat, migrate.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md alembic.ini ./
COPY digest ./digest
COPY workers ./workers
COPY email_templates ./email_templates
COPY alembic ./alembic
RUN pip install --no-cache-dir -e . \
    && useradd --create-home --uid 10001 digest \
    && mkdir -p /app/data && chown digest /app/data

USER digest
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-", "digest.web:create_app()"]
