"""Key attestation through the Python bindings: a key store without
attestation (software keys) is refused by a server that requires one, with
the typed error, and the refused key is deleted; under the default
`verify` the same key store registers and signs in with `swk`."""

import asyncio
import tempfile

import pytest

import devicetrust
from conftest import PASSWORD, RP_ID
from keystore import CryptographyKeyStore
from test_journey import amr


def phone(server):
    folder = tempfile.mkdtemp()
    keys = CryptographyKeyStore(folder + "/keys")
    config = devicetrust.Config(server_url=server.base, rp_id=RP_ID, state_dir=folder + "/state")
    config.allow_insecure_http = True
    return devicetrust.DeviceTrust(config, keys), keys


def prompt(title):
    return devicetrust.PromptText(title=title, subtitle=None, cancel_label="Cancel")


async def signed_in(server, sdk, user):
    server.add_user(user)
    await sdk.sign_in_with_password(user, PASSWORD)
    step = await sdk.complete_enrolment("135790", None)
    await sdk.send_otp(step.otp_options[0].channel)
    step = await sdk.verify_otp(server.last_otp(user))
    assert step.is_SIGNED_IN()


def test_require_refuses_a_key_without_attestation(require_server):
    async def run():
        sdk, keys = phone(require_server)
        await signed_in(require_server, sdk, "py.unattested")
        with pytest.raises(devicetrust.DeviceTrustError.AttestationInvalid):
            await sdk.enable_biometric_sign_in(
                "Jane's laptop", devicetrust.UserVerification.BIOMETRIC, prompt("Turn on"))
        assert keys.key_count() == 0
        assert not await sdk.is_biometric_sign_in_available("py.unattested")

    asyncio.run(run())


def test_verify_accepts_a_software_key_without_attestation(server):
    async def run():
        sdk, keys = phone(server)
        await signed_in(server, sdk, "py.software")
        device = await sdk.enable_biometric_sign_in(
            "Jane's laptop", devicetrust.UserVerification.BIOMETRIC, prompt("Turn on"))
        assert device.key_storage == devicetrust.KeyStorage.SOFTWARE
        assert device.attestation is None
        await sdk.sign_out()
        step = await sdk.sign_in_with_biometric("py.software", prompt("Sign in"))
        assert amr(step.session) == ["swk", "bio"]

    asyncio.run(run())
