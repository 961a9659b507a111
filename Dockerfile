# routectl controller image. Build it with `make image` (scripts/image.sh), never a plain `docker build .`:
# the build context is a directory that script assembles from wheels it built on the host, so the build
# needs no network:
#   constraints.txt  the pins (the repository's lock; `make lock` refreshes it)
#   wheels/          every dependency of routectl[$CLOUDS], as pinned, and nothing else
#   dist/            routectl's own wheel
# No `# syntax=` line and no BuildKit-only instruction: the builder of any Docker engine (the classic one
# of Debian's docker.io 20.10 included) builds it without fetching anything.
#
# Build arguments:
#   BASE_IMAGE  a Debian-like image with python3 (3.11, the version the wheels are built for) and its venv
#               module. Default python:3.11-slim; where no registry can be reached, scripts/image.sh builds
#               one from Debian packages (mmdebstrap) and passes it here.
#   CLOUDS      the extras to install: aws,gcp,alibaba (default) or any one of them (a single-cloud image).
#   VERSION, REVISION, CREATED   what the OCI labels record.
#
# Stage `deps` installs the dependency wheels offline into a venv (/opt/routectl), a layer cached until the
# pins change; the final stage copies that venv onto the base, installs routectl's wheel into it, proves the
# set complete (`pip check`) and removes pip. It runs as the chart's fixed non-root uid
# (helm/routectl/values.yaml runAsUser; a chart test checks they match) with nothing to write outside /tmp.
# SOURCE_DATE_EPOCH makes the .pyc files pip writes hash-checked, independent of file times.

ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS deps
COPY constraints.txt /build/constraints.txt
COPY wheels/ /build/wheels/
RUN python3 -m venv /opt/routectl \
    && SOURCE_DATE_EPOCH=0 /opt/routectl/bin/python -m pip install --no-cache-dir --no-index \
        --find-links=/build/wheels --constraint=/build/constraints.txt /build/wheels/*.whl

FROM ${BASE_IMAGE}
ARG CLOUDS=aws,gcp,alibaba
COPY --from=deps /opt/routectl /opt/routectl
COPY constraints.txt /build/constraints.txt
COPY dist/ /build/dist/
# The passwd/group entry is written directly: the Debian-packages base has no useradd.
RUN SOURCE_DATE_EPOCH=0 /opt/routectl/bin/python -m pip install --no-cache-dir --no-index \
        --find-links=/build/dist --constraint=/build/constraints.txt "routectl[${CLOUDS}]" \
    && /opt/routectl/bin/python -m pip check \
    && /opt/routectl/bin/python -m pip uninstall --yes --no-cache-dir pip setuptools \
    && rm -rf /build \
    && echo 'routectl:x:65532:65532:routectl:/nonexistent:/usr/sbin/nologin' >>/etc/passwd \
    && echo 'routectl:x:65532:' >>/etc/group \
    && /opt/routectl/bin/routectl version
ENV PATH=/opt/routectl/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
# Last, so that a new revision changes no layer but the labels.
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="routectl" \
      org.opencontainers.image.description="Allocates node podCIDRs and programs one VPC route per node (flannel alloc backend); clouds: ${CLOUDS}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/routectl/routectl" \
      org.opencontainers.image.documentation="https://github.com/routectl/routectl/tree/main/docs"
ENTRYPOINT ["routectl"]
CMD ["run"]
