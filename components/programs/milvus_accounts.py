"""The Milvus setup Job (``components.milvus``, ``Milvus.add_tenant_accounts``): as root, through Milvus's RESTful API
v2 (``/v2/vectordb/...``), creates each missing database and role, grants the role its privilege groups on its
database only, makes sure the user exists with its Secret's password and binds the role. Grants and bindings that
exist are accepted again. Milvus cannot reset a password without the old one unless the caller is a configured
superuser: ``update_password`` with the Secret's value as old and new password fails when the stored one differs, and
then the user is dropped and created again (its data belongs to the database, not to the user). Idempotent; prints no
password.

Environment: ``MILVUS_URI``, root's ``MILVUS_ROOT_USERNAME``/``MILVUS_ROOT_PASSWORD``, and ``ACCOUNTS``: JSON, a list
of ``{"user", "database", "grants", "password"}``, ``password`` naming the variable that holds it.
"""

import json
import os
import sys
import urllib.request

from .wait import wait_for


def main():
    base = os.environ["MILVUS_URI"].rstrip("/") + "/v2/vectordb/"
    root = os.environ["MILVUS_ROOT_USERNAME"] + ":" + os.environ["MILVUS_ROOT_PASSWORD"]

    def call(path, body):
        request = urllib.request.Request(
            base + path,
            json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": "Bearer " + root, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            return json.load(reply)

    def ok(path, body):
        reply = call(path, body)
        if reply.get("code", 0) != 0:
            sys.exit(f"{path}: {reply.get('code')} {reply.get('message')}")
        return reply.get("data")

    databases = set(wait_for(lambda: ok("databases/list", {}), "Milvus at " + base))
    roles, users = set(ok("roles/list", {})), set(ok("users/list", {}))
    for account in json.loads(os.environ["ACCOUNTS"]):
        user, database, password = account["user"], account["database"], os.environ[account["password"]]
        if database not in databases:
            ok("databases/create", {"dbName": database})
        if user not in roles:
            ok("roles/create", {"roleName": user})
        for grant in account["grants"]:
            ok("roles/grant_privilege_v2", grant)
        if (
            user in users
            and call("users/update_password", {"userName": user, "password": password, "newPassword": password}).get(
                "code", 0
            )
            != 0
        ):
            ok("users/drop", {"userName": user})
            users.discard(user)
        if user not in users:
            ok("users/create", {"userName": user, "password": password})
        ok("users/grant_role", {"userName": user, "roleName": user})
        print(f"{user}: database {database}, role and password set")


if __name__ == "__main__":
    main()
