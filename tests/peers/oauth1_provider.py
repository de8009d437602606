#!/usr/bin/env python3
"""An OAuth 1.0a provider (RFC 5849) for plugboard's tests: oauthlib's own endpoints
(RequestTokenEndpoint, AuthorizationEndpoint, AccessTokenEndpoint, ResourceEndpoint) and a
RequestValidator that keeps everything in memory, behind a stdlib HTTP server.

Every signature plugboard makes is verified here by oauthlib, an implementation independent
of plugboard's. Refusals are reported as the OAuth Problem Reporting extension has them
(`oauth_problem=<word>`), which is what plugboard reads.

    python3 oauth1_provider.py --config CONFIG.json

CONFIG.json: {"clients": {"<key>": {"secret": "..."} | {"rsa_public_key": "<PEM>"}},
"skew_seconds": 0}. Prints `listening on http://127.0.0.1:PORT` once it listens.
The endpoints and the control API are described in README.md beside this file.
"""

import argparse
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from oauthlib.oauth1 import (
    AccessTokenEndpoint,
    AuthorizationEndpoint,
    RequestTokenEndpoint,
    RequestValidator,
    ResourceEndpoint,
)
from oauthlib.oauth1.rfc5849 import SIGNATURE_HMAC_SHA1, SIGNATURE_HMAC_SHA256
from oauthlib.oauth1.rfc5849 import SIGNATURE_PLAINTEXT, SIGNATURE_RSA_SHA1
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header

# How far a request's timestamp may be from the provider's clock, as many providers allow.
TIMESTAMP_WINDOW = 300


def token():
    """A token or secret in the characters oauthlib accepts."""
    return secrets.token_hex(16)


class State:
    """Everything the provider knows, behind one lock (the server is threaded)."""

    def __init__(self, config):
        self.lock = threading.Lock()
        self.clients = config["clients"]
        self.skew = config.get("skew_seconds", 0)
        self.request_tokens = {}  # token -> {client, secret, callback, verifier, used}
        self.access_tokens = {}  # token -> {client, secret, revoked}
        self.nonces = set()
        self.requests = []
        self.next_request_token_problem = None

    def now(self):
        return time.time() + self.skew


class Validator(RequestValidator):
    """oauthlib's questions, answered from `State`. Each refusal records its problem word on
    the request, so the answer can name it."""

    def __init__(self, state):
        super().__init__()
        self.state = state

    # plugboard's keys, tokens and nonces: letters, digits, '-' and '_', 3 to 100 long.
    safe_characters = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
    client_key_length = (3, 100)
    request_token_length = (3, 100)
    access_token_length = (3, 100)
    nonce_length = (8, 100)
    verifier_length = (3, 100)
    # The provider checks the timestamp itself, against its own (possibly skewed) clock.
    timestamp_lifetime = 10**10
    # The tests speak HTTP to 127.0.0.1.
    enforce_ssl = False

    @property
    def allowed_signature_methods(self):
        return (SIGNATURE_HMAC_SHA1, SIGNATURE_HMAC_SHA256, SIGNATURE_RSA_SHA1, SIGNATURE_PLAINTEXT)

    dummy_client = "dummy-client"
    dummy_request_token = "dummy-request-token"
    dummy_access_token = "dummy-access-token"

    def refuse(self, request, problem):
        if not getattr(request, "problem", None):
            request.problem = problem
        return False

    def validate_client_key(self, client_key, request):
        return client_key in self.state.clients or self.refuse(request, "consumer_key_unknown")

    def get_client_secret(self, client_key, request):
        return self.state.clients.get(client_key, {}).get("secret", "dummy")

    def get_rsa_key(self, client_key, request):
        return self.state.clients.get(client_key, {}).get("rsa_public_key")

    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request,
                                     request_token=None, access_token=None):
        seen = (client_key, timestamp, nonce, request_token or access_token)
        with self.state.lock:
            if seen in self.state.nonces:
                return self.refuse(request, "nonce_used")
            self.state.nonces.add(seen)
        return True

    def validate_redirect_uri(self, client_key, redirect_uri, request):
        local = redirect_uri.startswith(("http://127.0.0.1", "http://localhost"))
        return local or self.refuse(request, "parameter_rejected")

    def validate_requested_realms(self, client_key, realms, request):
        return True

    def get_default_realms(self, client_key, request):
        return []

    def save_request_token(self, token, request):
        with self.state.lock:
            self.state.request_tokens[token["oauth_token"]] = {
                "client": request.client_key,
                "secret": token["oauth_token_secret"],
                "callback": request.redirect_uri,
                "verifier": None,
                "used": False,
            }

    def _request_token(self, token):
        entry = self.state.request_tokens.get(token)
        return entry if entry and not entry["used"] else None

    def verify_request_token(self, token, request):
        return self._request_token(token) is not None or self.refuse(request, "token_rejected")

    def get_realms(self, token, request):
        return []

    def get_redirect_uri(self, token, request):
        return self.state.request_tokens[token]["callback"]

    def save_verifier(self, token, verifier, request):
        with self.state.lock:
            self.state.request_tokens[token]["verifier"] = verifier["oauth_verifier"]

    def validate_request_token(self, client_key, token, request):
        entry = self._request_token(token)
        ok = entry is not None and entry["client"] == client_key
        return ok or self.refuse(request, "token_rejected")

    def get_request_token_secret(self, client_key, token, request):
        entry = self._request_token(token)
        return entry["secret"] if entry else "dummy"

    def validate_verifier(self, client_key, token, verifier, request):
        entry = self._request_token(token)
        ok = entry is not None and entry["verifier"] == verifier
        return ok or self.refuse(request, "verifier_invalid")

    def verify_realms(self, token, realms, request):
        return True

    def invalidate_request_token(self, client_key, request_token, request):
        with self.state.lock:
            self.state.request_tokens[request_token]["used"] = True

    def save_access_token(self, token, request):
        with self.state.lock:
            self.state.access_tokens[token["oauth_token"]] = {
                "client": request.client_key,
                "secret": token["oauth_token_secret"],
                "revoked": False,
            }

    def validate_access_token(self, client_key, token, request):
        entry = self.state.access_tokens.get(token)
        if entry is None or entry["client"] != client_key:
            return self.refuse(request, "token_rejected")
        if entry["revoked"]:
            return self.refuse(request, "token_revoked")
        return True

    def get_access_token_secret(self, client_key, token, request):
        entry = self.state.access_tokens.get(token)
        return entry["secret"] if entry else "dummy"

    def validate_realms(self, client_key, token, request, uri=None, realms=None):
        return True


