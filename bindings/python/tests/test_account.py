"""The v1.1 calls through the generated Python bindings, against the real
server: the password policy, a password change, "forgot password" and
"forgot user ID" (the `recovery()` handle), account changes and cards (the
`account()` handle), an account created from a card, and a cancelled call
dropping the SDK's work."""

import asyncio
import json
import pathlib
import time

import pytest

import devicetrust
from conftest import PASSWORD
from test_journey import amr, bind_loop, first_sign_in, phone, prompt

NEW_PASSWORD = "Another strong Passw0rd"
SECURITY_CODE = "135790"  # what first_sign_in enrols with


def outbox_messages(server, purpose, to, wait_s=5.0):
    """The outbox's messages of `purpose` to `to`, polling up to `wait_s`:
    the server sends some of them off the request path."""
    deadline = time.monotonic() + wait_s
    while True:
        found = [
            m for m in map(json.loads, pathlib.Path(server.outbox).read_text().splitlines())
            if m["purpose"] == purpose and m["to"] == to
        ]
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(0.05)


def other_code(code):
    return "111111" if code == "000000" else "000000"


def card_number(prefix15):
    """A 16-digit card number with a valid Luhn check digit."""
    total = 0
    for i, c in enumerate(reversed(prefix15)):
        d = int(c)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return prefix15 + str((10 - total % 10) % 10)


async def sign_in_with_code(server, sdk, user, password):
    """Password + e-mail code for a user already enrolled."""
    step = await sdk.sign_in_with_password(user, password)
    assert step.is_SECOND_FACTOR_REQUIRED(), step
    await sdk.send_otp(devicetrust.OtpChannel.EMAIL)
    step = await sdk.verify_otp(server.last_otp(user))
    assert step.is_SIGNED_IN(), step
    return step.session


def test_password_policy_and_local_check(server):
    async def run():
        sdk, _ = phone(server)
        policy = await sdk.password_policy()
        assert policy.min_length >= 8
        assert policy.classes_required >= 1
        assert policy.description
        assert devicetrust.check_password(policy, NEW_PASSWORD, "jane.doe") == []
        broken = devicetrust.check_password(policy, "jane.doe", "Jane.Doe")
        assert any(r.is_CONTAINS_USER_ID() for r in broken), broken
        assert any(r.is_TOO_SHORT() for r in devicetrust.check_password(policy, "Ab1", "")), policy
    asyncio.run(run())


def test_forgot_password_end_to_end(server):
    async def run():
        await bind_loop()
        server.add_user("py.reset")
        sdk, _ = phone(server)
        await first_sign_in(server, sdk, "py.reset")  # enrols security code 135790
        await sdk.sign_out()
        recovery = sdk.recovery()

        with pytest.raises(devicetrust.DeviceTrustError.NoRecoveryInProgress):
            await recovery.complete_password_recovery("123456", NEW_PASSWORD)
        with pytest.raises(devicetrust.DeviceTrustError.NoRecoveryInProgress):
            await recovery.send_otp(devicetrust.OtpChannel.EMAIL)
        with pytest.raises(devicetrust.DeviceTrustError.InvalidCredentials):
            await recovery.start_password_recovery("py.reset", "97531864")

        started = await recovery.start_password_recovery("py.reset", SECURITY_CODE)
        assert [o.channel for o in started.otp_options] == [devicetrust.OtpChannel.EMAIL]
        assert started.expires_at.timestamp() > time.time()
        sent = await recovery.send_otp(devicetrust.OtpChannel.EMAIL)
        assert sent.destination == started.otp_options[0].destination
        code = server.last_otp("py.reset")

        # A refused password and a wrong code keep the recovery open.
        with pytest.raises(devicetrust.DeviceTrustError.PasswordRejected) as e:
            await recovery.complete_password_recovery(code, "Password1")
        assert any(r.is_COMMON() for r in e.value.reasons), e.value.reasons
        with pytest.raises(devicetrust.DeviceTrustError.OtpInvalid) as e:
            await recovery.complete_password_recovery(other_code(code), NEW_PASSWORD)
        assert e.value.attempts_left == 4

        await recovery.complete_password_recovery(code, NEW_PASSWORD)
        with pytest.raises(devicetrust.DeviceTrustError.NoRecoveryInProgress):
            await recovery.complete_password_recovery(code, NEW_PASSWORD)

        with pytest.raises(devicetrust.DeviceTrustError.InvalidCredentials):
            await sdk.sign_in_with_password("py.reset", PASSWORD)
        session = await sign_in_with_code(server, sdk, "py.reset", NEW_PASSWORD)
        assert amr(session) == ["pwd", "otp"]
        events = await sdk.account().security_events(50)
        assert any(ev.event_type.is_RECOVERY_USED() for ev in events), events
    asyncio.run(run())


