"""A test-suite OpenID provider: oidc-provider-mock with the parts of a real one the portal needs.

oidc-provider-mock (authorization code + PKCE + nonce, refresh tokens, userinfo, `PUT /users/<sub>`
to set a user's claims) keeps no browser session, so every sign-in shows its form. A real
provider (Keycloak) remembers who signed in, which is what makes sign-out matter: this wrapper adds

- a provider session (a cookie of its own): once a user has approved the form, the next
  authorization request for that browser is answered at once with a code, as Keycloak's SSO does;
  `prompt=none` without a session answers `error=login_required` (OpenID Connect Core §3.1.2.6);
- RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): `end_session` with a valid
  `id_token_hint` ends that session and redirects to `post_logout_redirect_uri` (with `state`);
  without a hint it asks for confirmation as the mock does, and ending it there clears it too;
- `DELETE /users/<sub>`: the account is deleted at the provider, with its tokens and sessions, so
  a refresh answers `invalid_grant` and userinfo `401`.

It runs in a thread of the test process (werkzeug), on a free port of 127.0.0.1.
"""

from __future__ import annotations

import secrets
import threading
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import flask
import requests
import werkzeug.serving
from oidc_provider_mock import _app as mock

SESSION_COOKIE = "op_session"
CLIENT_ID = "catalyst-portal"
BACKENDS = ["accounts.oidc.PortalOIDCBackend", "accounts.backends.PasswordBackend"]


def point_portal_at(settings: Any, provider: Provider) -> None:
    """The settings a Sovereign sets for its Keycloak, aimed at `provider`."""
    from accounts import oidc

    settings.OIDC_ISSUER = provider.url
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = "not-so-secret"
    settings.OIDC_VERIFY_KID = False  # the mock's ID token carries no kid
    settings.AUTHENTICATION_BACKENDS = BACKENDS
    oidc.forget_discovery()


class Provider:
    def __init__(self) -> None:
        self.app = mock.app(require_nonce=True)
        self.app.config["SESSION_COOKIE_NAME"] = SESSION_COOKIE
        self.app.secret_key = secrets.token_bytes(16)
        self.deleted: set[str] = set()
        self.ended_sessions: list[str] = []  # subjects whose provider session ended
        self.authorize_requests: list[dict[str, str]] = []
        self._install()
        self.server = werkzeug.serving.make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- the test's side ------------------------------------------------------------------
    def start(self) -> Provider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def set_user(self, sub: str, **claims: Any) -> None:
        """Create or replace the user `sub` with exactly these claims (the mock's own API)."""
        self.deleted.discard(sub)
        response = requests.put(f"{self.url}/users/{sub}", json=claims, timeout=5)
        assert response.status_code == HTTPStatus.NO_CONTENT, response.text

    def delete_user(self, sub: str) -> None:
        response = requests.delete(f"{self.url}/users/{sub}", timeout=5)
        assert response.status_code == HTTPStatus.NO_CONTENT, response.text

    # --- the provider's side --------------------------------------------------------------
    def _install(self) -> None:
        app = self.app
        app.before_request(self._before)
        app.after_request(self._after)
        app.add_url_rule("/users/<sub>", "delete_user", self._delete_user, methods=["DELETE"])

    def _storage(self) -> Any:
        return flask.g.oidc_provider_mock_storage

    def _before(self) -> Any:
        request = flask.request
        if request.path == "/oauth2/authorize" and request.method == "GET":
            self.authorize_requests.append(dict(request.args))
            return self._authorize_from_session()
        if request.path == "/oauth2/end_session":
            return self._end_session()
        if request.path == "/oauth2/end_session/confirm":
            self._forget_session()
        return None

    def _after(self, response: flask.Response) -> flask.Response:
        request = flask.request
        if (
            request.path == "/oauth2/authorize"
            and request.method == "POST"
            and response.status_code == HTTPStatus.FOUND
            and "code=" in response.headers.get("Location", "")
        ):
            flask.session["sub"] = request.form["sub"]  # the provider session starts
        return response

    def _authorize_from_session(self) -> Any:
        sub = flask.session.get("sub")
        user = self._storage().get_user(sub) if sub else None
        if user is None or sub in self.deleted:
            flask.session.pop("sub", None)
            if flask.request.args.get("prompt") == "none":
                return self._error_redirect("login_required")
            return None  # the mock's sign-in form
        server = mock.authorization
        try:  # validated with the session's user, so prompt=none is satisfied
            grant = server.get_consent_grant(end_user=user)
        except mock.OAuth2Error as error:
            return server.handle_error_response(None, error)
        return server.create_authorization_response(grant_user=user, grant=grant)

    def _error_redirect(self, error: str) -> Any:
        args = flask.request.args
        query = urlencode({"error": error, "state": args.get("state", "")})
        return flask.redirect(f"{args['redirect_uri']}?{query}")

    def _end_session(self) -> Any:
        values = flask.request.values
        hint = values.get("id_token_hint")
        claims = self._verified_hint(hint) if hint else None
        if claims is None:
            return None  # the mock's confirmation page
        if flask.session.get("sub") == claims["sub"]:
            self._forget_session()
        target = values.get("post_logout_redirect_uri")
        if not target:
            return "You are signed out.", HTTPStatus.OK
        if values.get("state"):
            parts = urlsplit(target)
            query = parse_qs(parts.query)
            query["state"] = [values["state"]]
            target = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        return flask.redirect(target)

    def _verified_hint(self, hint: str) -> dict[str, Any] | None:
        from authlib import jose  # (deprecated module, but the one the mock signs with)

        try:
            claims = jose.jwt.decode(hint, self._storage().jwk)
            claims.validate_iss()
        except jose.errors.JoseError:
            return None
        if claims.get("iss") != flask.request.host_url.rstrip("/"):
            return None
        return dict(claims)

    def _forget_session(self) -> None:
        sub = flask.session.pop("sub", None)
        if sub:
            self.ended_sessions.append(sub)

    def _delete_user(self, sub: str) -> Any:
        storage = self._storage()
        storage._users.pop(sub, None)
        for token in storage.access_tokens():
            if token.user_id == sub:
                storage.remove_access_token(token.token)
        for token in storage.refresh_tokens():
            if token.user_id == sub:
                storage.remove_refresh_token(token.token)
        self.deleted.add(sub)
        return "", HTTPStatus.NO_CONTENT
