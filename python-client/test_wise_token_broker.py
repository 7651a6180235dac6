"""Tests of wise_token_broker against a running local broker.

Run by test/e2e/python-client.test.ts, which starts the broker and sets BROKER_URL, WISE_URL,
CONNECTION_ID and the caller's AWS keys in the environment (read by botocore's default chain).
"""

import http.server
import json
import os
import threading
import time
import unittest
import urllib.error
import urllib.request

from botocore.credentials import Credentials

from wise_token_broker import BrokerClient, BrokerClientError, _parse_time

BROKER_URL = os.environ["BROKER_URL"]
WISE_URL = os.environ["WISE_URL"]
CONNECTION_ID = os.environ["CONNECTION_ID"]


class CountingClient(BrokerClient):
    """Counts the requests that reach the broker."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requests = []

    def _send(self, method, path, body=None, query=None):
        self.requests.append((method, path, body))
        return super()._send(method, path, body=body, query=query)


class WiseAnswer:
    def __init__(self, status):
        self.status = status


def end_at_wise(token):
    """Makes the simulator refuse this access token from now on, as when Wise ends a token early."""
    request = urllib.request.Request(
        WISE_URL + "/__control/revoke",
        data=json.dumps({"accessToken": token["accessToken"]}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def call_wise(token):
    request = urllib.request.Request(
        WISE_URL + "/v1/me", headers={"authorization": "Bearer " + token["accessToken"]}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return WiseAnswer(response.status)
    except urllib.error.HTTPError as error:
        return WiseAnswer(error.code)


class BrokerClientTest(unittest.TestCase):
    def test_vends_a_token_wise_accepts_and_serves_repeats_from_its_cache(self):
        client = CountingClient(BROKER_URL, "us-east-1")

        first = client.get_token(connection_id=CONNECTION_ID)
        second = client.get_token(connection_id=CONNECTION_ID)

        self.assertEqual(first["tokenType"], "Bearer")
        self.assertIs(second, first)
        self.assertEqual(len(client.requests), 1)
        self.assertEqual(call_wise(first).status, 200)

    def test_asks_the_broker_again_once_valid_until_has_passed(self):
        clock = {"now": time.time()}
        client = CountingClient(BROKER_URL, "us-east-1", now=lambda: clock["now"])
        token = client.get_token(connection_id=CONNECTION_ID)

        clock["now"] = _parse_time(token["validUntil"]) - 1
        client.get_token(connection_id=CONNECTION_ID)
        self.assertEqual(len(client.requests), 1)

        clock["now"] = _parse_time(token["validUntil"])
        client.get_token(connection_id=CONNECTION_ID)
        self.assertEqual(len(client.requests), 2)

    def test_concurrent_threads_share_one_request(self):
        client = CountingClient(BROKER_URL, "us-east-1")
        tokens = []
        threads = [
            threading.Thread(target=lambda: tokens.append(client.get_token(kind="client"))) for _ in range(5)
        ]

        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        self.assertEqual(len(tokens), 5)
        self.assertEqual(len(client.requests), 1)

    def test_after_a_401_from_wise_asks_once_more_with_the_rejected_generation(self):
        client = CountingClient(BROKER_URL, "us-east-1")
        stale = client.get_token(connection_id=CONNECTION_ID)
        # Wise ends the token early; another service meets the 401 first and makes the broker refresh.
        end_at_wise(stale)
        BrokerClient(BROKER_URL, "us-east-1").get_token(
            connection_id=CONNECTION_ID, rejected_generation=stale["generation"]
        )
        used = []

        def call(token):
            used.append(token["generation"])
            return call_wise(token)

        answer = client.with_token(call, connection_id=CONNECTION_ID)

        self.assertEqual(answer.status, 200)
        self.assertEqual(used[0], stale["generation"])
        self.assertGreater(used[1], stale["generation"])
        self.assertEqual(client.requests[-1][2]["rejectedGeneration"], stale["generation"])

    def test_an_unknown_connection_raises_the_broker_error_code(self):
        client = BrokerClient(BROKER_URL, "us-east-1")

        with self.assertRaises(BrokerClientError) as raised:
            client.get_token(connection_id="acme-never-connected")

        self.assertEqual((raised.exception.status, raised.exception.code), (404, "connection_not_found"))

    def test_a_503_service_unavailable_raises_its_code_and_retry_after(self):
        message = "The broker's storage is unavailable just now; try again in 5 s."

        class Unavailable(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", "0")))
                body = json.dumps({"error": "service_unavailable", "message": message}).encode()
                self.send_response(503)
                self.send_header("content-type", "application/json")
                self.send_header("retry-after", "5")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Unavailable)
        serving = threading.Thread(target=server.handle_request)
        serving.start()
        try:
            client = BrokerClient(f"http://127.0.0.1:{server.server_port}", "us-east-1")
            with self.assertRaises(BrokerClientError) as raised:
                client.get_token(connection_id=CONNECTION_ID)
        finally:
            serving.join(timeout=10)
            server.server_close()

        error = raised.exception
        self.assertEqual((error.status, error.code, error.retry_after_seconds), (503, "service_unavailable", 5))
        self.assertEqual(str(error), message)

    def test_a_wrong_secret_key_is_refused_by_the_gateway(self):
        access_key = os.environ["AWS_ACCESS_KEY_ID"]
        client = BrokerClient(BROKER_URL, "us-east-1", credentials=Credentials(access_key, "not-the-secret"))

        with self.assertRaises(BrokerClientError) as raised:
            client.get_token(connection_id=CONNECTION_ID)

        self.assertEqual(raised.exception.status, 403)

    def test_a_connection_id_that_is_not_a_path_segment_is_not_sent(self):
        client = CountingClient(BROKER_URL, "us-east-1")

        with self.assertRaises(BrokerClientError) as raised:
            client.get_connection("..")

        self.assertEqual(raised.exception.code, "invalid_request")
        self.assertEqual(client.requests, [])


if __name__ == "__main__":
    unittest.main()
