"""The account page (who you are, linked identities, password), password reset, API tokens."""

from __future__ import annotations

from typing import Any

from django.contrib import auth, messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core import confirm, pagination
from core.forms import apply_errors

from . import identities, services
from .forms import ApiTokenForm, PasswordResetForm, PinForm
from .models import ApiToken, OIDCIdentity, VerifiedEmail
from .types import AccountRequest

VERIFY_CHALLENGE = "accounts_verify_challenge"


@login_required
@require_GET
def account(request: AccountRequest) -> HttpResponse:
    user = request.user
    verified = VerifiedEmail.objects.filter(user=user).first()
    context = {
        "verified": verified if verified and verified.email == user.email.lower() else None,
        "identities": OIDCIdentity.objects.filter(user=user).order_by("issuer"),
        "has_password": user.has_usable_password(),
    }
    return render(request, "accounts/account.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def email_verify(request: AccountRequest) -> HttpResponse:
    """Confirm the account's address with a PIN (accounts made before addresses were confirmed:
    single sign-on links to an account only when its address is confirmed here)."""
    form = PinForm(request.POST if "pin" in request.POST else None)
    if request.method == "POST" and "send" in request.POST:
        try:
            challenge = services.start_email_verification(user=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("account")
        request.session[VERIFY_CHALLENGE] = challenge.pk
        messages.info(request, f"We sent a code to {request.user.email}.")
        return redirect("account-email-verify")
    if request.method == "POST" and form.is_valid():
        try:
            services.confirm_email(
                user=request.user,
                challenge_id=int(request.session.get(VERIFY_CHALLENGE) or 0),
                pin=form.cleaned_data["pin"],
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            request.session.pop(VERIFY_CHALLENGE, None)
            messages.success(request, f"{request.user.email} is confirmed.")
            return redirect("account")
    context = {"form": form, "email": request.user.email, "purpose": "verify"}
    return render(request, "accounts/pin_confirm.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def identity_unlink(request: AccountRequest, pk: int) -> HttpResponse:
    try:
        identity = identities.unlink(by=request.user, identity_id=pk)
    except OIDCIdentity.DoesNotExist:
        raise Http404 from None
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("account")
    messages.success(request, f"Single sign-on identity {identity.subject} unlinked.")
    return redirect("account")


@login_required
@require_http_methods(["GET", "POST"])
def password_change(request: AccountRequest) -> HttpResponse:
    """Change the password (or set one, for an account that signed in by PIN only). Other
    sessions of the account end; this one stays."""
    user = request.user
    if user.oidc_identities.exists():
        messages.info(request, "You sign in with single sign-on: change your password there.")
        return redirect("account")
    had_password = user.has_usable_password()
    form_class = auth_forms.PasswordChangeForm if had_password else auth_forms.SetPasswordForm
    form = form_class(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        form.save()
        auth.update_session_auth_hash(request, form.user)
        services.password_changed(user=user, how="change" if had_password else "set")
        messages.success(request, "Your password is changed.")
        return redirect("account")
    context = {"form": form, "had_password": had_password}
    return render(
        request, "accounts/password_change.html", context, status=400 if form.errors else 200
    )


class PasswordResetView(auth_views.PasswordResetView):
    """Ask for a reset link: throttled; the answer does not say whether the address exists."""

    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    form_class = PasswordResetForm
    success_url = reverse_lazy("password-reset-sent")

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}

    def form_invalid(self, form: Any) -> HttpResponse:
        throttled = any(e.code == "throttled" for e in form.errors.as_data().get("email", []))
        return self.render_to_response(
            self.get_context_data(form=form), status=429 if throttled else 400
        )


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """The link: works once (the token is bound to the password it replaces), until
    PASSWORD_RESET_HOURS; every session of the account ends."""

    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("password-reset-done")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        services.password_changed(user=form.user, how="reset")
        return response


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: AccountRequest) -> HttpResponse:
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
    tokens = pagination.paginate_request(
        request,
        ApiToken.objects.filter(user_id=request.user.pk).select_related("parent"),
        order=("-created_at", "-id"),
    )
    response = render(
        request,
        "accounts/token_list.html",
        {"form": form, "tokens": tokens, "new_secret": new_secret},
        status=400 if form.errors else 200,
    )
    response["Cache-Control"] = "no-store"  # the page may hold a fresh secret
    return response


@login_required
@require_http_methods(["GET", "POST"])
def token_revoke(request: AccountRequest, pk: int) -> HttpResponse:
    """GET: what revoking does (the confirmation page); POST: revoke."""
    if request.method == "GET":
        token = ApiToken.objects.filter(
            pk=pk, user_id=request.user.pk, revoked_at__isnull=True
        ).first()
        if token is None:
            raise Http404
        return confirm.page(
            request,
            title=f"Revoke {token.name}",
            consequence=[
                f"Scripts using the token {token.name} ({token.display}) stop working at once, "
                "and so do the tokens minted with it.",
                "This cannot be undone: create a new token to give access again.",
            ],
            button=f"Revoke {token.name}",
            cancel_url=reverse("token-list"),
            crumbs=[("API tokens", reverse("token-list"))],
        )
    try:
        token = services.revoke_api_token(user=request.user, token_id=pk)
    except ApiToken.DoesNotExist:
        raise Http404 from None
    messages.success(request, f"Token “{token.name}” revoked. Tokens minted with it stop too.")
    return redirect("token-list")
