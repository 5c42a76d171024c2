# The salespulse image for docker-compose.yml (worker and serve). Kafka and ClickHouse run
# as their own images there, so no JDK is needed here.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY nlp nlp
COPY pipeline pipeline
COPY agents agents
RUN pip install --no-cache-dir . && useradd --system --uid 10001 salespulse \
    && mkdir -p /var/lib/salespulse /var/lib/salespulse-models \
    && chown salespulse /var/lib/salespulse /var/lib/salespulse-models
USER salespulse
EXPOSE 8080
ENV SALESPULSE_VAR_DIR=/tmp/salespulse
ENTRYPOINT []
