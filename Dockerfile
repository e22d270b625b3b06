# Pterodisbot: a Discord bot showing Pterodactyl or Pelican game-server status.
#
# Build:  docker build -t pterodisbot .
# Run:    docker run -d --name pterodisbot --env-file pterodisbot.env \
#           -v pterodisbot-embed:/app/embed -v pterodisbot-logs:/app/logs pterodisbot
# Check:  docker run --rm --env-file pterodisbot.env -v pterodisbot-embed:/app/embed pterodisbot --check
# Configuration comes from environment variables (see docker-compose.yml) or from a config.ini
# mounted at /app/config.ini (or anywhere, with CONFIG_FILE pointing to it).
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app

# Dependencies first, the whole tree pinned: this layer is rebuilt only when they change.
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt

# An unprivileged user with a fixed uid/gid, so host directories can be prepared for it
# (e.g. `chown 10001:10001 ./logs ./embed` before bind-mounting them).
RUN groupadd --gid 10001 pterodisbot \
 && useradd --uid 10001 --gid pterodisbot --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin pterodisbot \
 && mkdir -p /app/embed /app/logs \
 && chown pterodisbot:pterodisbot /app/embed /app/logs

# Build matplotlib's font cache now (in MPLCONFIGDIR, owned by the bot user) rather than on the
# first graph of every new container.
RUN python -c "import matplotlib.font_manager" \
 && chown -R pterodisbot:pterodisbot "$MPLCONFIGDIR"

# The code last: it changes most often. Owned by root and read-only for the bot user.
COPY pterodisbot.py server_metrics_graphs.py config.ini.example ./
COPY ptero/ ./ptero/

USER 10001:10001

# Status-message locations and logs (with the heartbeat the healthcheck reads) survive restarts.
VOLUME ["/app/embed", "/app/logs"]

# Healthy while update cycles keep running: the bot writes logs/heartbeat.json after each cycle.
# The start period covers the Discord login, the command sync and the first cycle.
HEALTHCHECK --interval=30s --timeout=15s --start-period=120s --retries=3 \
    CMD ["python", "pterodisbot.py", "--healthcheck"]

# Arguments after the image name go to pterodisbot.py: none runs the bot, `--check` checks the setup
# read-only and says what to fix, `--help` lists the modes.
ENTRYPOINT ["python", "pterodisbot.py"]
CMD []
