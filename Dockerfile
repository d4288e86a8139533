# One image for every moov.olt process; the command picks the role:
#   moovolt gateway | moovolt worker | moovolt api | moovolt migrate
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH=/app/.venv/bin:$PATH

RUN pip install --no-cache-dir uv

WORKDIR /app

# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project

COPY . .
RUN uv sync --frozen --no-dev \
    && useradd --system --uid 10001 moovolt \
    && mkdir -p /app/.moovolt && chown moovolt /app/.moovolt

USER moovolt
EXPOSE 8000 9000
ENTRYPOINT ["moovolt"]
CMD ["api"]
