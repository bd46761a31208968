"""Several accounts on one phone, and sessions kept across restarts by a
`SessionSealer` written in Python (cryptography's AES-GCM), against the real
server."""

import asyncio
import os
import tempfile

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import devicetrust
from conftest import RP_ID
from keystore import CryptographyKeyStore
from test_journey import first_sign_in, prompt


class AesGcmSealer(devicetrust.SessionSealer):
    """AES-256-GCM under a key held by the "platform" (here: in memory, so a
    new `DeviceTrust` in the same process stands for the app restarted)."""

    AAD = b"devicetrust session"

    def __init__(self, key=None):
        self.key = key or AESGCM.generate_key(bit_length=256)
        self.sealed = 0
        self.opened = 0

    def seal(self, plaintext):
        nonce = os.urandom(12)
        self.sealed += 1
        return nonce + AESGCM(self.key).encrypt(nonce, plaintext, self.AAD)

    def open(self, sealed):
        try:
            plain = AESGCM(self.key).decrypt(sealed[:12], sealed[12:], self.AAD)
        except InvalidTag:
            raise devicetrust.PlatformKeyError.Other("the sealed session was altered or sealed with another key")
        self.opened += 1
        return plain


class Recorder(devicetrust.SessionObserver):
    def __init__(self):
        self.changes = []

    def session_changed(self, user_id, session):
        self.changes.append((user_id, None if session is None else session.user_id))


class Phone:
    """One phone's folder: its key store and state survive a "restart"."""

    def __init__(self, server):
        self.server = server
        self.folder = tempfile.mkdtemp()
        self.keys = CryptographyKeyStore(self.folder + "/keys")

    def open(self, sealer=None, observer=None):
        config = devicetrust.Config(server_url=self.server.base, rp_id=RP_ID,
                                    state_dir=self.folder + "/state", allow_insecure_http=True)
        sdk = devicetrust.DeviceTrust(config, self.keys)
        if sealer is not None:
            sdk.set_session_sealer(sealer)
        if observer is not None:
            sdk.set_session_observer(observer)
        return sdk


def by_user(accounts):
    return {a.user_id: a for a in accounts}


def test_two_users_on_one_phone(server):
    async def run():
        server.add_user("py.acc.ann")
        server.add_user("py.acc.bob")
        sdk = Phone(server).open()
        assert await sdk.accounts() == []
        assert sdk.active_account() is None

        await first_sign_in(server, sdk, "py.acc.ann")
        await sdk.enable_biometric_sign_in("Ann's phone", devicetrust.UserVerification.BIOMETRIC, prompt("Turn on"))
        # Bob signs in on the same phone; Ann stays signed in.
        await first_sign_in(server, sdk, "py.acc.bob")
        assert sdk.active_account() == "py.acc.bob"
        assert (await sdk.session()).user_id == "py.acc.bob"
        assert (await sdk.profile()).user_id == "py.acc.bob"

        accounts = await sdk.accounts()
        # Both, most recently signed in first (to the second: here a tie, by user ID).
        assert sorted(a.user_id for a in accounts) == ["py.acc.ann", "py.acc.bob"]
        ann, bob = by_user(accounts)["py.acc.ann"], by_user(accounts)["py.acc.bob"]
        assert ann.signed_in and bob.signed_in
        assert bob.active and not ann.active
        assert ann.biometric_enabled and ann.biometric_available
        assert not bob.biometric_enabled and not bob.biometric_available
        assert ann.last_sign_in_at is not None

        # The picker offers biometric sign-in to the account that has it here.
        picked = next(a.user_id for a in accounts if a.biometric_available)
        assert picked == "py.acc.ann"
        step = await sdk.sign_in_with_biometric(picked, prompt("Sign in"))
        assert step.is_SIGNED_IN() and step.session.user_id == "py.acc.ann"
        assert sdk.active_account() == "py.acc.ann"
        assert (await sdk.profile()).user_id == "py.acc.ann"

        # Switching needs no sign-in; each account keeps its own session.
        switched = await sdk.switch_account("py.acc.bob")
        assert switched.user_id == "py.acc.bob"
        assert (await sdk.profile()).user_id == "py.acc.bob"
        assert len(await sdk.trusted_devices()) == 0  # Bob has no trusted device
        await sdk.switch_account("py.acc.ann")
        assert len(await sdk.trusted_devices()) == 1

        # Sign one out: the other stays signed in; the active one was Ann.
        await sdk.sign_out_account("py.acc.ann")
        assert sdk.active_account() is None
        assert (await sdk.session()) is None
        accounts = by_user(await sdk.accounts())
        assert not accounts["py.acc.ann"].signed_in and accounts["py.acc.bob"].signed_in
        # Ann keeps biometric sign-in here.
        assert accounts["py.acc.ann"].biometric_available
        with pytest.raises(devicetrust.DeviceTrustError.NotSignedIn):
            await sdk.switch_account("py.acc.ann")
        assert (await sdk.switch_account("py.acc.bob")).user_id == "py.acc.bob"

        # Removing Ann forgets her here (her key too); sign out all ends Bob's.
        await sdk.remove_account("py.acc.ann")
        assert [a.user_id for a in await sdk.accounts()] == ["py.acc.bob"]
        assert not await sdk.is_biometric_sign_in_available("py.acc.ann")
        await sdk.sign_out_all()
        assert not (await sdk.accounts())[0].signed_in
        assert (await sdk.session()) is None
    asyncio.run(run())


def test_a_sealed_session_survives_a_restart(server):
    async def run():
        server.add_user("py.keep")
        phone = Phone(server)
        sealer = AesGcmSealer()
        first = Recorder()
        sdk = phone.open(sealer, first)
        await first_sign_in(server, sdk, "py.keep")
        assert sealer.sealed >= 1
        assert ("py.keep", "py.keep") in first.changes
        del sdk  # the app is killed

        # Restarted without a sealer: the session is not there (and its sealed copy stays).
        sdk = phone.open()
        assert (await sdk.session()) is None
        with pytest.raises(devicetrust.DeviceTrustError.NotSignedIn):
            await sdk.access_token()
        del sdk

        # Restarted with the sealer: the session is restored, and works on the server.
        observer = Recorder()
        sdk = phone.open(sealer, observer)
        assert sdk.active_account() == "py.keep"
        session = await sdk.session()
        assert session is not None and session.user_id == "py.keep"
        assert sealer.opened >= 1
        assert (await sdk.profile()).user_id == "py.keep"
        assert (await sdk.accounts())[0].signed_in

        # Signing out tells the observer.
        await sdk.sign_out()
        assert observer.changes[-1] == ("py.keep", None)
        del sdk

        # And the next start has nothing to restore.
        sdk = phone.open(sealer)
        assert (await sdk.session()) is None
    asyncio.run(run())


def test_a_session_sealed_with_another_key_is_not_restored(server):
    async def run():
        server.add_user("py.lost")
        phone = Phone(server)
        sdk = phone.open(AesGcmSealer())
        await first_sign_in(server, sdk, "py.lost")
        del sdk

        # The platform key is gone (say, the app was reinstalled): signed out, and told so.
        observer = Recorder()
        sdk = phone.open(AesGcmSealer(), observer)
        assert (await sdk.session()) is None
        assert ("py.lost", None) in observer.changes
        assert not by_user(await sdk.accounts())["py.lost"].signed_in
    asyncio.run(run())
