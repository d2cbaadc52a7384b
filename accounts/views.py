"""Sign-in, sign-up, sign-out and the personal API tokens page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from core import ratelimit
from core.forms import apply_errors
from core.middleware import client_ip

from . import oidc, services
from .forms import TAKEN, TOO_MANY, ApiTokenForm, SignupForm
from .models import ApiToken


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "oidc_enabled": bool(settings.OIDC_ISSUER)}


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """Sign out here, then at the issuer too when the session came from single sign-on."""
    id_token = request.session.get(oidc.ID_TOKEN_SESSION_KEY, "")
    auth.logout(request)
    issuer_logout = oidc.end_session_url(request, id_token) if id_token else ""
    return redirect(issuer_logout or settings.LOGOUT_REDIRECT_URL)


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return settings.LOGIN_REDIRECT_URL


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Local sign-up: honours `?next=` (same-host URLs only), signs the new user in, and is rate
    limited per IP."""
    next_url = _next_url(request)
    if request.user.is_authenticated:
        return redirect(next_url)
    form = SignupForm(request.POST or None)
    status = 200
    if request.method == "POST":
        allowed = ratelimit.hit(
            "signup-ip", client_ip(request) or "-", limit=settings.SIGNUP_LIMIT_PER_IP, window=3600
        )
        if not allowed:
            form.errors.clear()
            form.add_error(None, TOO_MANY)
            status = 429
        elif form.is_valid():
            try:
                user = form.save()
            except IntegrityError:
                form.add_error("email", TAKEN)
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                return redirect(next_url)
        if form.errors and status == 200:
            status = 400
    return render(request, "accounts/signup.html", {"form": form, "next": next_url}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    new_secret = None
    if request.method == "POST" and form.is_valid():
        try:
            _, new_secret = services.create_api_token(
                user=request.user, name=form.cleaned_data["name"], days=form.cleaned_data["days"]
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            form = ApiTokenForm()
    tokens = ApiToken.objects.filter(user_id=request.user.pk)  # type: ignore[misc]
    response = render(
        request,
        "accounts/token_list.html",
        {"form": form, "tokens": tokens, "new_secret": new_secret},
        status=400 if form.errors else 200,
    )
    response["Cache-Control"] = "no-store"  # the page may hold a fresh secret
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        token = services.revoke_api_token(user=request.user, token_id=pk)
    except ApiToken.DoesNotExist:
        raise Http404 from None
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("token-list")
