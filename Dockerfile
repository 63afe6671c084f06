# Laowu: one image for the web server (`laowu serve`) and the outbox worker (`laowu worker`).
# The scaled deployment (docker-compose.yml) runs it against PostgreSQL and Meilisearch.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    LAOWU_ENV=production \
    LAOWU_VAR_DIR=/var/lib/laowu \
    LAOWU_MEDIA_DIR=/var/lib/laowu/media

RUN groupadd --system laowu && useradd --system --gid laowu --home-dir /app laowu

WORKDIR /app
COPY pyproject.toml README.md ./
COPY marketplace ./marketplace
COPY matching ./matching
COPY billing ./billing
COPY web ./web
COPY migrations ./migrations
RUN pip install --upgrade pip && pip install .

RUN mkdir -p /var/lib/laowu/media && chown -R laowu:laowu /var/lib/laowu
USER laowu
VOLUME ["/var/lib/laowu"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"

# Production refuses to start without LAOWU_DATA_KEY and LAOWU_SECRET_KEY.
CMD ["laowu", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
