"""`conceptfreq migrate`: apply the store's schema migrations (the Helm chart runs it as a pre-install hook)."""

from __future__ import annotations

from conceptfreq.adapters.store import open_store
from conceptfreq.commands.options import add_store, store_url


def register(subparsers) -> None:
    parser = subparsers.add_parser("migrate", help="create or upgrade the count store's schema")
    add_store(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    store = open_store(store_url(args), migrate=False)
    try:
        applied = store.migrate()
        print(f"{store.location}: schema version {store.schema_version()}"
              + (f" (applied {', '.join(map(str, applied))})" if applied else " (up to date)"))
        return 0
    finally:
        store.close()