def handler(state):
    validator = Validator(state)
    request_tokens = RequestTokenEndpoint(validator)
    authorization = AuthorizationEndpoint(validator)
    access_tokens = AccessTokenEndpoint(validator)
    resources = ResourceEndpoint(validator)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            # The path only: queries carry tokens.
            sys.stderr.write("oauth1 provider: %s %s\n" % (self.command, self.path.split("?")[0]))

        def answer(self, status, body, content_type="application/x-www-form-urlencoded", headers=()):
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def problem(self, status, word, **extra):
            self.answer(status, urlencode({"oauth_problem": word, **extra}))

        def record(self, ok, problem=None):
            params = dict(parse_authorization_header(self.headers.get("Authorization", ""))) \
                if self.headers.get("Authorization", "").startswith("OAuth ") else {}
            with state.lock:
                state.requests.append({
                    "path": urlsplit(self.path).path,
                    "signature_method": params.get("oauth_signature_method"),
                    "ok": ok,
                    "problem": problem,
                })

        def signed(self):
            """The request as oauthlib reads it, or None after answering a refused clock."""
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            uri = "http://%s%s" % (self.headers["Host"], self.path)
            headers = dict(self.headers)
            authorization = self.headers.get("Authorization", "")
            if authorization.startswith("OAuth "):
                params = dict(parse_authorization_header(authorization))
                stamp = params.get("oauth_timestamp", "")
                now = int(state.now())
                if not stamp.isdigit() or abs(int(stamp) - now) > TIMESTAMP_WINDOW:
                    self.record(False, "timestamp_refused")
                    window = "%d-%d" % (now - TIMESTAMP_WINDOW, now + TIMESTAMP_WINDOW)
                    self.problem(401, "timestamp_refused", oauth_acceptable_timestamps=window)
                    return None
            return uri, body, headers

        def refused(self, request, status, fallback):
            """Answers a refusal with its problem word: the validator's, else `fallback`."""
            word = getattr(request, "problem", None) or fallback
            self.record(False, word)
            self.problem(401 if status in (401, 403) else status, word)

        def do_POST(self):
            path = urlsplit(self.path).path
            if path == "/control":
                return self.control()
            signed = self.signed()
            if signed is None:
                return
            uri, body, headers = signed
            if path == "/request_token":
                return self.request_token(uri, body, headers)
            if path == "/access_token":
                return self.access_token(uri, body, headers)
            if path.startswith("/api/"):
                return self.resource(uri, body, headers, path)
            self.answer(404, "not found", "text/plain")

        def do_GET(self):
            path = urlsplit(self.path).path
            if path == "/control/state":
                with state.lock:
                    snapshot = {
                        "revoked": [t for t, e in state.access_tokens.items() if e["revoked"]],
                        "nonces_seen": len(state.nonces),
                        "requests": list(state.requests),
                    }
                return self.answer(200, json.dumps(snapshot), "application/json")
            if path == "/authorize":
                return self.authorize()
            if path.startswith("/api/"):
                signed = self.signed()
                if signed is not None:
                    self.resource(*signed, path)
                return
            self.answer(404, "not found", "text/plain")

        def control(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with state.lock:
                if "request_token_problem" in body:
                    state.next_request_token_problem = body["request_token_problem"]
                if "skew_seconds" in body:
                    state.skew = body["skew_seconds"]
            self.answer(200, "{}", "application/json")

        def request_token(self, uri, body, headers):
            with state.lock:
                scripted, state.next_request_token_problem = state.next_request_token_problem, None
            if scripted:
                self.record(False, scripted)
                return self.problem(401, scripted,
                                    oauth_problem_advice="the consumer key is not allowed to connect")
            try:
                out_headers, out_body, status = request_tokens.create_request_token_response(
                    uri, "POST", body, headers)
            except Exception as err:  # a malformed request: say so, as a provider would
                self.record(False, "parameter_rejected")
                return self.problem(400, "parameter_rejected", oauth_problem_advice=str(err)[:100])
            self.finish_token_response(status, out_body)

        def access_token(self, uri, body, headers):
            out_headers, out_body, status = access_tokens.create_access_token_response(
                uri, "POST", body, headers,
                credentials={"user_id": "4242", "screen_name": "acme-admin"})
            self.finish_token_response(status, out_body)

        def finish_token_response(self, status, out_body):
            if status == 200:
                self.record(True)
                return self.answer(200, out_body)
            word = last_problem.get(threading.get_ident()) or self.fallback(status, out_body)
            self.record(False, word)
            self.problem(401 if status in (401, 403) else 400, word)

        def fallback(self, status, out_body):
            text = out_body or ""
            if "signature_method" in text or "Invalid signature," in text:
                return "signature_method_rejected"
            if status == 400:
                return "parameter_absent"
            return "signature_invalid"

        def authorize(self):
            query = parse_qs(urlsplit(self.path).query)
            oauth_token = query.get("oauth_token", [""])[0]
            entry = state.request_tokens.get(oauth_token)
            if entry is None or entry["used"]:
                return self.problem(401, "token_rejected")
            if query.get("deny"):
                separator = "&" if "?" in entry["callback"] else "?"
                location = entry["callback"] + separator + urlencode({"denied": oauth_token})
                return self.answer(302, "", "text/plain", [("Location", location)])
            uri = "http://%s%s" % (self.headers["Host"], self.path)
            out_headers, _, status = authorization.create_authorization_response(uri, "GET")
            self.answer(status, "", "text/plain", list(out_headers.items()))

        def resource(self, uri, body, headers, path):
            method = self.command
            valid, request = resources.validate_protected_resource_request(
                uri, method, body, headers)
            if not valid:
                return self.refused(request, 401, "signature_invalid")
            self.record(True)
            with state.lock:
                entry = state.access_tokens[request.resource_owner_key]
                if path == "/api/disconnect":
                    entry["revoked"] = True
                    return self.answer(200, json.dumps({"revoked": True}), "application/json")
            self.answer(200, json.dumps({"user_id": "4242", "screen_name": "acme-admin"}),
                        "application/json")

    return Handler


# The problem word a token endpoint's validator recorded, per handling thread: oauthlib's
# token endpoints build their request object inside and do not hand it back.
last_problem = {}


def remember_problems():
    """Wraps `Validator.refuse` so that token endpoints' refusals reach `last_problem`."""
    original = Validator.refuse

    def refuse(self, request, problem):
        last_problem.setdefault(threading.get_ident(), problem)
        return original(self, request, problem)

    Validator.refuse = refuse


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def process_request_thread(self, request, client_address):
        last_problem.pop(threading.get_ident(), None)
        try:
            super().process_request_thread(request, client_address)
        finally:
            last_problem.pop(threading.get_ident(), None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    with open(args.config) as f:
        config = json.load(f)
    remember_problems()
    state = State(config)
    server = Server(("127.0.0.1", 0), handler(state))
    print("listening on http://127.0.0.1:%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
