# One image for every role: web (gunicorn), worker, beat, migrate.
# The project is installed as a wheel (non-editable): the image holds no source checkout, and the
# wheel carries alembic/ and email_templates/ itself (digest/_resources).
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY digest ./digest
COPY workers ./workers
COPY email_templates ./email_templates
COPY alembic ./alembic
RUN pip wheel --no-cache-dir --no-deps -w /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /dist /dist
RUN pip install --no-cache-dir /dist/*.whl && rm -rf /dist \
    && useradd --create-home --uid 10001 digest \
    && mkdir -p /data /var/lib/digest/metrics && chown digest /data /var/lib/digest/metrics
WORKDIR /data
USER digest
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-", "digest.web:create_app()"]
