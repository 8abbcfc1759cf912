from django.http import HttpRequest

from .models import User


def request_user(request: HttpRequest) -> User:
    """The logged-in customer of a @login_required view, typed as our User."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionError("login required")
    return user
