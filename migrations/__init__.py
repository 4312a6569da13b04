"""Alembic, two tracks: ``public`` (one version table in ``public``) and ``tenant`` (one version
table in every tenant schema)."""

from pathlib import Path

PUBLIC_DIR = Path(__file__).parent / "public"
TENANT_DIR = Path(__file__).parent / "tenant"
