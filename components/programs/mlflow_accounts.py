"""The MLflow setup Job (``components.mlflow``, ``Mlflow.add_tenant_accounts``): as the admin, with MLflow's auth REST
API (``2.0/mlflow/users/get|create|update-password``), creates every missing account and sets the others' passwords to
their Secret's values. Idempotent; prints no password.

Environment: ``MLFLOW_TRACKING_URI``, the admin's ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``, and
``ACCOUNTS``: JSON, each user to the variable that holds its password.
"""

import base64
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

from .wait import wait_for_url


def main():
    server = os.environ["MLFLOW_TRACKING_URI"].rstrip("/")
    admin = os.environ["MLFLOW_TRACKING_USERNAME"] + ":" + os.environ["MLFLOW_TRACKING_PASSWORD"]
    headers = {
        "Authorization": "Basic " + base64.b64encode(admin.encode()).decode(),
        "Content-Type": "application/json",
    }

    def call(method, action, body=None, query=None):
        url = server + "/api/2.0/mlflow/users/" + action + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method), timeout=30) as reply:
                return reply.status
        except urllib.error.HTTPError as error:
            return error.code

    wait_for_url(server + "/health", "MLflow")
    for user, variable in sorted(json.loads(os.environ["ACCOUNTS"]).items()):
        password = os.environ[variable]
        status = call("GET", "get", query={"username": user})
        if status == 404:
            status, done = call("POST", "create", {"username": user, "password": password}), "created"
        elif status == 200:
            status, done = call("PATCH", "update-password", {"username": user, "password": password}), "password set"
        if status != 200:
            sys.exit(f"{user}: HTTP {status}")
        print(f"{user}: {done}")


if __name__ == "__main__":
    main()