def test_password_change_end_to_end(server):
    async def run():
        await bind_loop()
        server.add_user("py.change")
        sdk, _ = phone(server)
        await first_sign_in(server, sdk, "py.change")  # with a code: a strong session
        account = sdk.account()

        with pytest.raises(devicetrust.DeviceTrustError.PasswordRejected) as e:
            await account.change_password(PASSWORD, "Password1")
        assert any(r.is_COMMON() for r in e.value.reasons), e.value.reasons
        # Refused on the phone, no request.
        with pytest.raises(devicetrust.DeviceTrustError.PasswordRejected) as e:
            await account.change_password(PASSWORD, PASSWORD)
        assert [r.is_SAME_AS_CURRENT() for r in e.value.reasons] == [True]
        with pytest.raises(devicetrust.DeviceTrustError.InvalidCredentials):
            await account.change_password("Wrong horse battery 9", NEW_PASSWORD)

        await account.change_password(PASSWORD, NEW_PASSWORD)
        assert (await account.profile()).user_id == "py.change"  # this session stays
        events = await account.security_events(10)
        assert any(ev.event_type.is_PASSWORD_CHANGED() for ev in events), events
        assert [ev.at for ev in events] == sorted((ev.at for ev in events), reverse=True)

        await sdk.sign_out()
        with pytest.raises(devicetrust.DeviceTrustError.NotSignedIn):
            await account.change_password(NEW_PASSWORD, "Yet another Passw0rd")
        with pytest.raises(devicetrust.DeviceTrustError.InvalidCredentials):
            await sdk.sign_in_with_password("py.change", PASSWORD)
        await sign_in_with_code(server, sdk, "py.change", NEW_PASSWORD)
    asyncio.run(run())


def test_forgot_user_id_emails_it(server):
    async def run():
        await bind_loop()
        server.add_user("py.forgot")
        sdk, _ = phone(server)
        await first_sign_in(server, sdk, "py.forgot")
        await sdk.sign_out()
        recovery = sdk.recovery()
        with pytest.raises(devicetrust.DeviceTrustError.InvalidInput) as e:
            await recovery.forgot_user_id("nobody", SECURITY_CODE)
        assert e.value.reason
        # Wrong code, unknown address: the same quiet success, nothing sent.
        await recovery.forgot_user_id("py.forgot@example.com", "97531864")
        await recovery.forgot_user_id("nobody@example.com", SECURITY_CODE)
        await recovery.forgot_user_id("Py.Forgot@Example.com", SECURITY_CODE)
        sent = outbox_messages(server, "recovery", "py.forgot@example.com")
        assert len(sent) == 1, sent
        assert "py.forgot" in sent[0]["text"]
        assert outbox_messages(server, "recovery", "nobody@example.com", wait_s=0.5) == []
    asyncio.run(run())


def test_account_changes_with_codes(server):
    async def run():
        await bind_loop()
        server.add_user("py.contact")
        sdk, _ = phone(server)
        await first_sign_in(server, sdk, "py.contact")
        account = sdk.account()

        with pytest.raises(devicetrust.DeviceTrustError.InvalidInput):
            await account.confirm_contact_change("123456")  # nothing waiting
        pending = await account.change_email("py.contact@example.org")
        assert pending.channel == devicetrust.OtpChannel.EMAIL
        assert pending.destination.endswith("@example.org")
        code = server.last_otp("py.contact")
        with pytest.raises(devicetrust.DeviceTrustError.OtpInvalid):
            await account.confirm_contact_change(other_code(code))
        profile = await account.confirm_contact_change(code)
        assert profile.email == "py.contact@example.org"

        pending = await account.change_mobile("+447700900222")
        assert pending.channel == devicetrust.OtpChannel.SMS
        profile = await account.confirm_contact_change(server.last_otp("py.contact"))
        assert profile.mobile == "+447700900222"
        await account.remove_mobile()
        assert (await account.profile()).mobile is None

        with pytest.raises(devicetrust.DeviceTrustError.InvalidInput):
            await account.change_security_code("111111")  # one digit repeated
        await account.change_security_code("24680135")
        await sdk.sign_out()
        with pytest.raises(devicetrust.DeviceTrustError.InvalidCredentials):
            await sdk.recovery().start_password_recovery("py.contact", SECURITY_CODE)
        await sdk.recovery().start_password_recovery("py.contact", "24680135")

        with pytest.raises(devicetrust.DeviceTrustError.InvalidInput):
            await account.security_events(0)
    asyncio.run(run())


