"""How long syncing a 5,000-service provider takes, first and later runs, and importing it.

python -m tests.bench.bench_sync [--services 5000]
"""

from __future__ import annotations

import argparse
import json

from tests.bench.setup import setup_django, timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=5000)
    args = parser.parse_args()
    setup_django()

    from catalog.models import Service
    from catalog.services import catalog_import_upstream, provider_sync
    from providers.models import Provider, UpstreamService
    from simulators.provider import Simulator

    sim = Simulator(services=args.services, speed=None).start()
    results: dict[str, float] = {}
    try:
        provider = Provider.objects.create(name="bench", api_url=sim.url, api_key="demo-provider-key")
        with timed(f"first sync ({args.services} new services)", results):
            first = provider_sync(provider=provider)
        assert first.created == args.services, first.summary()
        ids = list(UpstreamService.objects.filter(provider=provider).values_list("pk", flat=True))
        with timed(f"import {args.services} services into the catalogue", results):
            catalog_import_upstream(upstream_ids=ids)
        assert Service.objects.count() == args.services
        with timed("second sync (nothing changed)", results):
            second = provider_sync(provider=provider)
        assert second.unchanged == args.services, second.summary()
        changed = args.services // 5
        for sid in range(1, changed + 1):
            sim.set_service(sid, rate="0.5")
        for sid in range(changed + 1, changed + 11):
            sim.remove_service(sid)
        with timed(f"third sync ({changed} rate changes, 10 removed)", results):
            third = provider_sync(provider=provider)
        print(json.dumps({"seconds": results, "third": third.summary()}))
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
