"""`policy-site migrate`: bring the database's schema up to date, once, before instances start.

Deployments run it as a step of its own (deploy/policy-site-migrate.service)
so that an upgrade changes the schema once and then restarts the instances.
`policy-site serve` still migrates at start, so that development needs no
extra step; on PostgreSQL an advisory lock (db.migrate) makes instances that
start together take turns, and each finds the work done.
"""

from __future__ import annotations

import argparse
import sys

from form_service.settings import SettingsError, load_settings


def _fail(message: str) -> int:
    print(f"policy-site migrate: {message}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    from alembic.util import CommandError as AlembicError
    from sqlalchemy.exc import SQLAlchemyError

    from form_service import db

    try:
        settings = load_settings(root=args.root)
    except SettingsError as exc:
        return _fail(str(exc))
    engine = db.create(settings.database_url)
    try:
        before, after = db.migrate(engine)
    except AlembicError as exc:
        return _fail(f"the database in POLICY_DATABASE_URL cannot be brought up to date: {exc}.")
    except (SQLAlchemyError, OSError) as exc:
        # The URL may hold a password: name the variable, never its value.
        return _fail(f"the database in POLICY_DATABASE_URL cannot be opened "
                     f"({type(exc).__name__}); check the setting and that the server is running.")
    finally:
        engine.dispose()
    if before == after:
        print(f"The database is up to date (schema {after}).")
    else:
        print(f"Migrated the database from schema {before or 'none'} to {after}.")
    return 0
