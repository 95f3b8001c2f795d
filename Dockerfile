# Junction as a JupyterHub single-user image (KubeSpawner, zero-to-jupyterhub, DockerSpawner).
# Like the jupyter/docker-stacks images: user jovyan, uid 1000, gid 100, home /home/jovyan.
# Build: docker build -t junction-singleuser .   See docs/jupyterhub.md.
FROM python:3.12-slim-bookworm

ARG NB_USER=jovyan
ARG NB_UID=1000
ARG NB_GID=100

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/${NB_USER} \
    SHELL=/bin/bash

# tini reaps zombies and forwards SIGTERM (the Hub's stop) to the server, which stops kernels.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.* \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid "${NB_UID}" --gid "${NB_GID}" --shell /bin/bash "${NB_USER}"

COPY --chown=${NB_UID}:${NB_GID} . /tmp/junction
RUN pip install "/tmp/junction[lab]" \
    && rm -rf /tmp/junction

USER ${NB_UID}
WORKDIR /home/${NB_USER}
EXPOSE 8888

HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-m", "junction.plugins.hub.healthcheck"]

ENTRYPOINT ["tini", "-g", "--"]
CMD ["junction-singleuser"]
