"""A minimal client of the fastify-realtime HTTP server API, standard library only.

    from realtime_api import Api
    api = Api("http://localhost:3000/ws/api", key)
    api.call("POST", "/publish", {"room": "workflow:42", "type": "agent:thought", "data": {...}})
"""
import json
import time
import urllib.error
import urllib.request


class ApiError(RuntimeError):
    """A refusal of the API: its HTTP status and its error code (`invalid_message`, `forbidden`…)."""

    def __init__(self, status, code, message):
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code


class Api:
    def __init__(self, base, key):
        self.base = base
        self.key = key

    def call(self, method, path, body=None, headers=None):
        """One request; waits out a 429 (Retry-After) and raises ApiError with the API's code otherwise."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", "Bearer " + self.key)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                text = response.read()
                return json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            if error.code == 429:
                time.sleep(float(error.headers.get("Retry-After", "1")))
                return self.call(method, path, body, headers)
            problem = json.loads(error.read() or b"{}")
            raise ApiError(error.code, problem.get("code"), problem.get("message")) from None
