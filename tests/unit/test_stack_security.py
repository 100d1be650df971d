"""`make run TLS=1` / `AUTH_KEYS=`: the stack's local certificates and the dialog's own calls to the
same server (trusting the local CA, presenting the client certificate under mutual TLS, a minted key)."""

from __future__ import annotations

from rivulet.core.apikeys import entry_yaml, new_key
from rivulet.core.auth import Authenticator
from rivulet.stack import StackSettings, _secure_local_calls, use_local_tls


def test_local_tls_makes_certificates_once_and_the_dialog_trusts_them(tmp_path):
    settings = StackSettings()
    ca = use_local_tls(settings, tmp_path / "tls")
    assert ca == tmp_path / "tls" / "ca.pem" and ca.read_bytes().startswith(b"-----BEGIN CERTIFICATE")
    first = settings.tls_cert_file.read_bytes()
    use_local_tls(StackSettings(), tmp_path / "tls")
    assert settings.tls_cert_file.read_bytes() == first  # kept, so clients' trust survives restarts
    _secure_local_calls(settings)
    assert settings.client_tls and settings.client_tls_ca_file == ca
    assert settings.client_tls_cert_file is None  # no client certificate unless mutual TLS is on


def test_mutual_tls_gives_the_dialog_the_client_certificate(tmp_path):
    settings = StackSettings()
    ca = use_local_tls(settings, tmp_path / "tls")
    settings.tls_client_ca_file = ca
    _secure_local_calls(settings)
    assert settings.client_tls_cert_file == tmp_path / "tls" / "client.pem"
    assert settings.client_tls_key_file == tmp_path / "tls" / "client.key"


def test_with_api_keys_the_stack_mints_a_key_its_server_accepts(tmp_path):
    keys = tmp_path / "keys.yaml"
    keys.write_text(
        "keys:\n"
        + "".join(f"  {line}\n" for line in entry_yaml("me", new_key(), [], None, None).splitlines())
    )
    settings = StackSettings(auth_keys_file=keys)
    _secure_local_calls(settings)
    minted = settings.client_api_key.get_secret_value()
    assert minted.startswith("rvk_")
    auth = Authenticator(settings)
    assert auth.keys.lookup(minted) is None
    auth.keys.add_internal("stack-internal", minted)
    assert auth.keys.lookup(minted).name == "stack-internal"
    assert not settings.client_tls  # no TLS asked for: plain text
