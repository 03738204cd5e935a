# Python and pytest from Debian's archive: the runtime the example tasks and gold environments share.
FROM cligym/base:bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip python3-venv python3-pytest python3-setuptools python3-wheel ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1
