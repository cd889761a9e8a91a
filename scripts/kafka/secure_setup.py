"""Users and ACLs for the local broker's SASL_SSL listener (called by ``scripts/stack up``).

Through the PLAINTEXT listener (whose anonymous principal is a super user on this local stack
only), it creates the SCRAM users and grants the application user what the README's "Least
privilege" table lists for the default topic prefix and consumer groups: no CreateTopics, no
cluster rights. Idempotent: run again on every ``up``.

    python scripts/kafka/secure_setup.py 127.0.0.1:9092 <app password> <admin password>
"""

from __future__ import annotations

import sys

from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from leadstream.acls import kafka_app_acls

APP_USER, ADMIN_USER = "leadstream", "leadstream-admin"


def main(bootstrap: str, app_password: str, admin_password: str) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for mechanism in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512):
        # One credential per user and request: the broker refuses two changes to one user at once.
        upserts = [
            UserScramCredentialUpsertion(user, ScramCredentialInfo(mechanism, 4096), password.encode())
            for user, password in ((APP_USER, app_password), (ADMIN_USER, admin_password))
        ]
        for future in admin.alter_user_scram_credentials(upserts).values():
            future.result(timeout=30)
    for future in admin.create_acls(kafka_app_acls(APP_USER, "leadstream", "leadstream")).values():
        future.result(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
