"""The AuthKit sign-in loop driven through the official WorkOS Python SDK against a running
workos-emulator. Started by tests/python_sdk.rs (inside tests/py/.venv); runnable by hand with
the same environment as tests/js/sdk_flow.mjs:

    WORKOS_EMULATOR_URL=http://127.0.0.1:4100 WORKOS_CLIENT_ID=client_emulator \
    WORKOS_API_KEY=sk_test_default SIGNIN_EMAIL=alice@acme.test SIGNIN_PASSWORD=AuthKit-demo-1 \
    .venv/bin/python sdk_flow.py

Each step is recorded as ok / failed / deviation / skipped; one JSON report goes to stdout. A
failed step or a known deviation makes the exit status 1; 2 means the script could not run.
"""

from __future__ import annotations

import http.server
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from importlib.metadata import version as dist_version
from typing import Any, Callable, Dict, List, Optional

import jwt
from cryptography.fernet import Fernet

from workos import BadRequestError, NotFoundError, WorkOSClient
from workos._errors import AuthenticationError, OrganizationSelectionRequiredError
from workos.pkce import PKCE
from workos.session import seal_session_from_auth_response

# Step name -> what is known to differ from WorkOS. Empty: no deviation is known.
KNOWN_DEVIATIONS: Dict[str, str] = {}

STATE = 'Fe26.2**a+b/c=d&e%f~é <"x"> 🚀'


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        print(f"sdk_flow.py: environment variable {name} is required", file=sys.stderr)
        sys.exit(2)
    return value


# WORKOS_BASE_URL is read by the SDK itself; the emulator URL is passed explicitly instead.
BASE = env("WORKOS_EMULATOR_URL").rstrip("/")
CLIENT_ID = env("WORKOS_CLIENT_ID")
API_KEY = env("WORKOS_API_KEY")
EMAIL = env("SIGNIN_EMAIL")
PASSWORD = env("SIGNIN_PASSWORD")
ISSUER = os.environ.get("EXPECT_ISSUER") or f"{BASE}/user_management/{CLIENT_ID}"
EXPECT_USER_ID = os.environ.get("EXPECT_USER_ID")
EXPECT_ORG_ID = os.environ.get("EXPECT_ORG_ID")
EXPECT_ROLE = os.environ.get("EXPECT_ROLE")
EXPECT_PERMISSIONS = json.loads(os.environ["EXPECT_PERMISSIONS"]) if os.environ.get("EXPECT_PERMISSIONS") else None
EXPECT_USER_COUNT = int(os.environ["EXPECT_USER_COUNT"]) if os.environ.get("EXPECT_USER_COUNT") else None
MULTI_ORG_EMAIL = os.environ.get("MULTI_ORG_EMAIL")

steps: List[Dict[str, Any]] = []
observed: Dict[str, Any] = {}
s: Dict[str, Any] = {}


class Skip(Exception):
    pass


