"""Sign-in (password or e-mailed PIN), sign-up with a confirmed address, sign-out."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from core import audit, ratelimit
from core.forms import apply_errors
from core.middleware import client_ip

from . import oidc, services, sessions, throttle
from .forms import TOO_MANY, LoginForm, PinForm, PinRequestForm, SignupForm
from .models import Account, EmailChallenge
from .types import PortalRequest

PASSWORD_BACKEND = "accounts.backends.PasswordBackend"
SIGNUP_CHALLENGE = "accounts_signup_challenge"
SIGNIN_CHALLENGE = "accounts_signin_challenge"


def next_url(request: PortalRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return str(settings.LOGIN_REDIRECT_URL)


def _with_next(name: str, next_to: str) -> str:
    return f"{reverse(name)}?{urlencode({'next': next_to})}"


def door_context() -> dict[str, Any]:
    return {
        "oidc_enabled": bool(settings.OIDC_ISSUER),
        "local_signup_enabled": settings.LOCAL_SIGNUP_ENABLED,
        "pin_signin_enabled": settings.PIN_SIGNIN_ENABLED,
    }


class LoginView(auth_views.LoginView):
    """Password sign-in; throttled (429 with the reason) per account and per IP."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True
    form_class = LoginForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), **door_context()}

    def form_invalid(self, form: Any) -> HttpResponse:
        status = 429 if getattr(form, "throttled", False) else 200
        return self.render_to_response(self.get_context_data(form=form), status=status)


@require_POST
def logout(request: PortalRequest) -> HttpResponse:
    """Sign out here, then at the issuer too when the session came from single sign-on (the CSP
    allows the issuer in form-action, so the browser follows this redirect)."""
    id_token = request.session.get(sessions.ID_TOKEN_KEY, "")
    auth.logout(request)
    issuer_logout = oidc.end_session_url(request, id_token) if id_token else ""
    return redirect(issuer_logout or settings.LOGOUT_REDIRECT_URL)


def _sign_in(request: PortalRequest, user: Account, how: str) -> None:
    auth.login(request, user, backend=PASSWORD_BACKEND)
    audit.record("account.login", actor=user, target=user, after={"method": how})


@require_http_methods(["GET", "POST"])
def signup(request: PortalRequest) -> HttpResponse:
    """Local sign-up, step 1: e-mail, name, optional password; a PIN goes to the address.
    Honours `?next=` (same-host URLs only) through every step; rate limited per IP."""
    if not settings.LOCAL_SIGNUP_ENABLED:
        raise Http404("Sign-up is through single sign-on.")
    to = next_url(request)
    if request.user.is_authenticated:
        return redirect(to)
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
            data = form.cleaned_data
            try:
                challenge = services.start_signup(
                    email=data["email"], name=data["name"], password=data["password1"]
                )
            except ValidationError as exc:
                apply_errors(form, exc)
            else:
                request.session[SIGNUP_CHALLENGE] = challenge.pk
                return redirect(_with_next("signup-confirm", to))
        if form.errors and status == 200:
            status = 400
    context = {"form": form, "next": to, **door_context()}
    return render(request, "accounts/signup.html", context, status=status)


def _pending(request: PortalRequest, key: str) -> EmailChallenge | None:
    return EmailChallenge.objects.filter(pk=int(request.session.get(key) or 0)).first()


@require_http_methods(["GET", "POST"])
def signup_confirm(request: PortalRequest) -> HttpResponse:
    """Step 2: the PIN from the e-mail makes the account and signs it in, then on to `next`."""
    to = next_url(request)
    challenge = _pending(request, SIGNUP_CHALLENGE)
    if challenge is None:
        return redirect(_with_next("signup", to))
    form = PinForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.confirm_signup(challenge_id=challenge.pk, pin=form.cleaned_data["pin"])
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            request.session.pop(SIGNUP_CHALLENGE, None)
            auth.login(request, user, backend=PASSWORD_BACKEND)
            messages.success(request, f"Welcome! Your account {user.email} is confirmed.")
            return redirect(to)
    context = {"form": form, "next": to, "email": challenge.email, "purpose": "signup"}
    return render(request, "accounts/pin_confirm.html", context, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def pin_signin(request: PortalRequest) -> HttpResponse:
    """PIN sign-in for customers, step 1: the address. The next page is the same whether or
    not an account uses it."""
    if not settings.PIN_SIGNIN_ENABLED:
        raise Http404("Sign-in by e-mailed code is switched off.")
    to = next_url(request)
    if request.user.is_authenticated:
        return redirect(to)
    form = PinRequestForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"].strip().lower()
        if throttle.blocked(request, email):
            form.add_error(None, throttle.message())
            status = 429
        else:
            try:
                challenge = services.start_pin_signin(email=email)
            except ValidationError as exc:
                apply_errors(form, exc)
                status = 429
            else:
                request.session[SIGNIN_CHALLENGE] = challenge.pk
                return redirect(_with_next("pin-signin-confirm", to))
    if form.errors and status == 200:
        status = 400
    context = {"form": form, "next": to}
    return render(request, "accounts/pin_signin.html", context, status=status)


@require_http_methods(["GET", "POST"])
def pin_signin_confirm(request: PortalRequest) -> HttpResponse:
    """Step 2: the PIN signs the customer in. Wrong PINs count as failed sign-ins."""
    to = next_url(request)
    challenge = _pending(request, SIGNIN_CHALLENGE)
    if challenge is None:
        return redirect(_with_next("pin-signin", to))
    form = PinForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        if throttle.blocked(request, challenge.email):
            form.add_error(None, throttle.message())
            status = 429
        else:
            try:
                user = services.confirm_pin_signin(
                    challenge_id=challenge.pk, pin=form.cleaned_data["pin"]
                )
            except ValidationError as exc:
                throttle.failed(request, challenge.email)
                apply_errors(form, exc)
            else:
                request.session.pop(SIGNIN_CHALLENGE, None)
                _sign_in(request, user, "pin")
                return redirect(to)
    if form.errors and status == 200:
        status = 400
    context = {"form": form, "next": to, "email": challenge.email, "purpose": "signin"}
    return render(request, "accounts/pin_confirm.html", context, status=status)
