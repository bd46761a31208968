"""The whole card-holder journey through the generated Python bindings, with
the key store implemented in Python, against the real server."""

import asyncio
import tempfile

import pytest

import devicetrust
from conftest import PASSWORD, RP_ID
from keystore import CryptographyKeyStore


AMR = {"PASSWORD": "pwd", "OTP": "otp", "HARDWARE_KEY": "hwk", "SOFTWARE_KEY": "swk",
       "BIOMETRIC": "bio"}


def amr(session):
    """The session's methods by their wire names (`AuthMethod` variants are
    classes: it has an `OTHER(name)` for names this SDK does not know)."""
    return [m.name if m.is_OTHER() else next(w for v, w in AMR.items() if getattr(m, "is_" + v)())
            for m in session.auth_methods]


async def bind_loop():
    """Nothing to register: the SDK's futures are polled on the asyncio
    loop's thread (uniffi's tokio support), so the key store's coroutines
    start there too. Kept as the place to say so."""


def phone(server):
    folder = tempfile.mkdtemp()
    keys = CryptographyKeyStore(folder + "/keys")
    config = devicetrust.Config(server_url=server.base, rp_id=RP_ID, state_dir=folder + "/state")
    config.allow_insecure_http = True
    return devicetrust.DeviceTrust(config, keys), keys


def prompt(title):
    return devicetrust.PromptText(title=title, subtitle=None, cancel_label="Cancel")


async def first_sign_in(server, sdk, user):
    step = await sdk.sign_in_with_password(user, PASSWORD)
    assert step.is_ENROLMENT_REQUIRED()
    assert step.name == "Jane Doe"
    step = await sdk.complete_enrolment("135790", None)
    assert step.is_SECOND_FACTOR_REQUIRED()
    assert not step.this_device_can_approve
    sent = await sdk.send_otp(step.otp_options[0].channel)
    assert sent.destination.endswith("@example.com")
    step = await sdk.verify_otp(server.last_otp(user))
    assert step.is_SIGNED_IN()
    return step.session


def test_journey(server):
    async def run():
        await bind_loop()
        server.add_user("py.jane")
        sdk, keys = phone(server)
        session = await first_sign_in(server, sdk, "py.jane")
        assert amr(session) == ["pwd", "otp"]
        assert (await sdk.profile()).email == "py.jane@example.com"

        device = await sdk.enable_biometric_sign_in(
            "Jane's laptop", devicetrust.UserVerification.BIOMETRIC, prompt("Turn on biometric sign-in"))
        assert device.is_this_device
        assert keys.key_count() == 1
        assert await sdk.is_biometric_sign_in_available("py.jane")
        local = await sdk.local_enrolment("py.jane")
        assert local.device_id == device.device_id

        await sdk.sign_out()
        assert (await sdk.session()) is None
        step = await sdk.sign_in_with_biometric("py.jane", prompt("Sign in"))
        assert step.is_SIGNED_IN()
        # A software key (the test key store) signs in with `swk`, not `hwk`.
        assert amr(step.session) == ["swk", "bio"]
        assert keys.prompts == ["Turn on biometric sign-in", "Sign in"]

        devices = await sdk.trusted_devices()
        assert [d.is_this_device for d in devices] == [True]
        assert (await sdk.access_token()).startswith("dta_")

        await sdk.remove_device(device.device_id)
        assert keys.key_count() == 0
        assert await sdk.local_enrolment("py.jane") is None
    asyncio.run(run())


def test_errors_are_exceptions_with_fields(server):
    async def run():
        await bind_loop()
        server.add_user("py.err")
        sdk, keys = phone(server)
        with pytest.raises(devicetrust.DeviceTrustError.InvalidCredentials):
            await sdk.sign_in_with_password("py.err", "wrong")
        with pytest.raises(devicetrust.DeviceTrustError.NoSignInInProgress):
            await sdk.verify_otp("123456")
        await first_sign_in(server, sdk, "py.err")
        await sdk.sign_in_with_password("py.err", PASSWORD)
        await sdk.send_otp(devicetrust.OtpChannel.EMAIL)
        code = server.last_otp("py.err")
        wrong = "111111" if code == "000000" else "000000"
        with pytest.raises(devicetrust.DeviceTrustError.OtpInvalid) as e:
            await sdk.verify_otp(wrong)
        assert e.value.attempts_left == 4
        for _ in range(4):
            with pytest.raises(devicetrust.DeviceTrustError.InvalidCredentials):
                await sdk.sign_in_with_password("py.err", "wrong")
        with pytest.raises(devicetrust.DeviceTrustError.AccountLocked) as e:
            await sdk.sign_in_with_password("py.err", PASSWORD)
        assert e.value.retry_after_secs > 1700
    asyncio.run(run())


def test_cancel_and_biometrics_changed(server):
    async def run():
        await bind_loop()
        server.add_user("py.bio")
        sdk, keys = phone(server)
        await first_sign_in(server, sdk, "py.bio")
        await sdk.enable_biometric_sign_in("Laptop", devicetrust.UserVerification.BIOMETRIC, prompt("Turn on"))
        await sdk.sign_out()
        keys.mode = "cancel"
        with pytest.raises(devicetrust.DeviceTrustError.BiometricCancelled):
            await sdk.sign_in_with_biometric("py.bio", prompt("Sign in"))
        assert keys.key_count() == 1
        keys.mode = "biometrics_changed"
        with pytest.raises(devicetrust.DeviceTrustError.BiometricsChanged):
            await sdk.sign_in_with_biometric("py.bio", prompt("Sign in"))
        assert keys.key_count() == 0
        assert await sdk.local_enrolment("py.bio") is None
    asyncio.run(run())


def test_concurrent_calls(server):
    async def run():
        await bind_loop()
        server.add_user("py.many")
        sdk, _ = phone(server)
        await first_sign_in(server, sdk, "py.many")
        profiles = await asyncio.gather(*[sdk.profile() for _ in range(16)])
        assert {p.user_id for p in profiles} == {"py.many"}
    asyncio.run(run())
