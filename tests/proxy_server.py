"""A real HTTP proxy (proxy.py) on loopback for tests/test_proxy.py, run as a subprocess.

``python -m tests.proxy_server LOG [proxy.py flags...]`` listens on 127.0.0.1 on a free
port, prints that port on stdout once it accepts connections (the test's readiness
signal: no polling, no sleeps), appends one line per tunnel it opens to LOG
(``CONNECT host:port``, written before it connects upstream, so before the client can
see its 200), and runs until its stdin closes (or it is killed).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from proxy import Proxy
from proxy.http.proxy import HttpProxyBasePlugin

#: The log's path, in the environment: the plugin runs in proxy.py's worker, which
#: imports this module anew (as ``tests.proxy_server``, not ``__main__``).
LOG_ENV = "RELAY_TEST_PROXY_LOG"


class RecordConnects(HttpProxyBasePlugin):
    """Writes ``CONNECT host:port`` for every tunnel the proxy accepted (after its auth)."""

    def before_upstream_connection(self, request: Any) -> Any:
        if request.method == b"CONNECT":
            with open(os.environ[LOG_ENV], "a", encoding="ascii") as log:
                log.write(f"CONNECT {request.host.decode()}:{request.port}\n")
        return request


def main() -> None:
    os.environ[LOG_ENV] = sys.argv[1]
    flags = [
        "--hostname",
        "127.0.0.1",
        "--port",
        "0",
        "--num-workers",
        "1",
        "--num-acceptors",
        "1",
        # Idle tunnels stay up for the length of any test (the default drops them at 10 s).
        "--timeout",
        "600",
        *sys.argv[2:],
    ]
    with Proxy(flags, plugins=[b"tests.proxy_server.RecordConnects"]) as proxy:
        sys.stdout.write(f"{proxy.flags.port}\n")
        sys.stdout.flush()
        sys.stdin.read()


if __name__ == "__main__":
    main()
