# bankq: one image for the API, the workers, beat and the one-shot migration (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BANKQ_DATA_DIR=/data \
    WEB_CONCURRENCY=2 \
    OMP_THREAD_LIMIT=1

WORKDIR /app

# tesseract (with its English model) reads identity documents in the kyc worker; one thread per process,
# the worker scales by processes. libgl1 and libglib2.0-0: OpenCV (opencv-python, for the second recogniser) loads them.
# pgbouncer: compose's optional connection pooler (profile "pooled") runs from this image too.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng libgl1 libglib2.0-0 pgbouncer \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.txt .
RUN pip install -r requirements.txt

# The code stays owned by root (read-only to the app); only /data is writable.
RUN useradd --create-home --uid 10001 --user-group bankq \
    && mkdir -p /data \
    && chown bankq:bankq /data
COPY . .

USER bankq
EXPOSE 8000

# gunicorn reads WEB_CONCURRENCY for its number of worker processes.
# api.gunicorn_conf: gunicorn's own error answers are problem documents too (no --worker-class here).
CMD ["gunicorn", "-c", "python:api.gunicorn_conf", "--bind", "0.0.0.0:8000", "--threads", "64", \
     "--graceful-timeout", "10", "--access-logfile", "-", "api.wsgi:app"]