def check(condition: Any, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def equal(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def need(key: str) -> Any:
    if s.get(key) is None:
        raise Skip(f"needs {key} from an earlier step")
    return s[key]


def describe(e: BaseException) -> str:
    parts = [f"{type(e).__name__}: {e}"]
    for attr in ("status_code", "code", "error", "error_description"):
        value = getattr(e, attr, None)
        if value is not None:
            parts.append(f"{attr}={value!r}")
    return " ".join(parts)


def step(name: str) -> Callable[[Callable[[], Any]], None]:
    def run(fn: Callable[[], Any]) -> None:
        started = time.monotonic()
        entry: Dict[str, Any] = {"name": name}
        try:
            detail = fn()
            entry["status"] = "ok"
            if detail is not None:
                entry["detail"] = detail
        except Skip as e:
            entry.update(status="skipped", detail=str(e))
        except Exception as e:  # noqa: BLE001 - every failure is reported, none aborts the run
            known = KNOWN_DEVIATIONS.get(name)
            entry.update(status="deviation" if known else "failed", detail=describe(e))
            if known:
                entry["known"] = known
        entry["ms"] = int((time.monotonic() - started) * 1000)
        steps.append(entry)

    return run


def rejection(fn: Callable[[], Any], what: str) -> BaseException:
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return e
    raise AssertionError(f"{what} succeeded but must fail")


# --------------------------------------------------------------------------------------------
# A browser, as far as this flow needs one.


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def browse(url: str, data: Optional[bytes] = None, headers: Optional[Dict[str, str]] = None):
    request = urllib.request.Request(url, data=data, headers={"User-Agent": "sdk_flow.py", **(headers or {})})
    try:
        response = OPENER.open(request, timeout=10)
        return response.status, dict(response.headers), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8", "replace")


class FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: List[Dict[str, Any]] = []
        self._current: Optional[Dict[str, Any]] = None

    def handle_starttag(self, tag: str, attrs: List[Any]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._current = {**a, "controls": []}
        elif tag in ("input", "button", "select", "textarea") and self._current is not None:
            self._current["controls"].append({"tag": tag, **a})

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._current is not None:
            self.forms.append(self._current)
            self._current = None


def form_body(form: Dict[str, Any], values: Dict[str, str]) -> str:
    pairs = []
    submitted = False
    for c in form["controls"]:
        name = c.get("name")
        if not name or "disabled" in c:
            continue
        kind = (c.get("type") or ("submit" if c["tag"] == "button" else "text")).lower()
        if kind in ("submit", "image"):
            if not submitted:
                submitted = True
                pairs.append((name, c.get("value", "")))
            continue
        if kind in ("button", "reset", "file"):
            continue
        if kind in ("checkbox", "radio") and "checked" not in c:
            continue
        pairs.append((name, values.get(name, c.get("value", ""))))
    for name in values:
        check(any(c.get("name") == name for c in form["controls"]), f"the form has no '{name}' field")
    return urllib.parse.urlencode(pairs)


class App:
    """A local application whose callback records what the browser brings back."""

    def __init__(self) -> None:
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                hits.append(self.path)
                self.send_response(200)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


# --------------------------------------------------------------------------------------------
# The flow.

client = WorkOSClient(api_key=API_KEY, client_id=CLIENT_ID, base_url=BASE, jwt_issuer=ISSUER, max_retries=0)
um = client.user_management
app = App()
REDIRECT_URI = f"{app.origin}/callback"
COOKIE_PASSWORD = Fernet.generate_key().decode()
jwks_client = jwt.PyJWKClient(um.get_jwks_url())


def verify(token: str) -> Dict[str, Any]:
    key = jwks_client.get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["RS256"], issuer=ISSUER, options={"verify_aud": False})


def check_claims(token: str, user_id: str, what: str) -> Dict[str, Any]:
    header = jwt.get_unverified_header(token)
    claims = verify(token)
    equal(header.get("alg"), "RS256", f"{what}: alg")
    check(str(header.get("kid", "")).startswith("sso_oidc_key_pair_"), f"{what}: kid {header.get('kid')}")
    equal(claims["sub"], user_id, f"{what}: sub")
    check(str(claims.get("sid", "")).startswith("session_"), f"{what}: sid")
    check(isinstance(claims.get("auth_time"), int), f"{what}: auth_time")
    equal(claims["exp"] - claims["iat"], 300, f"{what}: exp - iat")
    if EXPECT_ORG_ID:
        equal(claims.get("org_id"), EXPECT_ORG_ID, f"{what}: org_id")
    if EXPECT_ROLE:
        equal(claims.get("role"), EXPECT_ROLE, f"{what}: role")
    if EXPECT_PERMISSIONS is not None:
        equal(sorted(claims.get("permissions", [])), sorted(EXPECT_PERMISSIONS), f"{what}: permissions")
    return claims


@step("authorization_url_with_pkce_and_state")
def _() -> Any:
    s["pkce"] = PKCE().generate()
    url = um.get_authorization_url(
        provider="authkit",
        redirect_uri=REDIRECT_URI,
        state=STATE,
        code_challenge=s["pkce"].code_challenge,
        code_challenge_method="S256",
    )
    check(url.startswith(f"{BASE}/user_management/authorize?"), f"url {url}")
    equal(urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["state"], [STATE], "state in the URL")
    s["authorize_url"] = url
    return {"url": url}


@step("authorize_page_form_post_and_callback")
def _() -> Any:
    url = need("authorize_url")
    status, headers, html = browse(url)
    equal(status, 200, "GET authorize status")
    parser = FormParser()
    parser.feed(html)
    form = next((f for f in parser.forms if any(c.get("name") == "password" for c in f["controls"])), None)
    check(form is not None, "no form with a password field")
    equal(form.get("method", "get").lower(), "post", "form method")
    action = urllib.parse.urljoin(url, form.get("action", ""))
    body = form_body(form, {"email": EMAIL, "password": PASSWORD}).encode()
    status, headers, text = browse(
        action,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": BASE},
    )
    check(status in (302, 303), f"POST status {status}: {text[:300]}")
    location = urllib.parse.urljoin(action, headers.get("Location") or headers.get("location") or "")
    status, _, _ = browse(location)
    equal(status, 200, "callback status")
    check(app.hits, "the callback saw no request")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(app.hits[-1]).query)
    equal(query.get("state"), [STATE], "state echoed to the callback")
    check("code" in query, f"no code in {app.hits[-1]}")
    s["code"] = query["code"][0]
    return {"callback_params": sorted(query)}


@step("authenticate_with_code_and_verifier")
def _() -> Any:
    auth = um.authenticate_with_code(code=need("code"), code_verifier=s["pkce"].code_verifier)
    equal(auth.user.email, EMAIL, "user.email")
    if EXPECT_USER_ID:
        equal(auth.user.id, EXPECT_USER_ID, "user.id")
    if EXPECT_ORG_ID:
        equal(auth.organization_id, EXPECT_ORG_ID, "organization_id")
    equal(getattr(auth.authentication_method, "value", auth.authentication_method), "Password", "authentication_method")
    s["auth"] = auth
    observed["user_id"] = auth.user.id
    return {"user": auth.user.id, "organization_id": auth.organization_id}


@step("pyjwt_verifies_access_token_against_jwks")
def _() -> Any:
    auth = need("auth")
    claims = check_claims(auth.access_token, auth.user.id, "access token")
    s["claims"] = claims
    observed["claims"] = claims
    return {"sid": claims["sid"], "role": claims.get("role")}


@step("sealed_session_authenticates_and_refreshes")
def _() -> Any:
    auth = need("auth")
    claims = need("claims")
    sealed = seal_session_from_auth_response(
        access_token=auth.access_token,
        refresh_token=auth.refresh_token,
        user=auth.user.to_dict(),
        cookie_password=COOKIE_PASSWORD,
    )
    session = um.load_sealed_session(session_data=sealed, cookie_password=COOKIE_PASSWORD)
    result = session.authenticate()
    check(result.authenticated, f"not authenticated: {getattr(result, 'reason', None)}")
    equal(result.session_id, claims["sid"], "session_id")
    equal(result.organization_id, claims.get("org_id"), "organization_id")
    equal(result.role, claims.get("role"), "role")
    refreshed = session.refresh()
    check(refreshed.authenticated, f"refresh failed: {getattr(refreshed, 'reason', None)}")
    equal(refreshed.session_id, claims["sid"], "session_id after refresh")
    again = um.load_sealed_session(session_data=refreshed.sealed_session, cookie_password=COOKIE_PASSWORD)
    check(again.authenticate().authenticated, "the resealed session does not authenticate")
    s["session"] = again
    return {"session_id": refreshed.session_id}


@step("used_refresh_token_is_refused")
def _() -> Any:
    first = um.authenticate_with_password(email=EMAIL, password=PASSWORD)
    second = um.authenticate_with_refresh_token(refresh_token=first.refresh_token)
    check(second.access_token != first.access_token, "the access token did not change")
    check(second.refresh_token != first.refresh_token, "the refresh token did not rotate")
    check_claims(second.access_token, first.user.id, "refreshed access token")
    e = rejection(lambda: um.authenticate_with_refresh_token(refresh_token=first.refresh_token), "refresh token reuse")
    check(isinstance(e, BadRequestError), f"exception type {type(e).__name__}")
    equal(e.status_code, 400, "status")
    equal(e.error, "invalid_grant", "error")
    return {"error": e.error}


@step("list_users_paginates_and_get_user")
def _() -> Any:
    seen = []
    page = um.list_users(limit=2, order="asc")
    pages = 1
    seen.extend(page.data)
    while page.has_more():
        check(pages < 50, "pagination does not end")
        page = um.list_users(limit=2, order="asc", after=page.after)
        check(page.data, "an `after` cursor led to an empty page")
        seen.extend(page.data)
        pages += 1
    ids = [u.id for u in seen]
    equal(len(set(ids)), len(ids), "no user listed twice")
    if EXPECT_USER_COUNT is not None:
        equal(len(seen), EXPECT_USER_COUNT, "users across pages")
    auto = list(um.list_users(limit=2, order="asc").auto_paging_iter())
    equal([u.id for u in auto], ids, "auto_paging_iter")
    user = um.get_user(need("auth").user.id)
    equal(user.email, EMAIL, "get_user email")
    e = rejection(lambda: um.get_user("user_01H0000000000000000000000Z"), "get_user of an unknown id")
    check(isinstance(e, NotFoundError), f"exception type {type(e).__name__}")
    observed["listed_users"] = len(seen)
    return {"pages": pages, "users": len(seen)}


@step("errors_map_to_sdk_exceptions")
def _() -> Any:
    e = rejection(lambda: um.authenticate_with_password(email=EMAIL, password=PASSWORD + "-wrong"), "a wrong password")
    check(isinstance(e, BadRequestError), f"wrong password: exception type {type(e).__name__}")
    equal(e.code, "invalid_credentials", "wrong password: code")
    wrong = WorkOSClient(api_key="sk_test_wrong", client_id=CLIENT_ID, base_url=BASE, max_retries=0)
    e2 = rejection(lambda: wrong.user_management.list_users(), "a wrong API key")
    check(isinstance(e2, AuthenticationError), f"wrong key: exception type {type(e2).__name__}")
    return {"wrong_password": e.code}


@step("organization_selection_flow")
def _() -> Any:
    if not MULTI_ORG_EMAIL:
        raise Skip("MULTI_ORG_EMAIL not given")
    e = rejection(lambda: um.authenticate_with_password(email=MULTI_ORG_EMAIL, password=PASSWORD), "multi-org sign-in")
    check(isinstance(e, OrganizationSelectionRequiredError), f"exception type {type(e).__name__}: {e}")
    check(e.pending_authentication_token, "pending_authentication_token")
    check(e.organizations and len(e.organizations) >= 2, f"organizations {e.organizations}")
    chosen = e.organizations[-1]["id"]
    auth = um.authenticate_with_organization_selection(
        pending_authentication_token=e.pending_authentication_token, organization_id=chosen
    )
    equal(auth.organization_id, chosen, "organization_id")
    return {"chosen": chosen}


@step("logout_url_redirects_and_ends_session")
def _() -> Any:
    session = need("session")
    return_to = f"{app.origin}/signed-out"
    url = session.get_logout_url(return_to=return_to)
    check(url.startswith(f"{BASE}/user_management/sessions/logout?session_id=session_"), f"url {url}")
    status, headers, _ = browse(url)
    equal(status, 302, "logout status")
    equal(headers.get("Location") or headers.get("location"), return_to, "Location")
    refreshed = session.refresh()
    check(not refreshed.authenticated, "the session still refreshes after logout")
    observed["logged_out_session"] = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["session_id"][0]
    return {"session_id": observed["logged_out_session"]}


app.close()
count = lambda status: sum(1 for st in steps if st["status"] == status)  # noqa: E731
report = {
    "versions": {"python": sys.version.split()[0], "workos": dist_version("workos"), "PyJWT": jwt.__version__},
    "base": BASE,
    "steps": steps,
    "observed": observed,
    "summary": {k: count(k) for k in ("ok", "failed", "deviation", "skipped")},
}
print(json.dumps(report, default=str))
sys.exit(0 if report["summary"]["failed"] + report["summary"]["deviation"] == 0 else 1)
