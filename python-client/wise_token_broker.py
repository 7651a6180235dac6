"""Caller client of the Wise token broker for Python services.

Signs every request with AWS Signature Version 4 for ``execute-api`` using botocore's signer and its
default credential chain (or the credentials you pass), caches each token until its ``validUntil``,
lets one request per target run at a time so that concurrent threads share its answer, and asks once
more with ``rejectedGeneration`` when Wise answers 401. Needs only botocore (Debian: python3-botocore).
Nothing is logged; no error message carries a token.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Dict, List, Optional

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

__all__ = ["BrokerClient", "BrokerClientError"]

#: The most pages ``list_connections`` follows before it gives up on a broker that never ends.
MAX_PAGES = 1000


class BrokerClientError(Exception):
    """The broker refused or failed a request, or could not be reached.

    ``code`` is the broker's ``error`` (``forbidden``, ``connection_not_found``,
    ``reauthorization_required``, ``provider_unavailable``, ``service_unavailable``, ...) or one of the
    client's own: ``network_error`` (status 0: no answer), ``invalid_request`` (status 0: not sent),
    ``unexpected_response`` (an answer that is not the broker's JSON). The two 503s,
    ``provider_unavailable`` (Wise) and ``service_unavailable`` (the broker's storage, encryption service
    or credentials store), carry ``retry_after_seconds``: ask again after that long.
    """

    def __init__(self, message: str, status: int, code: str, retry_after_seconds: Optional[int] = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after_seconds = retry_after_seconds


def _parse_time(value: str) -> float:
    """Epoch seconds of an ISO-8601 time such as ``2026-03-02T09:00:00.000Z``."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _retry_after(header: Optional[str], now: float) -> Optional[int]:
    if header is None:
        return None
    header = header.strip()
    if header.isdigit():
        return int(header)
    try:
        return max(0, int(parsedate_to_datetime(header).timestamp() - now + 0.999))
    except (TypeError, ValueError):
        return None


def _path_segment(connection_id: str) -> str:
    if connection_id in ("", ".", ".."):
        raise BrokerClientError(
            f'The connection id "{connection_id}" cannot be used in a URL path.', 0, "invalid_request"
        )
    return urllib.parse.quote(connection_id, safe="")


class _Cached:
    def __init__(self, token: Dict[str, Any]):
        self.token = token
        self.valid_until = _parse_time(token["validUntil"])


class BrokerClient:
    """Calls the Wise token broker with IAM (SigV4) credentials.

    :param base_url: the broker's API URL, e.g. ``https://abc123.execute-api.eu-west-1.amazonaws.com``
    :param region: the region the API is in; requests are signed for it
    :param credentials: botocore credentials; botocore's default chain when absent (environment,
        shared files, SSO, web identity, container and instance metadata)
    :param now: the clock in epoch seconds, for the token cache
    :param timeout: seconds to wait for the broker's answer
    """

    def __init__(
        self,
        base_url: str,
        region: str,
        credentials: Any = None,
        now: Callable[[], float] = time.time,
        timeout: float = 30.0,
    ):
        self._base = base_url.rstrip("/")
        self._region = region
        self._credentials = credentials
        self._now = now
        self._timeout = timeout
        self._tokens: Dict[str, _Cached] = {}
        self._locks: Dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # Tokens

    def get_token(
        self,
        connection_id: Optional[str] = None,
        kind: Optional[str] = None,
        min_validity_seconds: Optional[int] = None,
        rejected_generation: Optional[int] = None,
    ) -> Dict[str, Any]:
        """The current token of ``connection_id``, or the client-credentials token (``kind="client"``).

        A cached token is used until its ``validUntil`` unless its generation was rejected; otherwise
        the broker is asked, once at a time per target. Returns the broker's JSON answer
        (``accessToken``, ``tokenType``, ``expiresAt``, ``validUntil``, ``generation``, ...).

        :raises BrokerClientError: with the broker's error code
        """
        if (connection_id is None) == (kind is None):
            raise BrokerClientError("Give either connection_id or kind='client'.", 0, "invalid_request")
        target: Dict[str, Any] = {"connectionId": connection_id} if connection_id is not None else {"kind": kind}
        key = f"connection:{connection_id}" if connection_id is not None else "client"
        with self._lock_for(key):
            cached = self._tokens.get(key)
            if cached is not None and self._usable(cached, rejected_generation):
                return cached.token
            body = dict(target)
            if min_validity_seconds is not None:
                body["minValiditySeconds"] = min_validity_seconds
            if rejected_generation is not None:
                body["rejectedGeneration"] = rejected_generation
            token = self._json("POST", "/tokens", body=body)
            if not isinstance(token, dict) or not isinstance(token.get("accessToken"), str) or not isinstance(
                token.get("generation"), int
            ):
                raise BrokerClientError(
                    "The broker answered POST /tokens with a body the client does not understand.",
                    200,
                    "unexpected_response",
                )
            current = self._tokens.get(key)
            if current is None or token["generation"] >= current.token["generation"]:
                self._tokens[key] = _Cached(token)
            return token

    def with_token(
        self,
        call: Callable[[Dict[str, Any]], Any],
        connection_id: Optional[str] = None,
        kind: Optional[str] = None,
    ) -> Any:
        """Runs ``call(token)``; when its result has ``status`` (or ``status_code``) 401, reports the token's
        generation as rejected and runs ``call`` once more with the token the broker gives then."""
        token = self.get_token(connection_id=connection_id, kind=kind)
        result = call(token)
        if getattr(result, "status", getattr(result, "status_code", None)) != 401:
            return result
        renewed = self.get_token(connection_id=connection_id, kind=kind, rejected_generation=token["generation"])
        return call(renewed)

    # Connections

    def create_connect_session(self, connection_id: str, return_url: Optional[str] = None) -> Dict[str, Any]:
        """Starts connecting a Wise user: send the user's browser to the answer's ``startUrl``."""
        body: Dict[str, Any] = {"connectionId": connection_id}
        if return_url is not None:
            body["returnUrl"] = return_url
        return self._json("POST", "/connect-sessions", body=body)

    def get_connection(self, connection_id: str) -> Dict[str, Any]:
        """The status of one connection, without secrets."""
        return self._json("GET", f"/connections/{_path_segment(connection_id)}")

    def list_connections(self, status: Optional[str] = None) -> List[Dict[str, Any]]:
        """Every connection the caller administers, following the broker's pages to the end."""
        connections: List[Dict[str, Any]] = []
        next_token: Optional[str] = None
        for _ in range(MAX_PAGES):
            query: Dict[str, str] = {}
            if status is not None:
                query["status"] = status
            if next_token is not None:
                query["nextToken"] = next_token
            page = self._json("GET", "/connections", query=query)
            connections.extend(page["connections"])
            next_token = page.get("nextToken")
            if next_token is None:
                return connections
        raise BrokerClientError(
            f"The broker still had more connections after {MAX_PAGES} pages.", 200, "unexpected_response"
        )

    def delete_connection(self, connection_id: str) -> None:
        """Disconnects: the broker destroys the connection's tokens."""
        self._send("DELETE", f"/connections/{_path_segment(connection_id)}")

    # Internals

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def _usable(self, cached: _Cached, rejected_generation: Optional[int]) -> bool:
        if self._now() >= cached.valid_until:
            return False
        return rejected_generation is None or cached.token["generation"] > rejected_generation

    def _signing_credentials(self) -> Any:
        if self._credentials is None:
            self._credentials = botocore.session.Session().get_credentials()
            if self._credentials is None:
                raise BrokerClientError(
                    "No AWS credentials were found: set them in the environment, a profile or a role.",
                    0,
                    "invalid_request",
                )
        return self._credentials

    def _json(self, method: str, path: str, body: Any = None, query: Optional[Dict[str, str]] = None) -> Any:
        status, _headers, text = self._send(method, path, body=body, query=query)
        try:
            return json.loads(text)
        except ValueError:
            # Never quote the body: it may hold a token.
            raise BrokerClientError(
                f"The broker answered {method} {path} with a body the client does not understand.",
                status,
                "unexpected_response",
            ) from None

    def _send(self, method: str, path: str, body: Any = None, query: Optional[Dict[str, str]] = None):
        url = self._base + path
        if query:
            url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"accept": "application/json"}
        if data is not None:
            headers["content-type"] = "application/json"
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(self._signing_credentials().get_frozen_credentials(), "execute-api", self._region).add_auth(
            request
        )
        prepared = request.prepare()
        sent = urllib.request.Request(prepared.url, data=data, headers=dict(prepared.headers), method=method)
        try:
            with urllib.request.urlopen(sent, timeout=self._timeout) as response:
                return response.status, response.headers, response.read().decode("utf-8")
        except urllib.error.HTTPError as error:
            raise self._error_from(error.code, error.headers, error.read().decode("utf-8", "replace")) from None
        except (urllib.error.URLError, OSError) as error:
            raise BrokerClientError(
                f"The broker at {self._base} could not be reached.", 0, "network_error"
            ) from error

    def _error_from(self, status: int, headers: Any, text: str) -> BrokerClientError:
        retry_after = _retry_after(headers.get("retry-after") if headers else None, self._now())
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(body.get("message"), str):
            return BrokerClientError(body["message"], status, body["error"], retry_after)
        return BrokerClientError(
            f"The broker answered {status} without its JSON error body.", status, "unexpected_response", retry_after
        )
