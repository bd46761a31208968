"""The API's shape as Python sees it: Config defaults, errors with a message
and their fields, points in time as datetimes, cancellation (a cancelled
task leaves no session behind and cancels the key store's call) and the
key-store timeout."""

import asyncio
import datetime
import json
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import devicetrust
from conftest import RP_ID
from keystore import CryptographyKeyStore
from test_journey import bind_loop, first_sign_in, phone, prompt


def test_config_defaults():
    c = devicetrust.Config(server_url="https://a.example", rp_id="https://a.example",
                           state_dir="/tmp/x")
    assert c.platform is None
    assert c.tls_pins == [] and c.extra_root_certificates == []
    assert c.allow_insecure_http is False
    assert (c.request_timeout_ms, c.connect_timeout_ms) == (15000, 5000)
    assert c.key_store_prompt_timeout_ms == 300000
    assert c.key_store_timeout_ms == 30000
    p = devicetrust.PromptText()
    assert (p.title, p.subtitle, p.cancel_label) == ("Sign in", None, "Cancel")


def test_errors_say_their_message_and_keep_their_fields():
    E = devicetrust.DeviceTrustError
    e = E.OtpInvalid(attempts_left=3)
    assert str(e) == "the code is incorrect (3 tries left)" and e.attempts_left == 3
    e = E.AccountLocked(retry_after_secs=1800)
    assert "1800" in str(e) and e.retry_after_secs == 1800
    e = E.Network(retryable=True, reason="timed out")
    assert str(e) == "network problem: timed out" and e.retryable
    # Variants without fields, which uniffi alone leaves with an empty str().
    assert str(E.OtpExpired()) == "the code has expired: ask for a new one"
    assert str(E.NotSignedIn()) == "you are signed out: sign in again"
    assert str(E.KeyStoreTimeout(after_ms=5)) != ""
    assert str(devicetrust.PlatformKeyError.Cancelled()) == "cancelled by the user"
    # A platform error without words (an exception with no message) still
    # says something, and not a dangling "…: ".
    assert str(devicetrust.PlatformKeyError.Other(reason="")).strip()
    assert not str(E.KeyStore(reason="")).rstrip().endswith(":")
    for name in dir(E):
        variant = getattr(E, name)
        if isinstance(variant, type) and issubclass(variant, Exception) and variant is not E:
            fields = variant.__init__.__code__.co_varnames[1:variant.__init__.__code__.co_argcount]
            if not fields:
                assert str(variant()), name


def test_errors_from_calls_have_messages(server):
    async def run():
        await bind_loop()
        sdk, _ = phone(server)
        with pytest.raises(devicetrust.DeviceTrustError.InvalidCredentials) as e:
            await sdk.sign_in_with_password("nobody.here", "wrong")
        assert str(e.value) == "the user ID or password is incorrect"
        with pytest.raises(devicetrust.DeviceTrustError.NotSignedIn) as e:
            await sdk.profile()
        assert str(e.value) == "you are signed out: sign in again"
    asyncio.run(run())


def test_points_in_time_are_datetimes(server):
    async def run():
        await bind_loop()
        server.add_user("py.time")
        sdk, _ = phone(server)
        step = await sdk.sign_in_with_password("py.time", "Correct horse battery 9")
        assert isinstance(step.expires_at, datetime.datetime)
        now = datetime.datetime.now(datetime.timezone.utc)
        assert now < step.expires_at < now + datetime.timedelta(hours=1)
        await sdk.complete_enrolment("135790", None)
        sent = await sdk.send_otp(devicetrust.OtpChannel.EMAIL)
        assert isinstance(sent.expires_at, datetime.datetime)
        assert isinstance(sent.resend_after_secs, int)
        step = await sdk.verify_otp(server.last_otp("py.time"))
        assert abs(step.session.auth_time - now) < datetime.timedelta(minutes=1)
        assert (await sdk.session()).auth_time == step.session.auth_time
        device = await sdk.enable_biometric_sign_in(
            "Laptop", devicetrust.UserVerification.BIOMETRIC, prompt("Turn on"))
        assert device.trusted_until - device.created_at == datetime.timedelta(days=90)
        assert device.key_storage == devicetrust.KeyStorage.SOFTWARE
        assert device.platform == devicetrust.Platform.OTHER
        local = await sdk.local_enrolment("py.time")
        assert local.trusted_until == device.trusted_until
    asyncio.run(run())


