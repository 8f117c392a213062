"""services_env.py - the test servers' addresses for the Python tests: the
file tests/services/services.sh up writes (KEY=VALUE lines), as a dict.
One reader for tests/formats_judge.py and clients/python's test."""
import os


def services():
    """The services.env of OUTBOX_SERVICES_DIR (default
    ~/.cache/service-outbox); OSError when the servers were never started."""
    path = os.path.join(os.environ.get("OUTBOX_SERVICES_DIR", os.path.expanduser("~/.cache/service-outbox")),
                        "services.env")
    env = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v.strip("'")
    return env
