"""The Hub's internal SSL (``JUPYTERHUB_SSL_*``): calls to the Hub's API present this
server's certificate and verify the Hub's against the Hub's CA; ``junction-singleuser``
serves HTTPS with the certificate the Hub made. A real TLS server on loopback that requires
client certificates stands for the Hub."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from junction.plugins.hub.hubapi import HubAPI, HubUnavailable
from junction.plugins.hub.settings import HubSettings
from junction.plugins.hub.singleuser import hub_arguments

pytestmark = pytest.mark.anyio


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(
    folder: Path,
    stem: str,
    *,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A key and certificate (a CA without ``issuer``), written to ``<stem>.crt``/``.key``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(stem))
        .issuer_name(issuer[0].subject if issuer else _name(stem))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    signer = issuer[1] if issuer else key
    cert = builder.sign(signer, hashes.SHA256())
    (folder / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{stem}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    """The Hub's CA, the Hub's certificate and this server's, as the Hub makes them."""
    ca = _issue(tmp_path, "ca")
    _issue(tmp_path, "hub", issuer=ca)
    _issue(tmp_path, "server", issuer=ca)
    return tmp_path


@pytest.fixture
def tls_hub(certs: Path) -> Iterator[str]:
    """A Hub API over TLS that requires a client certificate signed by the Hub's CA."""

    async def root(request: Request) -> Response:
        return JSONResponse({"version": "6.1.1"}, headers={"x-jupyterhub-version": "6.1.1"})

    app = Starlette(routes=[Route("/hub/api/", root)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="critical",
        lifespan="off",
        ssl_certfile=str(certs / "hub.crt"),
        ssl_keyfile=str(certs / "hub.key"),
        ssl_ca_certs=str(certs / "ca.crt"),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the TLS Hub did not start"
        assert time.monotonic() < deadline, "the TLS Hub did not start in time"
        time.sleep(0.01)
    try:
        yield f"https://127.0.0.1:{port}/hub/api"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


async def test_hub_calls_present_the_internal_certificate(tls_hub: str, certs: Path) -> None:
    settings = HubSettings(
        api_url=tls_hub,
        ssl_certfile=str(certs / "server.crt"),
        ssl_keyfile=str(certs / "server.key"),
        ssl_client_ca=str(certs / "ca.crt"),
    )
    async with HubAPI(settings) as api:
        await api.check()
        assert api.hub_version == "6.1.1"


async def test_without_the_internal_certificate_the_hub_is_unreachable(
    tls_hub: str, certs: Path
) -> None:
    bare = HubSettings(api_url=tls_hub, ssl_certfile="", ssl_keyfile="", ssl_client_ca="")
    async with HubAPI(bare) as api:
        with pytest.raises(HubUnavailable):
            await api.check()


def test_singleuser_serves_https_with_the_hubs_certificate() -> None:
    args = hub_arguments(
        {
            "JUPYTERHUB_SSL_CERTFILE": "/etc/hub/server.crt",
            "JUPYTERHUB_SSL_KEYFILE": "/etc/hub/server.key",
            "JUPYTERHUB_SSL_CLIENT_CA": "/etc/hub/ca.crt",
        }
    )
    pairs = dict(zip(args[3::2], args[4::2], strict=True))
    assert pairs == {"--certfile": "/etc/hub/server.crt", "--keyfile": "/etc/hub/server.key"}