def test_cancel_during_a_slow_sign_keeps_no_session(server):
    async def run():
        await bind_loop()
        server.add_user("py.cancel2")
        sdk, keys = phone(server)
        await first_sign_in(server, sdk, "py.cancel2")
        await sdk.enable_biometric_sign_in("Laptop", devicetrust.UserVerification.BIOMETRIC,
                                           prompt("Turn on"))
        await sdk.sign_out()
        entered, cancelled = asyncio.Event(), asyncio.Event()
        original = keys.sign

        async def slow_sign(alias, data, p):
            entered.set()
            try:
                await asyncio.sleep(1.0)  # the user answers a second later...
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return await original(alias, data, p)

        keys.sign = slow_sign
        task = asyncio.ensure_future(sdk.sign_in_with_biometric("py.cancel2", prompt("Sign in")))
        await asyncio.wait_for(entered.wait(), 10)
        task.cancel()  # ...but the app gave up first
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(1.5)
        assert cancelled.is_set(), "the key store's sign was not cancelled"
        assert (await sdk.session()) is None
        with pytest.raises(devicetrust.DeviceTrustError.NotSignedIn):
            await sdk.access_token()
    asyncio.run(run())


class SlowServer:
    """Answers a password sign-in as `authenticated`, but only after
    `delay` seconds: a call cancelled meanwhile must keep no session."""

    def __init__(self, delay):
        answered = self.answered = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                threading.Event().wait(delay)
                body = json.dumps({"status": "authenticated", "session": {
                    "access_token": "dta_x", "expires_in": 900, "refresh_token": "dtr_x",
                    "user_id": "slow.user", "amr": ["pwd"], "auth_time": 1}}).encode()
                try:
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass
                answered.set()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def test_cancel_during_a_slow_server_keeps_no_session():
    async def run():
        await bind_loop()
        slow = SlowServer(delay=1.0)
        try:
            folder = tempfile.mkdtemp()
            config = devicetrust.Config(server_url=slow.base, rp_id=RP_ID,
                                        state_dir=folder + "/state", allow_insecure_http=True)
            sdk = devicetrust.DeviceTrust(config, CryptographyKeyStore(folder + "/keys"))
            task = asyncio.ensure_future(sdk.sign_in_with_password("slow.user", "password"))
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(1.5)  # the server has answered by now
            assert slow.answered.is_set()
            assert (await sdk.session()) is None
        finally:
            slow.close()
    asyncio.run(run())


def test_a_prompt_left_unanswered_times_out(server):
    async def run():
        await bind_loop()
        server.add_user("py.timeout")
        folder = tempfile.mkdtemp()
        keys = CryptographyKeyStore(folder + "/keys")
        config = devicetrust.Config(server_url=server.base, rp_id=RP_ID,
                                    state_dir=folder + "/state", allow_insecure_http=True,
                                    key_store_prompt_timeout_ms=300)
        sdk = devicetrust.DeviceTrust(config, keys)
        await first_sign_in(server, sdk, "py.timeout")
        await sdk.enable_biometric_sign_in("Laptop", devicetrust.UserVerification.BIOMETRIC,
                                           prompt("Turn on"))
        await sdk.sign_out()
        cancelled = asyncio.Event()

        async def never(alias, data, p):
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

        keys.sign = never
        with pytest.raises(devicetrust.DeviceTrustError.KeyStoreTimeout) as e:
            await sdk.sign_in_with_biometric("py.timeout", prompt("Sign in"))
        assert e.value.after_ms == 300
        assert "300 ms" in str(e.value)
        await asyncio.wait_for(cancelled.wait(), 5)
        assert (await sdk.session()) is None
    asyncio.run(run())


class ScriptedServer:
    """Answers every POST with one fixed status and body: a server (or
    whatever answers in its name) whose answers the SDK must not trust."""

    def __init__(self, status, body):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def sdk_for(base):
    folder = tempfile.mkdtemp()
    config = devicetrust.Config(server_url=base, rp_id=RP_ID,
                                state_dir=folder + "/state", allow_insecure_http=True)
    return devicetrust.DeviceTrust(config, CryptographyKeyStore(folder + "/keys"))


