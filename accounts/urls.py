from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import account_views, views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("login/pin/", views.pin_signin, name="pin-signin"),
    path("login/pin/confirm/", views.pin_signin_confirm, name="pin-signin-confirm"),
    path("logout/", views.logout, name="logout"),
    path("signup/", views.signup, name="signup"),
    path("signup/confirm/", views.signup_confirm, name="signup-confirm"),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("account/", account_views.account, name="account"),
    path("account/email/", account_views.email_verify, name="account-email-verify"),
    path("account/password/", account_views.password_change, name="password-change"),
    path(
        "account/identities/<int:pk>/unlink/",
        account_views.identity_unlink,
        name="identity-unlink",
    ),
    path("account/tokens/", account_views.token_list, name="token-list"),
    path("account/tokens/<int:pk>/revoke/", account_views.token_revoke, name="token-revoke"),
    path("password-reset/", account_views.PasswordResetView.as_view(), name="password-reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_sent.html"),
        name="password-reset-sent",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        account_views.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="accounts/password_reset_done.html"
        ),
        name="password-reset-done",
    ),
]
