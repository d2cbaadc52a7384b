"""Local sign-up: e-mail (the username), name and a password checked by Django's validators.

Honours `?next=` (same-host URLs only), signs the new user in, and is rate limited per IP.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model, login, password_validation
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from . import audit, ratelimit
from .middleware import client_ip

TOO_MANY = "Too many sign-up attempts from your network. Please wait and try again."
TAKEN = "An account with this e-mail already exists. Sign in instead."


class SignupForm(forms.Form):
    email = forms.EmailField(max_length=150, help_text="You sign in with this address.")
    name = forms.CharField(max_length=150, label="Your name")
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if get_user_model().objects.filter(username__iexact=email).exists():
            raise forms.ValidationError(TAKEN)
        return email

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        p1, p2 = data.get("password1"), data.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", "The two passwords differ.")
        elif p1:
            user = get_user_model()(
                username=data.get("email", ""),
                email=data.get("email", ""),
                first_name=data.get("name", ""),
            )
            try:
                password_validation.validate_password(p1, user)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data

    def save(self) -> Any:
        data = self.cleaned_data
        first, _, last = data["name"].strip().partition(" ")
        with transaction.atomic():
            user = get_user_model().objects.create_user(
                username=data["email"],
                email=data["email"],
                password=data["password1"],
                first_name=first[:150],
                last_name=last[:150],
            )
            audit.record("account.signup", actor=user, target=user, after={"email": user.email})
        return user


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return settings.LOGIN_REDIRECT_URL


@require_http_methods(["GET", "POST"])
def signup_view(request: HttpRequest) -> HttpResponse:
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
    return render(request, "core/signup.html", {"form": form, "next": next_url}, status=status)