def test_untrusted_answers_give_sdk_errors_or_sane_values():
    async def run():
        await bind_loop()
        # A point in time past what datetime holds (year 9999): a value the
        # app can use, not an OverflowError from inside the binding.
        far = json.dumps({"status": "enrolment_required", "login_id": "l1",
                          "expires_at": 10 ** 15,
                          "profile": {"name": "N", "email": "n@example.com"}}).encode()
        # 200 with something that is not the API's JSON.
        garbage = b"<html>captive portal</html>"
        # A session whose lifetimes overflow when added to now.
        huge = json.dumps({"status": "authenticated", "session": {
            "access_token": "dta_x", "expires_in": 2 ** 63 - 1, "refresh_token": "dtr_x",
            "refresh_expires_in": 2 ** 63 - 1, "user_id": "py.huge", "amr": ["pwd"],
            "auth_time": 2 ** 63 - 1}}).encode()
        for body, check in [(far, "far"), (garbage, "garbage"), (huge, "huge")]:
            server = ScriptedServer(200, body)
            try:
                sdk = sdk_for(server.base)
                if check == "far":
                    step = await sdk.sign_in_with_password("py.far", "password")
                    assert step.expires_at.year == 9999
                elif check == "garbage":
                    with pytest.raises(devicetrust.DeviceTrustError.Server) as e:
                        await sdk.sign_in_with_password("py.garbage", "password")
                    assert e.value.code == "unreadable_response" and str(e.value)
                else:
                    step = await sdk.sign_in_with_password("py.huge", "password")
                    assert step.session.auth_time.year == 9999
                    assert (await sdk.session()).user_id == "py.huge"
                    assert (await sdk.accounts())[0].last_sign_in_at is not None
            finally:
                server.close()
    asyncio.run(run())


class Throws(devicetrust.SessionObserver):
    def __init__(self):
        self.calls = 0

    def session_changed(self, user_id, session):
        self.calls += 1
        raise RuntimeError("the app's observer has a bug")


def test_an_observer_that_raises_does_not_fail_the_sign_in():
    """The session is kept before the observer is told: were its exception
    to fail the call, the app would show an error while signed in."""
    async def run():
        await bind_loop()
        body = json.dumps({"status": "authenticated", "session": {
            "access_token": "dta_x", "expires_in": 900, "refresh_token": "dtr_x",
            "user_id": "py.observed", "amr": ["pwd", "otp"], "auth_time": 1}}).encode()
        server = ScriptedServer(200, body)
        try:
            sdk = sdk_for(server.base)
            observer = Throws()
            sdk.set_session_observer(observer)
            step = await sdk.sign_in_with_password("py.observed", "password")
            assert step.session.user_id == "py.observed"
            assert observer.calls == 1
            assert (await sdk.session()).user_id == "py.observed"
        finally:
            server.close()
    asyncio.run(run())


def test_enabling_cancelled_at_the_prompt_leaves_no_key(server):
    """The app leaves the "turn on biometric sign-in" screen while the
    prompt is shown: the key made for it is deleted, not left behind."""
    async def run():
        await bind_loop()
        server.add_user("py.enable.cancel")
        sdk, keys = phone(server)
        await first_sign_in(server, sdk, "py.enable.cancel")
        entered = asyncio.Event()
        original = keys.sign

        async def prompt_stays(alias, data, p):
            entered.set()
            await asyncio.Event().wait()

        keys.sign = prompt_stays
        task = asyncio.ensure_future(sdk.enable_biometric_sign_in(
            "Laptop", devicetrust.UserVerification.BIOMETRIC, prompt("Turn on")))
        await asyncio.wait_for(entered.wait(), 10)
        assert keys.key_count() == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await sdk.local_enrolment("py.enable.cancel") is None
        # Deleted at the latest when the user turns it on again (this app
        # did not call uniffi_set_event_loop, so the SDK's own task cannot
        # call the Python key store): one key, the one in use.
        keys.sign = original
        await sdk.enable_biometric_sign_in(
            "Laptop", devicetrust.UserVerification.BIOMETRIC, prompt("Turn on"))
        assert keys.key_count() == 1, "the cancelled registration's key was left behind"
        assert await sdk.local_enrolment("py.enable.cancel") is not None
    asyncio.run(run())
