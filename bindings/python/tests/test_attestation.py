"""Key attestation through the Python bindings: a key store without
attestation (software keys) is refused by a server that requires one, with
the typed error, and the refused key is deleted; under the default
`verify` the same key store registers and signs in with `swk`."""

import asyncio
import tempfile

import pytest

from devicetrust_sdk import devicetrust
from devicetrust_sdk import devicetrust_core as core
from conftest import PASSWORD, RP_ID
from keystore import CryptographyKeyStore


def phone(server):
    folder = tempfile.mkdtemp()
    keys = CryptographyKeyStore(folder + "/keys")
    config = devicetrust.default_config(server.base, RP_ID, folder + "/state")
    config.allow_insecure_http = True
    config.platform = core.Platform.OTHER
    return devicetrust.DeviceTrustClient(config, keys), keys


def prompt(title):
    return core.PromptText(title=title, subtitle=None, cancel_label="Cancel")


async def signed_in(server, sdk, user):
    server.add_user(user)
    await sdk.sign_in_with_password(user, PASSWORD)
    step = await sdk.complete_enrolment("135790", None)
    await sdk.send_otp(step.otp_options[0].channel)
    step = await sdk.verify_otp(server.last_otp(user))
    assert step.is_SIGNED_IN()


def test_require_refuses_a_key_without_attestation(require_server):
    async def run():
        core.uniffi_set_event_loop(asyncio.get_running_loop())
        sdk, keys = phone(require_server)
        await signed_in(require_server, sdk, "py.unattested")
        with pytest.raises(core.DeviceTrustError.AttestationInvalid):
            await sdk.enable_biometric_sign_in(
                "Jane's laptop", core.UserVerification.BIOMETRIC, prompt("Turn on"))
        assert keys.key_count() == 0
        assert not sdk.is_biometric_sign_in_available("py.unattested")

    asyncio.run(run())


def test_verify_accepts_a_software_key_without_attestation(server):
    async def run():
        core.uniffi_set_event_loop(asyncio.get_running_loop())
        sdk, keys = phone(server)
        await signed_in(server, sdk, "py.software")
        device = await sdk.enable_biometric_sign_in(
            "Jane's laptop", core.UserVerification.BIOMETRIC, prompt("Turn on"))
        assert device.key_storage == "software"
        assert device.attestation is None
        await sdk.sign_out()
        step = await sdk.sign_in_with_biometric("py.software", prompt("Sign in"))
        assert step.session.amr == ["swk", "bio"]

    asyncio.run(run())
