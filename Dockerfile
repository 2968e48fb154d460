# The agora node and command line. A 4-validator testnet: deploy/compose.yaml.
#
#   docker build -t agora .
#   docker run --rm agora --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The package only (.dockerignore keeps tests, caches and local chains out). plyvel's
# wheel carries its own LevelDB, so no compiler is needed.
COPY . /src
RUN pip install /src \
    && mkdir -p /opt/agora \
    && cp -r /src/deploy /opt/agora/deploy \
    && rm -rf /src \
    && useradd --create-home --uid 10001 agora \
    && mkdir -p /testnet/validator0 /testnet/validator1 /testnet/validator2 /testnet/validator3 \
    && chown -R agora:agora /testnet

# Node homes hold keys (mode 0600): the node runs as its own user, not root.
# /testnet/validatorN: where deploy/compose.yaml mounts each validator's home volume
# (made here so that a new volume starts owned by that user).
USER agora
WORKDIR /home/agora

# Peers (p2p) and JSON-RPC.
EXPOSE 26656 26657

ENTRYPOINT ["agora"]
CMD ["--help"]
