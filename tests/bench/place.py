"""Place orders through order_place from a few threads: one of the processes the drain
benchmark starts so that placing uses every core (a single Python process holds the GIL).

    python -m tests.bench.place --users 1,2,3 --services 4,5 --count 5000 --tag a --threads 4

The environment (DATABASE_URL, CELERY_BROKER_URL, ...) is the benchmark's. Prints the ids of
the orders placed, as a JSON list, on the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import threading


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", required=True)
    parser.add_argument("--services", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--quantity", type=int, default=100)
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connections

    from accounts.models import User
    from orders.services import order_place

    users = list(User.objects.filter(pk__in=[int(u) for u in args.users.split(",")]).order_by("pk"))
    services = [int(s) for s in args.services.split(",")]
    placed: list[list[int]] = [[] for _ in range(args.threads)]
    errors: list[BaseException] = []

    def place(n: int) -> None:
        try:
            for i in range(n, args.count, args.threads):
                order = order_place(
                    user=users[i % len(users)],
                    service_id=services[i % len(services)],
                    fields={"link": f"https://drain.example/{args.tag}/{i}", "quantity": args.quantity},
                )
                placed[n].append(order.pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=place, args=(n,)) for n in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    print(json.dumps(sorted(pk for chunk in placed for pk in chunk)))


if __name__ == "__main__":
    main()
