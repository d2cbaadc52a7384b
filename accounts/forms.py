"""Forms of the accounts app: sign-up, sign-in (password or PIN), passwords, API tokens."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.http import HttpRequest

from core import ratelimit
from core.middleware import client_ip

from . import throttle
from .models import Account, EmailChallenge, clean_display_name

TOO_MANY = "Too many sign-up attempts from your network. Please wait and try again."
TOO_MANY_RESETS = "Too many reset requests. Please wait an hour and try again."


class SignupForm(forms.Form):
    email = forms.EmailField(
        max_length=150,
        help_text="We send a code to this address to confirm it; you sign in with it.",
    )
    name = forms.CharField(max_length=150, label="Your name")
    password1 = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Optional: without one you sign in with a code sent by e-mail. "
        + password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Password again",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_email(self) -> str:
        return str(self.cleaned_data["email"]).strip().lower()

    def clean_name(self) -> str:
        name = clean_display_name(self.cleaned_data["name"])
        if not name:
            raise ValidationError("Enter your name, like Ada Lovelace.")
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        p1, p2 = data.get("password1") or "", data.get("password2") or ""
        if p1 != p2:
            self.add_error("password2", "The two passwords differ.")
        elif p1:
            user = Account(
                username=data.get("email", ""),
                email=data.get("email", ""),
                first_name=data.get("name", ""),
            )
            try:
                password_validation.validate_password(p1, user)
            except ValidationError as exc:
                self.add_error("password1", exc)
        return data


class PinForm(forms.Form):
    pin = forms.CharField(
        label="Code",
        max_length=EmailChallenge.PIN_DIGITS + 4,
        help_text=f"The {EmailChallenge.PIN_DIGITS} digits from the e-mail, like 123456.",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )

    def clean_pin(self) -> str:
        pin = "".join(str(self.cleaned_data["pin"]).replace("-", " ").split())
        if not pin.isdigit() or len(pin) != EmailChallenge.PIN_DIGITS:
            raise ValidationError(f"Enter the {EmailChallenge.PIN_DIGITS} digits, like 123456.")
        return pin


class PinRequestForm(forms.Form):
    email = forms.EmailField(
        max_length=254, help_text="Enter an e-mail address like name@example.com."
    )


class LoginForm(auth_forms.AuthenticationForm):
    """Django's sign-in form, throttled per account and per IP (`accounts.throttle`)."""

    username = auth_forms.UsernameField(
        label="Username or e-mail", widget=forms.TextInput(attrs={"autofocus": True})
    )

    def __init__(self, request: HttpRequest | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(request, *args, **kwargs)
        self.throttled = False

    def clean(self) -> dict[str, Any]:
        name = str(self.cleaned_data.get("username") or "")
        assert self.request is not None
        if throttle.blocked(self.request, name):
            self.throttled = True
            raise ValidationError(throttle.message(), code="throttled")
        try:
            return super().clean()
        except ValidationError:
            throttle.failed(self.request, name)
            raise


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's reset form (a signed, single-use link that expires after PASSWORD_RESET_HOURS),
    throttled per address and per IP. The answer never says whether the address has an account;
    accounts whose door is single sign-on (no usable password) get no link."""

    def __init__(self, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_email(self) -> str:
        email = str(self.cleaned_data["email"]).strip().lower()
        ip_ok = ratelimit.hit(
            "reset-ip",
            client_ip(self.request) or "-",
            limit=settings.PASSWORD_RESET_LIMIT_PER_IP,
            window=3600,
        )
        email_ok = ratelimit.hit(
            "reset-email", email, limit=settings.PASSWORD_RESET_LIMIT_PER_EMAIL, window=3600
        )
        if not (ip_ok and email_ok):
            raise ValidationError(TOO_MANY_RESETS, code="throttled")
        return email


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="What the token is for, e.g. “CI pipeline”.")
    days = forms.IntegerField(min_value=1, label="Expires in (days)")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        days = self.fields["days"]
        days.initial = settings.API_TOKEN_DEFAULT_DAYS
        days.validators.append(MaxValueValidator(settings.API_TOKEN_MAX_DAYS))
        days.widget.attrs["max"] = settings.API_TOKEN_MAX_DAYS
