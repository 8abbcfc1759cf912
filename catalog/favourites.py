"""Favourite services: a customer stars services on the services page to find them first."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from accounts.models import User

from .models import Favourite, Service

MAX_FAVOURITES = 200


def favourite_ids_for_user(*, user: User | None) -> set[int]:
    if user is None or not user.is_authenticated:
        return set()
    return set(Favourite.objects.filter(user=user).values_list("service_id", flat=True))


class TooManyFavourites(Exception):
    pass


def favourite_toggle(*, user: User, service: Service) -> bool:
    """Star or unstar `service` for `user`; True when it is a favourite afterwards."""
    deleted, _ = Favourite.objects.filter(user=user, service=service).delete()
    if deleted:
        return False
    if Favourite.objects.filter(user=user).count() >= MAX_FAVOURITES:
        raise TooManyFavourites
    try:
        # Two quick clicks race to insert the same pair; the unique constraint keeps one.
        with transaction.atomic():
            Favourite.objects.create(user=user, service=service)
    except IntegrityError:
        pass
    return True
