"""The seed's Compose example end to end: a Django app (pip-installed during the build, FROM debian:bookworm) and
PostgreSQL from Debian's packages (healthcheck pg_isready); web depends on db being healthy. ``compose up -d``
serves the page on 127.0.0.1:8000 (a view that queries the database), ``compose down -v`` leaves nothing."""

from __future__ import annotations

import shutil
import socket
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import debian_module_root
from tests.helpers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DB_DOCKERFILE = """FROM debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends postgresql && rm -rf /var/lib/apt/lists/*
ENV PGDATA=/var/lib/postgresql/data
COPY start.sh /start.sh
CMD ["sh", "/start.sh"]
"""
DB_START = """set -e
mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA" && chmod 700 "$PGDATA"
BIN=$(echo /usr/lib/postgresql/*/bin)
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  runuser -u postgres -- "$BIN/initdb" -D "$PGDATA" -U postgres --auth=trust >/dev/null
  echo "host all all 0.0.0.0/0 trust" >> "$PGDATA/pg_hba.conf"
fi
exec runuser -u postgres -- "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp
"""
WEB_DOCKERFILE = """FROM debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip python3-psycopg2 \\
    ca-certificates && rm -rf /var/lib/apt/lists/*
COPY host-ca.pem /etc/ssl/host-ca.pem
RUN pip3 install --no-cache-dir --break-system-packages --cert /etc/ssl/host-ca.pem "Django>=4.2,<6"
WORKDIR /app
COPY . /app
ENV PYTHONPATH=/app DJANGO_SETTINGS_MODULE=site_app.settings PYTHONUNBUFFERED=1
CMD ["django-admin", "runserver", "--noreload", "0.0.0.0:8000"]
"""
SETTINGS = """import os
SECRET_KEY = "test-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "site_app.urls"
INSTALLED_APPS: list = []
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "HOST": os.environ["DB_HOST"],
                         "NAME": os.environ["DB_NAME"], "USER": os.environ["DB_USER"], "PORT": 5432}}
"""
URLS = """from django.db import connection
from django.http import HttpResponse
from django.urls import path


def index(request):
    with connection.cursor() as c:
        c.execute("SELECT current_database(), 6 * 7")
        db, n = c.fetchone()
    return HttpResponse(f"Hello from Django, database {db} says {n}\\n", content_type="text/plain")


urlpatterns = [path("", index)]
"""
COMPOSE = """services:
  web:
    build: ./web
    ports: ["127.0.0.1:8000:8000"]
    environment:
      DB_HOST: db
      DB_NAME: postgres
      DB_USER: postgres
    depends_on:
      db:
        condition: service_healthy
  db:
    build: ./db
    volumes: [dbdata:/var/lib/postgresql/data]
    healthcheck:
      test: ["CMD-SHELL", "$$(echo /usr/lib/postgresql/*/bin)/pg_isready -h 127.0.0.1 -U postgres"]
      interval: 1s
      retries: 60
volumes:
  dbdata:
"""


@pytest.fixture(scope="module")
def deb(tmp_path_factory, debian_tar):
    """One state root for the module: debian:bookworm imported, the two images built once (the build cache)."""
    yield from debian_module_root(tmp_path_factory, debian_tar, "django", timeout=120)


def _app(d: Path) -> Path:
    (d / "db").mkdir(parents=True)
    (d / "db" / "Dockerfile").write_text(DB_DOCKERFILE)
    (d / "db" / "start.sh").write_text(DB_START)
    site = d / "web" / "site_app"
    site.mkdir(parents=True)
    (d / "web" / "Dockerfile").write_text(WEB_DOCKERFILE)
    # the host's CA bundle: pip trusts what the host trusts (a TLS-inspecting proxy on the way to PyPI)
    shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", d / "web" / "host-ca.pem")
    (site / "__init__.py").write_text("")
    (site / "settings.py").write_text(SETTINGS)
    (site / "urls.py").write_text(URLS)
    (d / "compose.yaml").write_text(COMPOSE)
    return d


def _get(url: str) -> str | None:
    try:
        return urllib.request.urlopen(url, timeout=5).read().decode()
    except OSError:
        return None


def test_django_and_postgres(deb, tmp_path):
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", 8000)) == 0:
            pytest.fail("127.0.0.1:8000 is already in use on this host")
    app = _app(tmp_path / "djangoapp")
    c = ("compose", "--project-directory", str(app))
    try:
        deb(*c, "build", timeout=1500)
        deb(*c, "up", "-d", timeout=300)
        body = wait_for(lambda: _get("http://127.0.0.1:8000/"), timeout=60, interval=0.2, what="the Django page")
        assert body == "Hello from Django, database postgres says 42\n"
        ps = deb(*c, "ps").stdout
        assert "djangoapp-db-1" in ps and "(healthy)" in ps and "djangoapp-web-1" in ps
    finally:
        down = deb(*c, "down", "-v", check=False, timeout=120)
    assert down.returncode == 0, down.stderr
    assert deb("ps", "-aq").stdout.strip() == ""
    assert "djangoapp" not in deb("network", "ls").stdout
    assert "djangoapp" not in deb("volume", "ls").stdout