def test_account_from_a_card_and_linked_cards(server):
    async def run():
        await bind_loop()
        number = card_number("400000123456789")
        assert server.admin("POST", "/admin/v1/cards", {
            "card_number": number, "card_id": "4321", "name": "Jane Doe",
            "email": "py.card@example.com", "mobile": None, "primary_market": "GB",
            "activated": True,
        }) == 201
        sdk, _ = phone(server)
        with pytest.raises(devicetrust.DeviceTrustError.InvalidInput):
            await sdk.create_account(number[:-1] + "x", "4321", "Jane Doe", "py.card", NEW_PASSWORD)
        with pytest.raises(devicetrust.DeviceTrustError.CardNotRecognized):
            await sdk.create_account(number, "1234", "Jane Doe", "py.card", NEW_PASSWORD)
        with pytest.raises(devicetrust.DeviceTrustError.PasswordRejected) as e:
            await sdk.create_account(number, "4321", "Jane Doe", "py.card", "password")
        assert any(r.is_TOO_FEW_CLASSES() for r in e.value.reasons), e.value.reasons
        user = await sdk.create_account(number, "4321", "Jane Doe", "py.card", NEW_PASSWORD)
        assert user == "py.card"
        with pytest.raises(devicetrust.DeviceTrustError.CardAlreadyEnrolled):
            await sdk.create_account(number, "4321", "Jane Doe", "py.card2", NEW_PASSWORD)

        step = await sdk.sign_in_with_password(user, NEW_PASSWORD)
        assert step.is_ENROLMENT_REQUIRED()
        step = await sdk.complete_enrolment(SECURITY_CODE, None)
        await sdk.send_otp(step.otp_options[0].channel)
        assert (await sdk.verify_otp(server.last_otp(user))).is_SIGNED_IN()

        second = card_number("400000987654321")
        assert server.admin("POST", "/admin/v1/cards", {
            "card_number": second, "card_id": "1234", "name": "Jane Doe",
            "email": "py.card@example.com", "mobile": None, "primary_market": "GB",
            "activated": True,
        }) == 201
        account = sdk.account()
        linked = await account.link_card(second, "1234")
        assert linked.last4 == second[-4:]
        cards = await account.linked_cards()
        assert sorted(c.last4 for c in cards) == sorted([number[-4:], second[-4:]])
        assert linked.card_ref in {c.card_ref for c in cards}
    asyncio.run(run())


def test_a_cancelled_call_drops_the_sdks_work(server):
    """Cancelling the Python task drops the Rust future, which cancels the
    key store's pending coroutine (the biometric prompt goes away)."""
    async def run():
        await bind_loop()
        server.add_user("py.cancel")
        sdk, keys = phone(server)
        await first_sign_in(server, sdk, "py.cancel")
        await sdk.enable_biometric_sign_in("Laptop", devicetrust.UserVerification.BIOMETRIC, prompt("Turn on"))
        await sdk.sign_out()

        entered, cancelled = asyncio.Event(), asyncio.Event()
        original = keys.sign

        async def hanging_sign(alias, data, p):
            entered.set()
            try:
                await asyncio.Event().wait()  # the user never answers
            except asyncio.CancelledError:
                cancelled.set()
                raise

        keys.sign = hanging_sign
        task = asyncio.ensure_future(sdk.sign_in_with_biometric("py.cancel", prompt("Sign in")))
        await asyncio.wait_for(entered.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # uniffi 0.32 schedules the key store task's cancellation with
        # `call_soon` from the SDK's thread, which does not wake an idle
        # loop: keep the loop ticking while waiting.
        for _ in range(200):
            if cancelled.is_set():
                break
            await asyncio.sleep(0.05)
        assert cancelled.is_set(), "the key store's sign was not cancelled"

        keys.sign = original
        step = await sdk.sign_in_with_biometric("py.cancel", prompt("Sign in"))
        assert step.is_SIGNED_IN()
    asyncio.run(run())
