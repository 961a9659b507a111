# syntax=docker/dockerfile:1
# routectl controller image. Stage 1 builds wheels (routectl and every dependency); stage 2 installs
# them offline into a slim Python with no compiler, no pip and no build backends, and runs as the
# chart's fixed non-root uid (helm/routectl/values.yaml runAsUser; a chart test checks they match).

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md* ./
COPY routectl ./routectl
COPY providers ./providers
COPY ipam ./ipam
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels routectl \
    && pip uninstall --yes --no-cache-dir setuptools wheel pip \
    && groupadd --gid 65532 routectl \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin routectl
USER 65532:65532
ENTRYPOINT ["routectl"]
CMD ["run"]
